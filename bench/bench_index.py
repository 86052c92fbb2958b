#!/usr/bin/env python
"""Benchmark the simple index against nginx serving the same pages as files, and devpi-server.

What it does, all on 127.0.0.1 and bounded in time:

1. builds N projects x 4 files (two releases, wheel + sdist each) straight into a fresh SQLite
   database (migrated by alembic) and a local storage directory (bulk inserts, no HTTP);
2. writes the same simple pages (rendered by extrapypi's own renderer) and files as a static tree
   for nginx (with pre-gzipped pages for ``gzip_static``);
3. starts ``pserve`` with production-like settings (temporary ini, real secret, bcrypt cost 12,
   waitress with 8 threads) and nginx (a minimal nginx.conf in the temp dir, on a free port);
4. optionally pip-installs devpi-server into a scratch venv and uploads the same projects;
5. measures with ``wrk -t2 -c16 --latency`` (an ``Authorization: Basic`` header on every request)
   ``/simple/<name>/`` and ``/simple/`` (with ``Accept-Encoding: gzip``) at each size, plus
   ``pip download --no-deps`` of 20 projects, a 100 MB download (MB/s and server RSS growth) and
   startup-to-first-``/ping``; prints figures and ratios.

Run from a checkout with the test extras installed:  ``.venv/bin/python bench/bench_index.py``
"""

import argparse
import base64
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import bcrypt
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import write_ini  # noqa: E402
from dists import sdist_bytes, wheel_bytes  # noqa: E402

from extrapypi import schema  # noqa: E402
from extrapypi.models import File, IndexState, Package, Release, User  # noqa: E402
from extrapypi.services.index import project_page, render_html, root_page  # noqa: E402
from extrapypi.services.names import canonical_version, version_sort_key  # noqa: E402

USERNAME, PASSWORD = "bench", "bench-password-1"
AUTH = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
VERSIONS = ("1.0", "2.0")
PROJECT_PAGE = "proj-00007"
DEVPI_INDEX = "bench/dev"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def project_name(i: int) -> str:
    return f"proj-{i:05d}"


def digests(content: bytes) -> dict:
    return {
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "md5": hashlib.md5(content, usedforsecurity=False).hexdigest(),
        "blake2b_256": hashlib.blake2b(content, digest_size=32).hexdigest(),
    }


def insert_release(connection, package_id: int, version: str, now, requires_python: str = ""):
    return connection.execute(
        sa.insert(Release).values(
            package_id=package_id,
            version=version,
            canonical_version=canonical_version(version),
            sort_key=version_sort_key(version),
            requires_python=requires_python,
            requires_dist=[],
            provides_extra=[],
            project_urls=[],
            classifiers=[],
            created=now,
        )
    ).inserted_primary_key[0]


