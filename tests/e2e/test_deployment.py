"""The WSGI servers the docs promise, as real processes on free ports: gunicorn, uwsgi."""

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import basic_auth, free_port, venv_tool, write_ini

pytestmark = pytest.mark.e2e


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Served:
    def __init__(
        self,
        command: list[str],
        port: int,
        log: Path,
        env: dict | None = None,
        ping_path: str = "/ping",
    ):
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log
        with open(log, "w") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=out, env={**os.environ, **(env or {})}
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited: {log.read_text()}")
            try:
                if _get(self.url + ping_path) == (200, b"pong"):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{command[0]} did not answer /ping: {log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # gunicorn, uwsgi and pserve quit on SIGINT
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def serve(tmp_path):
    started: list[Served] = []

    def start(command: list[str], port: int, env: dict | None = None) -> Served:
        served = Served(command, port, tmp_path / f"server-{len(started)}.log", env)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


def _assert_serves_the_index(served: Served, username: str) -> None:
    assert _get(served.url + "/ping") == (200, b"pong")
    status, body = _get(served.url + "/simple/")
    assert status == 401
    assert b"Authentication required" in body
    status, _ = _get(served.url + "/simple/", basic_auth(username))
    # /simple/ is another branch's view; here it only has to let the user in without failing.
    assert status < 500 and status != 401
    status, body = _get(served.url + "/", basic_auth(username))
    assert status == 200
    assert f"{username} · installer".encode() in body


def test_gunicorn_paste(base_settings, data, tmp_path, serve):
    data.user("gunicorn-user")
    port = free_port()
    ini = write_ini(tmp_path / "gunicorn.ini", base_settings, port=port)
    command = [venv_tool("gunicorn"), "--paste", ini, "-b", f"127.0.0.1:{port}", "-w", "2"]
    _assert_serves_the_index(serve(command, port), "gunicorn-user")


def test_gunicorn_wsgi_module_with_extrapypi_config(base_settings, data, tmp_path, serve):
    data.user("module-user")
    port = free_port()
    ini = write_ini(tmp_path / "module.ini", base_settings, port=port)
    command = [venv_tool("gunicorn"), "extrapypi.wsgi:app", "-b", f"127.0.0.1:{port}"]
    served = serve(command, port, env={"EXTRAPYPI_CONFIG": ini})
    _assert_serves_the_index(served, "module-user")


def test_uwsgi_ini_paste(base_settings, data, tmp_path, serve):
    data.user("uwsgi-user")
    port = free_port()
    ini = Path(write_ini(tmp_path / "uwsgi.ini", base_settings, port=port))
    ini.write_text(
        ini.read_text()
        + f"\n[uwsgi]\nhttp = 127.0.0.1:{port}\nmaster = true\nprocesses = 1\nthreads = 4\n"
        "die-on-term = true\nneed-app = true\n"
    )
    served = serve([venv_tool("uwsgi"), "--ini-paste-logged", str(ini)], port)
    _assert_serves_the_index(served, "uwsgi-user")


def test_waitress_behind_a_proxy_honours_forwarded_headers_and_sub_path(
    base_settings, data, tmp_path, serve
):
    """pserve with the trusted_proxy and url_prefix lines production.ini documents."""
    data.user("proxied")
    port = free_port()
    ini = Path(write_ini(tmp_path / "proxied.ini", base_settings, port=port))
    ini.write_text(
        ini.read_text().replace(
            "threads = 8",
            "threads = 8\ntrusted_proxy = 127.0.0.1\n"
            "trusted_proxy_headers = x-forwarded-proto x-forwarded-host x-forwarded-for\n"
            "clear_untrusted_proxy_headers = true\nurl_prefix = /pypi",
        )
    )
    served = Served(
        [venv_tool("pserve"), str(ini)], port, tmp_path / "pserve.log", ping_path="/pypi/ping"
    )
    try:
        forwarded = {
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "pypi.example.com",
            "X-Forwarded-For": "203.0.113.9",
        }
        status, body = _get(served.url + "/pypi/", {**forwarded, **basic_auth("proxied")})
        assert status == 200
        assert b'href="https://pypi.example.com/pypi/static/style.css"' in body
        status, _ = _get(served.url + "/pypi/simple/", forwarded)
        assert status == 401
        assert _get(served.url + "/pypi/ping") == (200, b"pong")
    finally:
        served.stop()
