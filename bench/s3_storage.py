"""S3 backend vs local disk: upload (stage + publish) and download, time and peak memory.

Starts its own ``moto_server`` on 127.0.0.1 (needs ``extrapypi[test]``), so the object store is
a real HTTP server on the same machine: the figures show the backend's overhead, not a network's.
Reports ratios against the local backend measured in the same run.

    python bench/s3_storage.py --size 64 --rounds 3
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
import uuid

from pyramid.request import Request

from extrapypi.storage import build_storage

MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto(port: int) -> subprocess.Popen:
    tool = os.path.join(os.path.dirname(sys.executable), "moto_server")
    process = subprocess.Popen(
        [tool, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("moto_server did not start")


def measure(function):
    """(seconds, peak traced bytes) of one call."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        function()
        return time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def upload(storage, path: str, key: str):
    def run():
        with open(path, "rb") as source:
            storage.publish(storage.stage(source), key)

    return run


def stream_download(storage, key: str):
    def run():
        environ = Request.blank("/f").environ
        response = storage.download_response(Request(environ), key, "application/octet-stream")
        body = response(environ, lambda status, headers: None)
        for _chunk in body:
            pass
        if hasattr(body, "close"):
            body.close()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="file size in MiB (default 64)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    port = free_port()
    moto = start_moto(port)
    workdir = tempfile.mkdtemp(prefix="extrapypi-bench-")
    try:
        path = os.path.join(workdir, "big.whl")
        with open(path, "wb") as out:
            for _ in range(args.size):
                out.write(os.urandom(MiB))
        endpoint = f"http://127.0.0.1:{port}"
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3_settings = {
            "extrapypi.storage": "s3",
            "extrapypi.storage.bucket": bucket,
            "extrapypi.storage.endpoint_url": endpoint,
            "extrapypi.storage.region": "us-east-1",
            "extrapypi.storage.addressing_style": "path",
        }
        s3 = build_storage(s3_settings)
        s3.client.create_bucket(Bucket=bucket)
        s3_stream = build_storage(s3_settings | {"extrapypi.storage.redirect": "false"})
        local = build_storage({"extrapypi.storage.path": os.path.join(workdir, "local")})

        rows = {}
        for name, storage in (("local", local), ("s3", s3)):
            runs = [measure(upload(storage, path, f"big/big-{i}.whl")) for i in range(args.rounds)]
            rows[f"upload {name}"] = runs
        for name, storage in (("local", local), ("s3 stream", s3_stream)):
            runs = [measure(stream_download(storage, "big/big-0.whl")) for _ in range(args.rounds)]
            rows[f"download {name}"] = runs
        redirects = [
            measure(lambda: [s3.download_response(None, "big/big-0.whl", "x") for _ in range(100)])
            for _ in range(args.rounds)
        ]
        rows["redirect s3 (x100)"] = redirects

        print(f"{args.size} MiB file, median of {args.rounds} rounds, moto on 127.0.0.1")
        print(f"{'':22} {'seconds':>9} {'MiB/s':>8} {'peak MiB':>9}")
        for label, runs in rows.items():
            seconds = statistics.median(r[0] for r in runs)
            peak = max(r[1] for r in runs) / MiB
            rate = "" if "redirect" in label else f"{args.size / seconds:8.0f}"
            print(f"{label:22} {seconds:9.3f} {rate:>8} {peak:9.1f}")
        up = statistics.median(r[0] for r in rows["upload s3"]) / statistics.median(
            r[0] for r in rows["upload local"]
        )
        down = statistics.median(r[0] for r in rows["download s3 stream"]) / statistics.median(
            r[0] for r in rows["download local"]
        )
        per_redirect = statistics.median(r[0] for r in redirects) / 100
        print(f"upload s3/local time ratio: {up:.1f}x; streamed download s3/local: {down:.1f}x")
        print(f"presigned redirect: {per_redirect * 1e6:.0f} µs to sign, no bytes through the app")
    finally:
        moto.terminate()
        moto.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