class Site:
    """The database, the storage directory and the static mirror of one benchmark run."""

    def __init__(self, work: Path):
        self.work = work
        self.storage = work / "packages"
        self.static = work / "www"
        self.storage.mkdir()
        self.static.mkdir()
        self.db_url = f"sqlite:///{work / 'extrapypi.sqlite'}"
        self.secret = base64.b64encode(os.urandom(24)).decode()
        self.ini = work / "bench.ini"
        self.port = free_port()
        self.count = 0
        self.dists: dict[str, list[tuple[str, bytes]]] = {}  # for devpi uploads

    def write_ini(self) -> None:
        """The tests' ini (waitress, 8 threads, WARN logging) with production-like settings."""
        settings = {
            "pyramid.reload_templates": "false",
            "sqlalchemy.url": self.db_url,
            "retry.attempts": "3",
            "extrapypi.secret": self.secret,
            "extrapypi.storage": "local",
            "extrapypi.storage.path": str(self.storage),
            "extrapypi.anonymous_read": "false",
            "extrapypi.dashboard": "true",
        }
        write_ini(self.ini, settings, port=self.port)

    def create(self) -> None:
        self.write_ini()
        schema.upgrade(str(self.ini))
        self.engine = sa.create_engine(self.db_url)
        password_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(12)).decode()
        with self.engine.begin() as connection:
            connection.execute(
                sa.insert(User).values(
                    username=USERNAME, password_hash=password_hash, role="installer"
                )
            )

    def store(self, normalized: str, filename: str, content: bytes) -> None:
        directory = self.storage / normalized
        directory.mkdir(exist_ok=True)
        (directory / filename).write_bytes(content)

    def add_projects(self, count: int, keep_dists: int = 0) -> None:
        """Grow the index to ``count`` projects, in bulk (one transaction)."""
        now = datetime.now(UTC).replace(tzinfo=None)
        start = self.count
        with self.engine.begin() as connection:
            for i in range(start, count):
                name = project_name(i)
                package_id = connection.execute(
                    sa.insert(Package).values(
                        name=name, normalized_name=name, summary="", created=now, updated=now
                    )
                ).inserted_primary_key[0]
                files = []
                for version in VERSIONS:
                    requires_python = ">=3.8"
                    release_id = insert_release(
                        connection, package_id, version, now, requires_python
                    )
                    for builder, kind in ((wheel_bytes, "bdist_wheel"), (sdist_bytes, "sdist")):
                        filename, content, metadata = builder(
                            name, version, requires_python=requires_python
                        )
                        self.store(name, filename, content)
                        metadata_sha256 = None
                        if kind == "bdist_wheel":
                            self.store(name, filename + ".metadata", metadata.encode())
                            metadata_sha256 = hashlib.sha256(metadata.encode()).hexdigest()
                        files.append(
                            dict(
                                release_id=release_id,
                                filename=filename,
                                filetype=kind,
                                python_version="py3" if kind == "bdist_wheel" else "source",
                                requires_python=requires_python,
                                metadata_sha256=metadata_sha256,
                                upload_time=now,
                                **digests(content),
                            )
                        )
                        if i < keep_dists:
                            self.dists.setdefault(name, []).append((filename, content))
                connection.execute(sa.insert(File), files)
            connection.execute(sa.update(IndexState).values(serial=IndexState.serial + 1))
        self.count = count

    def add_big_file(self, megabytes: int) -> str:
        """One project with a ``megabytes`` MB file; returns its URL path."""
        name, version = "bigfile", "1.0"
        filename = f"bigfile-{version}-py3-none-any.whl"
        content = os.urandom(1024 * 1024) * megabytes
        self.store(name, filename, content)
        now = datetime.now(UTC).replace(tzinfo=None)
        with self.engine.begin() as connection:
            package_id = connection.execute(
                sa.insert(Package).values(name=name, normalized_name=name, created=now)
            ).inserted_primary_key[0]
            release_id = insert_release(connection, package_id, version, now)
            connection.execute(
                sa.insert(File).values(
                    release_id=release_id,
                    filename=filename,
                    filetype="bdist_wheel",
                    python_version="py3",
                    upload_time=now,
                    **digests(content),
                )
            )
            connection.execute(sa.update(IndexState).values(serial=IndexState.serial + 1))
        target = self.static / "packages" / name / version
        target.mkdir(parents=True, exist_ok=True)
        os.link(self.storage / name / filename, target / filename)
        return f"/packages/{name}/{version}/{filename}"

    def write_static(self) -> None:
        """The same pages (extrapypi's renderer) and files as a tree nginx serves."""
        session = sa.orm.Session(self.engine)
        try:
            pages = {"simple/index.html": render_html(root_page(session))}
            for (normalized,) in session.execute(sa.select(Package.normalized_name)):
                if (self.static / "simple" / normalized).exists():
                    continue
                page = project_page(session, normalized)
                pages[f"simple/{normalized}/index.html"] = render_html(page)
                for file in page["files"]:
                    version = file["url"].split("/")[-2]
                    target = self.static / "packages" / normalized / version
                    target.mkdir(parents=True, exist_ok=True)
                    source = self.storage / normalized / file["filename"]
                    if not (target / file["filename"]).exists():
                        os.link(source, target / file["filename"])
                    if file["core-metadata"]:
                        metadata = file["filename"] + ".metadata"
                        os.link(self.storage / normalized / metadata, target / metadata)
        finally:
            session.close()
        import gzip

        for path, body in pages.items():
            full = self.static / path
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_bytes(body)
            Path(str(full) + ".gz").write_bytes(gzip.compress(body, 6))


class Process:
    def __init__(self, name: str, args: list[str], log_path: Path, **kw):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "w")  # noqa: SIM115 - open while the process runs
        self.process = subprocess.Popen(args, stdout=self.log, stderr=self.log, **kw)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_http(self, url: str, timeout: float = 60, headers: dict | None = None) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")
            try:
                request = urllib.request.Request(url, headers=headers or {})
                with urllib.request.urlopen(request, timeout=2) as response:
                    response.read()
                    return time.monotonic() - start
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"{self.name} did not answer {url}: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_extrapypi(site: Site) -> tuple[Process, float]:
    pserve = os.path.join(os.path.dirname(sys.executable), "pserve")
    started = time.monotonic()
    process = Process("pserve", [pserve, str(site.ini)], site.work / "pserve.log")
    process.wait_http(f"http://127.0.0.1:{site.port}/ping", timeout=30)
    return process, time.monotonic() - started


