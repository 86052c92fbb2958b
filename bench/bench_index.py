#!/usr/bin/env python
"""Benchmark the simple index against nginx serving the same pages as files, devpi-server,
pypiserver and a bare Pyramid view returning the same bytes, and print the issue's table.

What it does, all on 127.0.0.1 and bounded in time:

1. builds N projects x 4 files (two releases, wheel + sdist each) straight into a fresh SQLite
   database (migrated by alembic) and a local storage directory (bulk inserts, no HTTP);
2. writes the same simple pages (rendered by extrapypi's own renderer) and files as a static tree
   for nginx (with pre-gzipped pages for ``gzip_static``) and the bare Pyramid app;
3. starts every target (``--targets``): ``pserve`` with production-like settings (temporary ini,
   real secret, bcrypt cost 12, waitress with 8 threads), nginx, devpi-server and pypiserver (each
   pip-installed into a scratch venv, ``--tools`` keeps them, and given the same projects), the
   bare Pyramid app (``bare_pyramid.py``); another server is a ``Target`` subclass named as
   ``module:Class`` (e.g. extrapypi behind its nginx front);
4. measures, in ``--reps`` interleaved repetitions (every target in turn, then again), with
   ``wrk -t2 -c16 --latency`` and an ``Authorization: Basic`` header on every request:
   ``/simple/<name>/``, ``/simple/`` (gzip), one small wheel and its ``.metadata``; plus
   ``pip download --no-deps`` of 20 projects and a big download (MB/s, server RSS growth);
   startup to first answer and idle RSS once per target;
5. prints a Markdown table of medians (and the worst repetition) and the ratios, all computed
   within the run (the machine is shared and noisy: ratios matter, not absolute figures).

Run from a checkout with the test extras installed:  ``.venv/bin/python bench/bench_index.py``
"""

import argparse
import base64
import hashlib
import html
import importlib
import io
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
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
        self.stop()  # never left running behind a failed run
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
    process.wait_http(url + "/+api", timeout=240)
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


# --- targets -----------------------------------------------------------------------------------


