"""Upload speed and server memory with real twine: extrapypi (``pserve``) against pypiserver.

Measures, in one run so the ratios are fair on a noisy machine:

* many small files in one ``twine upload`` (files/s), on an index preloaded with N projects;
* one big upload per size (default 100 MB and 500 MB, the size limit raised): seconds, and the
  server's peak RSS growth (``VmHWM`` in /proc/<pid>/status, before vs after).

pypiserver is installed into a scratch venv the script makes (``uv venv`` + ``uv pip install
pypiserver waitress``) and run with ``-a . -P .`` (no auth; bottle picks waitress), while
extrapypi checks Basic credentials on every request (with its in-process credential cache).
Rounds are interleaved and the best time of each measure is kept: a shared machine's noise only
ever slows a run down. Everything lives in a temporary directory removed at the end; servers
are always stopped.

    .venv/bin/python bench/bench_upload.py --help
"""

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from dists import wheel_bytes, write  # noqa: E402

BIN = Path(sys.executable).parent
PASSWORD = "bench-" + secrets.token_urlsafe(12)


def tool(name: str) -> str:
    candidate = BIN / name
    return str(candidate) if candidate.exists() else shutil.which(name) or name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers (a 401 is an answer)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no answer from {url} within {seconds}s")


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def memory_kib(pid: int) -> dict[str, int]:
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0])
    return values


def twine_upload(url: str, files: list[Path], username: str, timeout: float) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    command = [tool("twine"), "upload", "--repository-url", url, "-u", username, "-p", PASSWORD,
               "--non-interactive", "--disable-progress-bar", *map(str, files)]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"twine failed against {url}:\n{result.stdout}\n{result.stderr}")
    return elapsed


def big_wheel(directory: Path, name: str, megabytes: int) -> Path:
    """A valid wheel holding ``megabytes`` of random bytes, stored (not deflated)."""
    _, _, metadata = wheel_bytes(name, "1.0")
    path = directory / f"{name}-1.0-py3-none-any.whl"
    info = f"{name}-1.0.dist-info"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{info}/METADATA", metadata)
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n")  # fmt: skip
        with archive.open(f"{name}/blob.bin", "w", force_zip64=True) as blob:
            for _ in range(megabytes):
                blob.write(os.urandom(1024 * 1024))
        archive.writestr(f"{info}/RECORD", "")
    return path


class Extrapypi:
    label = "extrapypi"

    def __init__(self, work: Path, limit_mb: int):
        self.work = work / "extrapypi"
        self.work.mkdir()
        self.port = free_port()
        self.ini = self.work / "production.ini"
        self.ini.write_text(
            "[app:main]\nuse = egg:extrapypi\n"
            f"sqlalchemy.url = sqlite:///{self.work}/extrapypi.sqlite\n"
            f"extrapypi.secret = {secrets.token_urlsafe(32)}\n"
            f"extrapypi.storage.path = {self.work}/packages\n"
            f"extrapypi.upload_limit = {limit_mb}M\n"
            "retry.attempts = 3\n"
            "[alembic]\nscript_location = extrapypi:migrations\n"
            f"[server:main]\nuse = egg:waitress#main\nlisten = 127.0.0.1:{self.port}\n"
            "threads = 8\nmax_request_body_size = 2147483648\n"
        )
        subprocess.run(
            [tool("initialize_db"), str(self.ini), "--admin-user", "bench", "--admin-password",
             PASSWORD, "--installer-password", PASSWORD],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}/simple/"
        self.process = None

    def preload(self, projects: int, directory: Path) -> None:
        """Put ``projects`` packages in the index first, through the same ingest as uploads."""
        import io

        import transaction
        from pyramid.paster import get_appsettings

        from extrapypi.models import get_engine, get_session_factory, get_tm_session
        from extrapypi.services.accounts import get_user
        from extrapypi.services.uploads import Limits, ingest
        from extrapypi.storage import build_storage

        settings = get_appsettings(str(self.ini))
        factory = get_session_factory(get_engine(settings))
        storage = build_storage(settings)
        for index in range(projects):
            filename, content, _ = wheel_bytes(f"preload-{index}", "1.0")
            tm = transaction.TransactionManager(explicit=True)
            with tm:
                dbsession = get_tm_session(factory, tm)
                user = get_user(dbsession, "bench")
                ingest(dbsession, storage, tm.get(), user, filename, io.BytesIO(content),
                       limits=Limits(10 * 1024 * 1024))  # fmt: skip

    def start(self) -> None:
        self.log = open(self.work / "server.log", "w")  # noqa: SIM115 - lives with the server
        self.process = subprocess.Popen([tool("pserve"), str(self.ini)], stdout=self.log,
                                        stderr=subprocess.STDOUT)  # fmt: skip
        wait_for(f"http://127.0.0.1:{self.port}/ping", self.process)