def start_nginx(site: Site) -> tuple[Process, int]:
    port = free_port()
    prefix = site.work / f"nginx-{port}"
    (prefix / "logs").mkdir(parents=True)
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""{user}worker_processes auto;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    gzip_static on;
    types {{ text/html html; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {site.static};
        index index.html;
    }}
}}
"""
    )
    process = Process("nginx", ["nginx", "-p", str(prefix), "-c", str(conf)], prefix / "out.log")
    process.wait_http(f"http://127.0.0.1:{port}/simple/")
    return process, port


def wrk(url: str, args, headers: dict) -> dict:
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s"]
    command.append("--latency")
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=args.duration + 30
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    result = {"rps": rps, "p99_ms": float(p99.group(1)) * scale}
    if errors:
        result["non_2xx"] = int(errors.group(1))
    if socket_errors:
        result["socket_errors"] = socket_errors.group(1)
    return result


def check_page(url: str, headers: dict) -> int:
    """Fail loudly if a URL does not answer 200 (a benchmark of 401s measures nothing)."""
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return len(response.read())


# --- devpi -------------------------------------------------------------------------------------


def install_devpi(work: Path) -> Path:
    venv = work / "devpi-venv"
    uv = os.path.join(os.path.dirname(sys.executable), "uv")
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "devpi-server"],
        check=True,
        timeout=300,
    )
    return venv / "bin"


def start_devpi(work: Path, bin_dir: Path) -> tuple[Process, str]:
    serverdir = work / "devpi"
    subprocess.run(
        [str(bin_dir / "devpi-init"), "--serverdir", str(serverdir), "--root-passwd", PASSWORD],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    process = Process(
        "devpi-server",
        [
            str(bin_dir / "devpi-server"),
            "--serverdir",
            str(serverdir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--offline-mode",
        ],
        work / "devpi.log",
    )
    url = f"http://127.0.0.1:{port}"
    process.wait_http(url + "/+api", timeout=60)
    return process, url


def devpi_request(method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def devpi_setup_index(url: str) -> None:
    root_auth = {"Authorization": "Basic " + base64.b64encode(f"root:{PASSWORD}".encode()).decode()}
    json_headers = {"Content-Type": "application/json", "Accept": "application/json"}
    devpi_request(
        "PUT",
        f"{url}/{USERNAME}",
        json.dumps({"password": PASSWORD}).encode(),
        {**json_headers, **root_auth},
    )
    devpi_request(
        "PUT",
        f"{url}/{DEVPI_INDEX}",
        json.dumps({"bases": [], "volatile": True}).encode(),
        {**json_headers, "Authorization": AUTH},
    )


def multipart(fields: dict, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = "----extrapypi-bench-" + os.urandom(8).hex()
    out = io.BytesIO()
    for key, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode())
        out.write(f"{value}\r\n".encode())
    out.write(
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
    )
    out.write(content + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def devpi_login(url: str) -> str:
    """A devpi auth token: Basic credentials cost devpi an argon2 check (~0.25 s) per upload."""
    answer = devpi_request(
        "POST",
        f"{url}/+login",
        json.dumps({"user": USERNAME, "password": PASSWORD}).encode(),
        {"Content-Type": "application/json", "Accept": "application/json"},
    )
    token = json.loads(answer)["result"]["password"]
    return base64.b64encode(f"{USERNAME}:{token}".encode()).decode()


def devpi_upload(url: str, dists: dict[str, list[tuple[str, bytes]]], workers: int = 4) -> None:
    from concurrent.futures import ThreadPoolExecutor

    token = devpi_login(url)

    def upload(item):
        name, files = item
        for filename, content in files:
            version = filename.split("-")[1].removesuffix(".tar.gz")
            fields = {":action": "file_upload", "name": name, "version": version}
            body, content_type = multipart(fields, filename, content)
            devpi_request(
                "POST",
                f"{url}/{DEVPI_INDEX}/",
                body,
                {"Content-Type": content_type, "X-Devpi-Auth": token},
            )

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(upload, dists.items()))


# --- the run -----------------------------------------------------------------------------------


def pip_download(index_url: str, names: list[str], work: Path) -> float:
    target = Path(tempfile.mkdtemp(dir=work, prefix="pip-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "-d",
            str(target),
            "--index-url",
            index_url,
            *names,
        ],
        check=True,
        env=env,
        timeout=300,
    )
    elapsed = time.monotonic() - started
    assert len(list(target.iterdir())) == len(names), "pip did not fetch every project"
    shutil.rmtree(target)
    return elapsed


def download_speed(
    url: str, runs: int = 3, pid: int | None = None, base: int = 0
) -> tuple[float, int]:
    """Best MB/s of ``runs`` curl downloads, and the peak RSS (KB) of ``pid`` over ``base``."""
    peak = [0]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kb(pid) - base)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    if pid:
        watcher.start()
    speeds = []
    try:
        for _ in range(runs):
            output = subprocess.run(
                [
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{speed_download} %{size_download}",
                    "-H",
                    f"Authorization: {AUTH}",
                    url,
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            ).stdout.split()
            assert int(float(output[1])) >= 1024 * 1024, output
            speeds.append(float(output[0]) / 1e6)
    finally:
        done.set()
    return max(speeds), peak[0]


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="extrapypi-bench-"))
    processes: list[Process] = []
    results: dict = {"sizes": {}}
    devpi_thread = None
    devpi_bin: dict = {}
    try:
        if not args.no_devpi:

            def install():
                try:
                    devpi_bin["bin"] = install_devpi(work)
                except Exception as error:  # reported, the rest of the bench goes on
                    devpi_bin["error"] = str(error)

            devpi_thread = threading.Thread(target=install)
            devpi_thread.start()
        site = Site(work)
        site.create()
        headers = {"Authorization": AUTH}
        gzip_headers = {**headers, "Accept-Encoding": "gzip"}
        devpi = None
        devpi_url = ""
        sizes = sorted(args.projects)
        for size in sizes:
            log(f"building {size} projects x 4 files")
            started = time.monotonic()
            site.add_projects(size, keep_dists=min(size, args.devpi_projects))
            site.write_static()
            log(f"built in {time.monotonic() - started:.1f}s")
            if size == sizes[0]:
                big_path = site.add_big_file(args.big_mb)
            server, startup = start_extrapypi(site)
            processes.append(server)
            results.setdefault("startup_to_ping_s", round(startup, 2))
            nginx, nginx_port = start_nginx(site)
            processes.append(nginx)
            ours = f"http://127.0.0.1:{site.port}"
            static = f"http://127.0.0.1:{nginx_port}"
            figures: dict = {}
            targets = {
                "project": (f"/simple/{PROJECT_PAGE}/", headers),
                "root_gzip": ("/simple/", gzip_headers),
            }
            if devpi_thread is not None and size <= args.devpi_projects and devpi is None:
                devpi_thread.join()
                if "bin" in devpi_bin:
                    log("starting devpi-server and uploading the same projects")
                    devpi, devpi_url = start_devpi(work, devpi_bin["bin"])
                    processes.append(devpi)
                    devpi_setup_index(devpi_url)
                    started = time.monotonic()
                    devpi_upload(devpi_url, site.dists)
                    log(f"devpi upload took {time.monotonic() - started:.1f}s")
                else:
                    results["devpi_error"] = devpi_bin.get("error")
            for label, (path, hdrs) in targets.items():
                check_page(ours + path, hdrs)
                check_page(static + path, hdrs)
                figures[label] = {
                    "extrapypi": wrk(ours + path, args, hdrs),
                    "nginx": wrk(static + path, args, hdrs),
                }
                if devpi is not None and size <= args.devpi_projects:
                    devpi_path = f"{devpi_url}/{DEVPI_INDEX}/+simple/" + path[len("/simple/") :]
                    check_page(devpi_path, hdrs)
                    figures[label]["devpi"] = wrk(devpi_path, args, hdrs)
                log(f"{size} {label}: {json.dumps(figures[label])}")
            if size == sizes[0]:
                names = [project_name(i) for i in range(20)]
                creds = f"http://{USERNAME}:{PASSWORD}@127.0.0.1:{site.port}/simple/"
                ours_s = nginx_s = float("inf")
                for _ in range(3):  # alternated, best of each (the first pays one bcrypt check)
                    ours_s = min(ours_s, pip_download(creds, names, work))
                    nginx_s = min(nginx_s, pip_download(static + "/simple/", names, work))
                results["pip_download_20"] = {
                    "extrapypi_s": round(ours_s, 2),
                    "nginx_s": round(nginx_s, 2),
                    "ratio": ratio(ours_s, nginx_s),
                }
                ours_mb, nginx_mb, growth = 0.0, 0.0, 0
                base = rss_kb(server.pid)
                for _ in range(3):  # alternated, best of each: the machine is shared and noisy
                    speed, grown = download_speed(ours + big_path, 2, server.pid, base)
                    ours_mb, growth = max(ours_mb, speed), max(growth, grown)
                    nginx_mb = max(nginx_mb, download_speed(static + big_path, runs=2)[0])
                results["download_100mb"] = {
                    "extrapypi_MBps": round(ours_mb, 1),
                    "nginx_MBps": round(nginx_mb, 1),
                    "ratio": ratio(ours_mb, nginx_mb),
                    "server_rss_growth_MB": round(growth / 1024, 1),
                }
                log(json.dumps({k: results[k] for k in ("pip_download_20", "download_100mb")}))
                # The stack's own ceilings in this run: no database at all, and the identity only.
                results["ceiling"] = {
                    "ping_anonymous": wrk(ours + "/ping", args, {}),
                    "ping_basic_auth": wrk(ours + "/ping", args, headers),
                }
                log(f"ceiling: {json.dumps(results['ceiling'])}")
            results["sizes"][size] = figures
            for process in (server, nginx):
                process.stop()
                processes.remove(process)
        return results
    finally:
        for process in processes:
            process.stop()
        if devpi_thread is not None:
            devpi_thread.join()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(results: dict) -> str:
    lines = [f"startup to first /ping: {results['startup_to_ping_s']} s"]
    if "ceiling" in results:
        anonymous = results["ceiling"]["ping_anonymous"]
        basic = results["ceiling"]["ping_basic_auth"]
        lines.append(
            f"ceilings: GET /ping {anonymous['rps']:.0f} req/s (no database); with Basic auth "
            f"(identity only) {basic['rps']:.0f} req/s p99 {basic['p99_ms']:.1f} ms"
        )
    for size, figures in results["sizes"].items():
        for label, peers in figures.items():
            ours = peers["extrapypi"]
            line = (
                f"{size:>6} projects {label:<10} extrapypi {ours['rps']:>8.0f} req/s "
                f"p99 {ours['p99_ms']:.1f} ms | nginx {peers['nginx']['rps']:.0f} "
                f"({ratio(ours['rps'], peers['nginx']['rps'])} of nginx)"
            )
            if "devpi" in peers:
                line += (
                    f" | devpi {peers['devpi']['rps']:.0f} p99 {peers['devpi']['p99_ms']:.1f} ms"
                    f" ({ratio(ours['rps'], peers['devpi']['rps'])} devpi)"
                )
            if "ceiling" in results:
                basic = results["ceiling"]["ping_basic_auth"]["rps"]
                line += f" | {ratio(ours['rps'], basic)} of the Basic-auth /ping ceiling"
            lines.append(line)
    if "pip_download_20" in results:
        p = results["pip_download_20"]
        lines.append(
            f"pip download --no-deps of 20 projects: {p['extrapypi_s']} s vs nginx "
            f"{p['nginx_s']} s ({p['ratio']} of nginx's time)"
        )
    if "download_100mb" in results:
        d = results["download_100mb"]
        lines.append(
            f"100 MB download: {d['extrapypi_MBps']} MB/s vs nginx {d['nginx_MBps']} MB/s "
            f"({d['ratio']}); server RSS growth {d['server_rss_growth_MB']} MB"
        )
    if results.get("devpi_error"):
        lines.append(f"devpi not measured: {results['devpi_error']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--projects",
        type=int,
        nargs="+",
        default=[1000, 10000],
        help="index sizes to measure, each grows the same index (default: 1000 10000)",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (-t)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (-c)")
    parser.add_argument("--big-mb", type=int, default=100, help="size of the big download (MB)")
    parser.add_argument(
        "--devpi-projects",
        type=int,
        default=1000,
        help="measure devpi-server at sizes up to this many projects (uploading is slow)",
    )
    parser.add_argument("--no-devpi", action="store_true", help="skip devpi-server")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    for tool in ("wrk", "nginx", "curl"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (Debian: apt-get install {tool})")
    results = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