class Target:
    """One server answering the same index: started once, measured in every repetition.

    ``index`` is the URL of its ``/simple/`` (pip's ``--index-url`` without credentials),
    ``wheel`` and ``metadata`` the URLs of one small wheel and its PEP 658 file (None when the
    server has none). Subclass it (``start``) and list it in ``TARGETS`` or with ``--target
    module:Class`` for another server, e.g. extrapypi behind its nginx front.
    """

    name = "?"
    process: "Process | None" = None
    startup_s: float | None = None
    idle_rss_kb: int | None = None
    big_file: str | None = None

    def __init__(self, site: Site, work: Path, args):
        self.site, self.work, self.args = site, work, args
        self.index = ""

    def start(self) -> None:
        raise NotImplementedError

    def note_start(self, process: "Process", started: float) -> None:
        self.process = process
        self.startup_s = time.monotonic() - started
        time.sleep(1.0)  # settled: what it keeps while idle
        self.idle_rss_kb = rss_kb(process.pid)

    def project_url(self, name: str) -> str:
        return f"{self.index}{name}/"

    def discover_files(self, headers: dict) -> None:
        """The first wheel on the project page (and its ``.metadata`` when announced)."""
        request = urllib.request.Request(self.project_url(PROJECT_PAGE), headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            page = response.read().decode()
        anchor = re.search(r'<a href="([^"#]+\.whl)[^"]*"([^>]*)>', page)
        self.wheel = urllib.parse.urljoin(self.project_url(PROJECT_PAGE), html.unescape(anchor[1]))
        self.metadata = self.wheel + ".metadata" if "core-metadata" in anchor[2] else None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


class ExtrapypiTarget(Target):
    """``pserve`` with production settings (bcrypt cost 12, waitress 8 threads)."""

    name = "extrapypi"

    def start(self) -> None:
        started = time.monotonic()
        process, _ = start_extrapypi(self.site)
        self.note_start(process, started)
        self.index = f"http://127.0.0.1:{self.site.port}/simple/"
        self.big_file = f"http://127.0.0.1:{self.site.port}{self.site.big_path}"


class NginxStaticTarget(Target):
    """nginx serving the same pages and files from disk (no authentication: the ceiling)."""

    name = "nginx-static"

    def start(self) -> None:
        started = time.monotonic()
        process, port = start_nginx(self.site)
        self.note_start(process, started)
        self.index = f"http://127.0.0.1:{port}/simple/"
        self.big_file = f"http://127.0.0.1:{port}{self.site.big_path}"


class BarePyramidTarget(Target):
    """A bare Pyramid view on waitress returning the same bytes (``bare_pyramid.py``)."""

    name = "bare-pyramid"

    def start(self) -> None:
        port = free_port()
        script = str(Path(__file__).resolve().parent / "bare_pyramid.py")
        started = time.monotonic()
        process = Process(
            "bare-pyramid",
            [sys.executable, script, str(self.site.static), f"127.0.0.1:{port}"],
            self.work / "bare.log",
        )
        process.wait_http(f"http://127.0.0.1:{port}/ping")
        self.note_start(process, started)
        self.index = f"http://127.0.0.1:{port}/simple/"

    def discover_files(self, headers: dict) -> None:
        self.wheel = self.metadata = None  # pages only


def tool_venv(args, name: str, packages: list[str]) -> Path:
    """A scratch venv with ``packages`` (kept in ``--tools`` between runs)."""
    root = Path(args.tools) if args.tools else Path(tempfile.gettempdir()) / "extrapypi-bench-tools"
    venv = root / f"{name}-venv"
    if not (venv / "bin" / "python").exists():
        uv = os.path.join(os.path.dirname(sys.executable), "uv")
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        subprocess.run(
            [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *packages],
            check=True,
            timeout=600,
        )
    return venv / "bin"


class DevpiTarget(Target):
    name = "devpi"

    def start(self) -> None:
        bin_dir = tool_venv(self.args, "devpi", ["devpi-server"])
        started = time.monotonic()
        process, url = start_devpi(self.work, bin_dir)
        self.note_start(process, started)
        devpi_setup_index(url)
        log("uploading the projects to devpi")
        devpi_upload(url, self.site.dists)
        self.index = f"{url}/{DEVPI_INDEX}/+simple/"


class PypiserverTarget(Target):
    name = "pypiserver"

    def start(self) -> None:
        bin_dir = tool_venv(self.args, "pypiserver", ["pypiserver", "passlib"])
        htpasswd = self.work / "htpasswd"
        subprocess.run(
            [
                str(bin_dir / "python"),
                "-c",
                "import sys; from passlib.apache import HtpasswdFile as H; "
                "h = H(sys.argv[1], new=True); h.set_password(sys.argv[2], sys.argv[3]); h.save()",
                str(htpasswd),
                USERNAME,
                PASSWORD,
            ],
            check=True,
        )
        packages = self.work / "pypiserver-packages"
        packages.mkdir()
        for files in self.site.dists.values():
            for filename, content in files:
                (packages / filename).write_bytes(content)
        port = free_port()
        started = time.monotonic()
        process = Process(
            "pypiserver",
            [
                str(bin_dir / "pypi-server"),
                "run",
                "-i",
                "127.0.0.1",
                "-p",
                str(port),
                "-a",
                "update,download,list",
                "-P",
                str(htpasswd),
                str(packages),
            ],
            self.work / "pypiserver.log",
        )
        process.wait_http(f"http://127.0.0.1:{port}/simple/", headers={"Authorization": AUTH})
        self.note_start(process, started)
        self.index = f"http://127.0.0.1:{port}/simple/"


TARGETS = {
    "nginx-static": NginxStaticTarget,
    "devpi": DevpiTarget,
    "pypiserver": PypiserverTarget,
    "extrapypi": ExtrapypiTarget,
    "bare-pyramid": BarePyramidTarget,
}


def load_target(spec: str):
    """A name from ``TARGETS`` or ``module:Class`` (a ``Target`` subclass) on ``sys.path``."""
    if spec in TARGETS:
        return TARGETS[spec]
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute)


