#!/usr/bin/env python
"""Issue 15, target 6: the simple index and uploads at 1,000, 10,000 and 100,000 projects.

One SQLite database and one ``pserve`` (production-like settings, see ``bench_index.Site``) per
size, all running at once so the measurements interleave: ``/simple/`` (gzip) and
``/simple/<name>/`` with Basic auth (``wrk``, median and worst of ``--reps``), the first (uncached)
``/simple/`` after a change, and the time of a direct HTTP POST of a small wheel (a new version of
an existing project, and a new project) at each size. Projects are bulk-inserted (one release,
one wheel each; the files are rows only, pages do not read them).

    .venv/bin/python bench/bench_scale.py --sizes 1000 10000 100000 --reps 3 --duration 5
"""

import argparse
import base64
import gzip
import hashlib
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import bcrypt
import sqlalchemy as sa
from bench_index import (
    AUTH,
    Site,
    check_page,
    log,
    machine,
    multipart,
    project_name,
    start_extrapypi,
    wrk,
)
from bulk import bulk_projects
from dists import wheel_bytes

from extrapypi.models import User

UPLOADER, UPLOADER_PASSWORD = "bench-dev", "bench-dev-password"


def add_uploader(site: Site) -> str:
    password_hash = bcrypt.hashpw(UPLOADER_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    with site.engine.begin() as connection:
        connection.execute(
            sa.insert(User).values(username=UPLOADER, password_hash=password_hash, role="developer")
        )
    return "Basic " + base64.b64encode(f"{UPLOADER}:{UPLOADER_PASSWORD}".encode()).decode()


def upload(base: str, auth: str, name: str, version: str) -> float:
    filename, content, _ = wheel_bytes(name, version)
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel",
        "pyversion": "py3",
        "sha256_digest": hashlib.sha256(content).hexdigest(),
    }
    body, content_type = multipart(fields, filename, content)
    request = urllib.request.Request(
        base + "/legacy/", data=body, headers={"Authorization": auth, "Content-Type": content_type}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        assert response.status == 200, response.status
    return time.perf_counter() - started


def first_root(base: str) -> tuple[float, float]:
    """(first, second) GET ``/simple/`` gzip times: the first builds the page."""
    headers = {"Authorization": AUTH, "Accept-Encoding": "gzip"}
    times = []
    for _ in range(2):
        request = urllib.request.Request(base + "/simple/", headers=headers)
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read()
            assert response.headers["Content-Encoding"] == "gzip"
        times.append(time.perf_counter() - started)
    assert b"proj-00000" in gzip.decompress(body)
    return times[0], times[1]


def med(values: list[float]) -> float:
    return statistics.median(values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--uploads", type=int, default=5, help="uploads per size and kind")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--work", help="keep the databases here (default: a temporary dir)")
    parser.add_argument("--busy", default="", help="a note on the machine's load for the table")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="extrapypi-scale-"))
    sites, servers, auths = {}, {}, {}
    try:
        for size in args.sizes:
            directory = work / str(size)
            directory.mkdir(parents=True)
            site = sites[size] = Site(directory)
            site.create()
            started = time.monotonic()
            bulk_projects(site.engine, [project_name(i) for i in range(size)])
            log(f"{size} projects inserted in {time.monotonic() - started:.1f} s")
            auths[size] = add_uploader(site)
            servers[size], _ = start_extrapypi(site)
            upload(f"http://127.0.0.1:{site.port}", auths[size], "bench-own", "1.0")
        headers = {"Authorization": AUTH}
        gzip_headers = {**headers, "Accept-Encoding": "gzip"}
        results = {
            size: {"root": [], "project": [], "first_root": [], "cached_root": []}
            for size in args.sizes
        }
        for size in args.sizes:
            results[size].update(upload_existing=[], upload_new=[])
        for rep in range(args.reps):
            for size in args.sizes:
                base = f"http://127.0.0.1:{sites[size].port}"
                check_page(base + "/simple/proj-00007/", headers)
                check_page(base + "/simple/", gzip_headers)  # built once here, not inside wrk
                results[size]["project"].append(wrk(base + "/simple/proj-00007/", args, headers))
                results[size]["root"].append(wrk(base + "/simple/", args, gzip_headers))
                log(
                    f"rep {rep} size {size}: {results[size]['project'][-1]} "
                    f"{results[size]['root'][-1]}"
                )
            for i in range(args.uploads):
                for size in args.sizes:
                    base = f"http://127.0.0.1:{sites[size].port}"
                    version = f"2.{rep}.{i}"
                    results[size]["upload_existing"].append(
                        upload(base, auths[size], "bench-own", version)
                    )
                    first, cached = first_root(base)
                    results[size]["first_root"].append(first)
                    results[size]["cached_root"].append(cached)
                    results[size]["upload_new"].append(
                        upload(base, auths[size], f"new-{rep}-{i}", "1.0")
                    )
        print(report(args, results))
    finally:
        for server in servers.values():
            server.stop()
    return 0


def report(args, results: dict) -> str:
    sizes = args.sizes
    lines = [
        f"{machine()}; {args.busy}".rstrip("; "),
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, Basic auth, "
        f"{args.reps} interleaved repetitions (median, worst), {args.uploads} uploads per "
        "repetition and size",
        "",
        "| | " + " | ".join(f"{s:,} projects" for s in sizes) + " |",
        "|---" * (len(sizes) + 1) + "|",
    ]

    def rate(figure: str) -> str:
        cells = []
        for size in sizes:
            reps = results[size][figure]
            rps = [r["rps"] for r in reps]
            p99 = [r["p99_ms"] for r in reps]
            cells.append(f"{med(rps):,.0f} (worst {min(rps):,.0f}), p99 {med(p99):.1f} ms")
        return " | ".join(cells)

    def times(figure: str) -> str:
        return " | ".join(
            f"{med(results[s][figure]) * 1000:.1f} ms (worst {max(results[s][figure]) * 1000:.1f})"
            for s in sizes
        )

    lines.append(f"| `/simple/<name>/` req/s | {rate('project')} |")
    lines.append(f"| `/simple/` (gzip) req/s | {rate('root')} |")
    lines.append(f"| `/simple/` first GET after an upload | {times('first_root')} |")
    lines.append(f"| `/simple/` next GET (cached) | {times('cached_root')} |")
    lines.append(f"| upload, new version of a project | {times('upload_existing')} |")
    lines.append(f"| upload, new project | {times('upload_new')} |")
    small, big = sizes[0], sizes[-1]
    for figure in ("upload_existing", "upload_new"):
        ratio = med(results[big][figure]) / med(results[small][figure])
        lines.append(f"\n{figure}: {big:,} / {small:,} projects = {ratio:.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
