"""A real nginx (Debian's package) run unprivileged-ish from a temporary prefix, on a free port:
its pid, logs and temporary files stay in that prefix. For the nginx front's tests and bench."""

import os
import shutil
import subprocess
import time
from pathlib import Path

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_conf(prefix: Path, include: Path, workers: str = "1") -> Path:
    """A minimal nginx.conf whose http block includes ``include`` (e.g. the front's config)."""
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    user = "user root root;\n" if os.geteuid() == 0 else ""  # else nginx runs as whoever runs it
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""{user}worker_processes {workers};
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
    include {include};
}}
"""
    )
    return conf


def front_config(extrapypi: str, ini: str, port: int) -> str:
    """What ``extrapypi nginx-config INI`` prints, listening on 127.0.0.1:``port``."""
    return subprocess.run(
        [extrapypi, "nginx-config", ini, "--listen", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def start_nginx(conf: Path, prefix: Path, ready, timeout: float = 20) -> subprocess.Popen:
    """nginx in the foreground; returns once ``ready()`` stops raising OSError."""
    log = open(prefix / "nginx.out", "w")
    process = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf)], stdout=log, stderr=log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {(prefix / 'nginx.out').read_text()}")
        try:
            ready()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("nginx did not answer")