# --- the run -----------------------------------------------------------------------------------


def measure(target: Target, args, headers: dict, gzip_headers: dict, names: list[str]) -> dict:
    """One repetition of every figure for one target."""
    figures = {
        "project": wrk(target.project_url(PROJECT_PAGE), args, headers),
        "root": wrk(target.index, args, gzip_headers),
    }
    if target.wheel:
        figures["wheel"] = wrk(target.wheel, args, headers)
    if target.metadata:
        figures["metadata"] = wrk(target.metadata, args, headers)
    if not args.no_pip and not isinstance(target, BarePyramidTarget):
        host = target.index.split("://", 1)[1]
        credentials = f"http://{USERNAME}:{PASSWORD}@{host}"
        figures["pip_s"] = pip_download(credentials, names, target.work)
    if target.big_file and not args.no_big:
        pid = target.process.pid if isinstance(target, ExtrapypiTarget) else None
        base = rss_kb(pid) if pid else 0
        speed, grown = download_speed(target.big_file, 1, pid, base)
        figures["big_MBps"] = speed
        if pid:
            figures["big_rss_growth_MB"] = grown / 1024
    return figures


def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="extrapypi-bench-"))
    targets: list[Target] = []
    results: dict = {"sizes": {}, "machine": machine(), "args": vars(args)}
    try:
        site = Site(work)
        site.create()
        headers = {"Authorization": AUTH}
        gzip_headers = {**headers, "Accept-Encoding": "gzip"}
        names = [project_name(i) for i in range(20)]
        for size in sorted(args.projects):
            log(f"building {size} projects x 4 files")
            started = time.monotonic()
            site.add_projects(size, keep_dists=min(size, args.devpi_projects))
            if not hasattr(site, "big_path"):
                site.big_path = site.add_big_file(args.big_mb)
            site.write_static()
            log(f"built in {time.monotonic() - started:.1f}s")
            targets = []
            for spec in args.targets:
                target = load_target(spec)(site, work, args)
                log(f"starting {target.name}")
                target.start()
                targets.append(target)
                check_page(target.project_url(PROJECT_PAGE), headers)
                target.discover_files(headers)
            reps: dict[str, list[dict]] = {t.name: [] for t in targets}
            for rep in range(args.reps):
                for target in targets:  # interleaved: each rep measures every target in turn
                    figures = measure(target, args, headers, gzip_headers, names)
                    reps[target.name].append(figures)
                    log(f"{size} rep {rep + 1} {target.name}: {json.dumps(figures)}")
            results["sizes"][size] = {
                t.name: {
                    "reps": reps[t.name],
                    "startup_s": t.startup_s,
                    "idle_rss_MB": (t.idle_rss_kb or 0) / 1024,
                }
                for t in targets
            }
            for target in targets:
                target.stop()
            targets = []
        return results
    finally:
        for target in targets:
            target.stop()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    load = os.getloadavg()[0]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{os.cpu_count()} CPUs ({cpu}), load average {load:.1f} at the start, {when}"


# --- the table ---------------------------------------------------------------------------------

#: (row label, figure, what of it, higher is better)
ROWS = [
    ("`/simple/<name>/` req/s (p99 ms)", "project", "rps", True),
    ("`/simple/` gzip req/s (p99 ms)", "root", "rps", True),
    ("small wheel req/s (p99 ms)", "wheel", "rps", True),
    ("`.metadata` req/s (p99 ms)", "metadata", "rps", True),
    ("`pip download` of 20 projects (s)", "pip_s", None, False),
    ("big file MB/s", "big_MBps", None, True),
]


def values(reps: list[dict], figure: str, what: str | None) -> list[float]:
    found = [r[figure] for r in reps if figure in r]
    return [f[what] if what else f for f in found]


def summary(reps: list[dict], figure: str, what: str | None, higher: bool):
    """(median, worst) over the repetitions, or None."""
    found = values(reps, figure, what)
    if not found:
        return None
    return statistics.median(found), (min(found) if higher else max(found))