class PypiServer:
    label = "pypiserver"

    def __init__(self, work: Path, timeout: float, auth: str = "bcrypt"):
        self.work = work / "pypiserver"
        self.packages = self.work / "packages"
        self.packages.mkdir(parents=True)
        venv = self.work / "venv"
        python = str(venv / "bin" / "python")
        subprocess.run([tool("uv"), "venv", "-q", str(venv)], check=True, timeout=timeout)
        subprocess.run(
            [tool("uv"), "pip", "install", "-q", "--python", python,
             "pypiserver", "waitress", "passlib", "bcrypt==4.0.1"],  # passlib breaks on bcrypt 5
            check=True, timeout=timeout,
        )  # fmt: skip
        self.auth = ["-a", ".", "-P", "."]
        if auth == "bcrypt":
            # As deployed (and as the issue measured it): uploads need a login from an
            # htpasswd file of bcrypt hashes, which pypiserver checks on every request.
            htpasswd = self.work / "htpasswd"
            subprocess.run(
                [python, "-c", "import sys; from passlib.apache import HtpasswdFile; "
                 "f = HtpasswdFile(sys.argv[1], new=True, default_scheme='bcrypt'); "
                 "f.set_password('bench', sys.argv[2]); f.save()", str(htpasswd), PASSWORD],
                check=True, timeout=timeout,
            )  # fmt: skip
            self.auth = ["-a", "update", "-P", str(htpasswd)]
        self.label = f"pypiserver ({auth} auth)"
        self.server = venv / "bin" / "pypi-server"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process = None

    def preload(self, projects: int, directory: Path) -> None:
        for index in range(projects):
            write(self.packages, wheel_bytes(f"preload-{index}", "1.0"))

    def start(self) -> None:
        self.log = open(self.work / "server.log", "w")  # noqa: SIM115 - lives with the server
        self.process = subprocess.Popen(
            [str(self.server), "run", "-p", str(self.port), "-i", "127.0.0.1", *self.auth,
             "--server", "auto", str(self.packages)],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for(self.url, self.process)


def measure_round(server, small: list[Path], big: dict[int, Path], timeout: float) -> dict:
    elapsed = twine_upload(server.url, small, "bench", timeout)
    result = {"small_files_per_s": len(small) / elapsed}
    for megabytes, path in big.items():
        before = memory_kib(server.process.pid)
        result[f"{megabytes}MB_seconds"] = twine_upload(server.url, [path], "bench", timeout)
        after = memory_kib(server.process.pid)
        result[f"{megabytes}MB_peak_rss_growth_MiB"] = (after["VmHWM"] - before["VmHWM"]) / 1024
    return result


def best(rounds: list[dict]) -> dict:
    """Best speed over the rounds (noise only ever slows), worst memory growth."""
    merged = {}
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        if key.endswith("_seconds"):
            merged[key] = min(values)
        elif key.endswith("_per_s"):
            merged[key] = max(values)
        else:
            merged[key] = max(values)
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small-files", type=int, default=200, help="files in the one upload")
    parser.add_argument("--preload", type=int, default=1000, help="projects already indexed")
    parser.add_argument("--big-mb", type=int, nargs="*", default=[100, 500],
                        help="sizes of the big uploads, in MB (none: skip)")  # fmt: skip
    parser.add_argument("--pypiserver-auth", choices=("bcrypt", "none"), default="bcrypt",
                        help="pypiserver behind an htpasswd (bcrypt) login, or open")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds; the best time of each is kept")  # fmt: skip
    parser.add_argument("--no-pypiserver", action="store_true", help="measure extrapypi alone")
    parser.add_argument("--timeout", type=float, default=240, help="per twine call, seconds")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    started = time.monotonic()
    servers = []
    try:
        limit = max(args.big_mb, default=100) + 10
        servers.append(Extrapypi(work, limit))
        if not args.no_pypiserver:
            servers.append(PypiServer(work, args.timeout, args.pypiserver_auth))
        for server in servers:
            server.preload(args.preload, work)
            server.start()
        rounds = {server.label: [] for server in servers}
        for number in range(args.rounds):
            round_dir = work / f"round{number}"
            round_dir.mkdir()
            small = [
                write(round_dir, wheel_bytes(f"small-{i}", f"{number}.0"))
                for i in range(args.small_files)
            ]
            big = {mb: big_wheel(round_dir, f"big{mb}r{number}", mb) for mb in args.big_mb}
            for server in servers:
                rounds[server.label].append(measure_round(server, small, big, args.timeout))
            shutil.rmtree(round_dir)
        results = {label: best(values) for label, values in rounds.items()}
        for label, values in results.items():
            print(f"{label}: " + ", ".join(f"{k}={v:.2f}" for k, v in values.items()))
    finally:
        for server in servers:
            stop(server.process)
        shutil.rmtree(work, ignore_errors=True)
    ours = results["extrapypi"]
    peers = [label for label in results if label.startswith("pypiserver")]
    if peers:
        peer = results[peers[0]]
        print(f"\nratios (extrapypi / {peers[0]}), best of", args.rounds, "rounds:")
        print(f"  small files/s: {ours['small_files_per_s'] / peer['small_files_per_s']:.2f}x "
              f"(target >= 3x)")  # fmt: skip
        for mb in args.big_mb:
            ratio = ours[f"{mb}MB_seconds"] / peer[f"{mb}MB_seconds"]
            print(f"  {mb} MB upload time: {ratio:.2f}x (target <= 1.2x); peak RSS growth "
                  f"{ours[f'{mb}MB_peak_rss_growth_MiB']:.1f} MiB vs "
                  f"{peer[f'{mb}MB_peak_rss_growth_MiB']:.1f} MiB (target < 30 MiB)")  # fmt: skip
    print(f"\ntotal {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