def cell(reps: list[dict], figure: str, what: str | None, higher: bool) -> str:
    found = summary(reps, figure, what, higher)
    if found is None:
        return "—"
    median, worst = found
    if what == "rps":
        p99 = statistics.median(values(reps, figure, "p99_ms"))
        return f"{median:,.0f} ({p99:.1f}) worst {worst:,.0f}"
    return f"{median:.2f} worst {worst:.2f}"


def report(results: dict) -> str:
    lines = [f"machine: {results['machine']}"]
    for size, by_target in results["sizes"].items():
        names = list(by_target)
        lines.append("")
        lines.append(
            f"{size} projects x 4 files (devpi and pypiserver: the first "
            f"{min(size, results['args']['devpi_projects'])}), medians of "
            f"{len(next(iter(by_target.values()))['reps'])} interleaved repetitions (and the "
            "worst), Basic auth on every request"
        )
        lines.append("| | " + " | ".join(names) + " |")
        lines.append("|---" * (len(names) + 1) + "|")
        for label, figure, what, higher in ROWS:
            row = [cell(by_target[n]["reps"], figure, what, higher) for n in names]
            if all(c == "—" for c in row):
                continue
            lines.append(f"| {label} | " + " | ".join(row) + " |")
        startup = [
            f"{t['startup_s']:.2f} s / {t['idle_rss_MB']:.0f} MB" for t in by_target.values()
        ]
        lines.append("| startup / idle RSS | " + " | ".join(startup) + " |")
        lines.extend(ratios(by_target))
    return "\n".join(lines)


def ratios(by_target: dict) -> list[str]:
    """The targets' ratios, each computed within this run (medians, and worst repetitions)."""
    ours = by_target.get("extrapypi")
    if ours is None:
        return []
    out = [""]

    def compare(label, figure, what, higher, peer, invert=False):
        if peer not in by_target:
            return
        a = summary(ours["reps"], figure, what, higher)
        b = summary(by_target[peer]["reps"], figure, what, higher)
        if a is None or b is None:
            return
        out.append(
            f"- {label} vs {peer}: {ratio(a[0], b[0])} (median), {ratio(a[1], b[1])} (worst)"
        )

    for peer in ("devpi", "bare-pyramid", "nginx-static"):
        compare("`/simple/<name>/` req/s", "project", "rps", True, peer)
        compare("`/simple/` req/s", "root", "rps", True, peer)
    compare("`pip download` time", "pip_s", None, False, "nginx-static")
    compare("big file MB/s", "big_MBps", None, True, "nginx-static")
    page = summary(ours["reps"], "project", "rps", True)
    for figure in ("wheel", "metadata"):
        found = summary(ours["reps"], figure, "rps", True)
        if page and found:
            out.append(
                f"- extrapypi {figure} req/s vs its project page: {ratio(found[0], page[0])} "
                f"(median), {ratio(found[1], page[1])} (worst)"
            )
    growth = [r["big_rss_growth_MB"] for r in ours["reps"] if "big_rss_growth_MB" in r]
    if growth:
        out.append(f"- extrapypi RSS growth during the big download: {max(growth):.1f} MB at most")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--projects",
        type=int,
        nargs="+",
        default=[1000],
        help="index sizes to measure, each grows the same index (default: 1000)",
    )
    parser.add_argument(
        "--targets",
        nargs="+",
        default=["nginx-static", "devpi", "pypiserver", "extrapypi", "bare-pyramid"],
        help=f"servers to measure: {', '.join(TARGETS)}, or module:Class (a Target subclass)",
    )
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions (>= 3)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (-t)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (-c)")
    parser.add_argument("--big-mb", type=int, default=100, help="size of the big download (MB)")
    parser.add_argument(
        "--devpi-projects",
        type=int,
        default=1000,
        help="devpi-server and pypiserver get the first this many projects (uploads are slow)",
    )
    parser.add_argument("--no-pip", action="store_true", help="skip the pip download runs")
    parser.add_argument("--no-big", action="store_true", help="skip the big file download")
    parser.add_argument("--tools", metavar="DIR", help="keep the devpi/pypiserver venvs here")
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
