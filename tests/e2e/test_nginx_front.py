"""The nginx front against a real nginx (Debian's package) and a real ``pserve``: the config
``extrapypi nginx-config`` prints, pip and twine through it, the same pages and refusals as the
Python path, the revocation delay, hostile URLs.

One database (SQLite, the stack's own): what is tested here is nginx's side; the app side runs
on every database in ``tests/functional/test_front.py``.
"""

import gzip
import http.client
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PASSWORD, SECRET, Data, free_port, start_server, venv_tool, write_ini
from dists import wheel_bytes
from instances import basic, fetch
from nginx_server import NGINX, front_config, nginx_conf, start_nginx

from extrapypi import main, schema
from extrapypi.permissions import Role
from extrapypi.services import accounts
from extrapypi.services import packages as package_service
from extrapypi.services import status as status_service

pytestmark = pytest.mark.e2e

JSON = "application/vnd.pypi.simple.v1+json"
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
#: nginx's ETag (mtime-size) on what it serves from disk; the app's are digests.
FROM_DISK = re.compile(r'^"[0-9a-f]+-[0-9a-f]+"$')
#: The revocation delay under test (the default is 10 s; short here to keep the suite fast).
DELAY = 2


class Stack:
    def __init__(self, work: Path):
        self.work = work
        self.port, self.front_port = free_port(), free_port()
        self.settings = {
            "sqlalchemy.url": f"sqlite:///{work / 'front.sqlite'}",
            "retry.attempts": "3",
            "extrapypi.secret": SECRET,
            "extrapypi.storage": "local",
            "extrapypi.storage.path": str(work / "packages"),
            "extrapypi.bcrypt_rounds": "4",
            "extrapypi.anonymous_read": "false",
            "extrapypi.webhooks.background": "false",
            "extrapypi.front.pages_dir": str(work / "pages"),
            "extrapypi.front.auth_cache_dir": str(work / "nginx" / "auth-cache"),
            "extrapypi.front.auth_cache_seconds": str(DELAY),
            "extrapypi.front.catch_up_seconds": "1",
        }
        self.ini = write_ini(work / "front.ini", self.settings, port=self.port)
        schema.upgrade(self.ini)
        self.app = main({}, **{**self.settings, "extrapypi.front.catch_up_seconds": "0"})
        self.data = Data(self.app)
        self.server = start_server(self.ini, self.port, work / "pserve.log")
        self.url = f"http://127.0.0.1:{self.front_port}"  # nginx
        self.python = self.server.url  # the Python path, for comparison
        config = front_config(venv_tool("extrapypi"), self.ini, self.front_port)
        (work / "front.conf").write_text(config)
        prefix = work / "nginx"
        conf = nginx_conf(prefix, work / "front.conf")
        self.nginx = start_nginx(conf, prefix, lambda: fetch(self.url + "/ping"))

    def stop(self) -> None:
        for process in (self.nginx, self.server.process):
            process.terminate()
            process.wait(timeout=10)

    def change(self, action) -> None:
        tm, dbsession = self.data.session()
        with tm:
            action(dbsession, tm)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not os.path.exists(NGINX):
        pytest.fail("nginx is not installed (Debian: apt-get install nginx); .ci/run installs it")
    stack = Stack(tmp_path_factory.mktemp("front"))
    stack.data.user("reader", Role.INSTALLER)
    stack.data.user("admin", Role.ADMIN)
    yield stack
    stack.stop()


def raw_get(url: str, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    """A request whose path goes out exactly as written (no client-side normalization)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def twine_upload(stack, path: Path) -> None:
    subprocess.run(
        [venv_tool("twine"), "upload", "--disable-progress-bar", "--non-interactive",
         "--repository-url", stack.url + "/simple/", "-u", "admin", "-p", PASSWORD, str(path)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip


def test_upload_is_on_the_front_at_once_and_pip_installs_through_it(stack, tmp_path):
    filename, content, _ = wheel_bytes("Front_Demo", "1.0")
    (tmp_path / filename).write_bytes(content)
    twine_upload(stack, tmp_path / filename)  # POST through nginx to the app
    page = fetch(stack.url + "/simple/front-demo/", basic("reader"))  # right after the commit
    assert page.status == 200 and filename in page.text
    assert FROM_DISK.match(page.headers["ETag"])
    assert "front-demo" in fetch(stack.url + "/simple/", basic("reader")).text
    target = tmp_path / "downloads"
    index = f"http://reader:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{stack.front_port}/simple/"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(target),
         "--index-url", index, "front-demo"],
        capture_output=True, text=True, check=True, timeout=120, env=env,
    )  # fmt: skip
    assert (target / filename).read_bytes() == content
    answer = fetch(f"{stack.url}/packages/front-demo/1.0/{filename}", basic("reader"))
    assert answer.body == content
    assert answer.headers["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert FROM_DISK.match(answer.headers["ETag"])


def test_pages_are_the_python_paths_bytes(stack):
    stack.data.release_file("same-bytes", "1.0")
    stack.data.release_file("same-bytes", "1.0", kind="sdist")
    for path in ("/simple/", "/simple/same-bytes/"):
        for accept in (None, "text/html", JSON, PIP_ACCEPT, "application/vnd.pypi.simple.v1+html"):
            headers = basic("reader") | ({"Accept": accept} if accept else {})
            front, python = fetch(stack.url + path, headers), fetch(stack.python + path, headers)
            assert front.status == python.status == 200, (path, accept)
            assert front.body == python.body, (path, accept)
            assert front.headers["Content-Type"] == python.headers["Content-Type"]
            assert front.headers["Vary"] == "Accept, Accept-Encoding"
            zipped = fetch(stack.url + path, headers | {"Accept-Encoding": "gzip"})
            assert zipped.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(zipped.body) == python.body
    # What nginx does not know, the app answers: an odd Accept, ?format=, a 406
    for path, headers in (
        ("/simple/same-bytes/?format=" + JSON, {}),
        ("/simple/same-bytes/", {"Accept": "application/vnd.pypi.simple.v1+json;q=0.5"}),
        ("/simple/same-bytes/", {"Accept": "application/json"}),
        ("/simple/Same_Bytes/", {}),
        ("/simple/no-such-project/", {}),
    ):
        front = fetch(stack.url + path, basic("reader") | headers)
        python = fetch(stack.python + path, basic("reader") | headers)
        assert (front.status, front.body) == (python.status, python.body), path


def test_refusals_are_the_python_paths(stack):
    stack.data.release_file("guarded", "1.0")
    wheel = "/packages/guarded/1.0/guarded-1.0-py3-none-any.whl"
    for path in ("/simple/", "/simple/guarded/", wheel):
        anonymous = fetch(stack.url + path)
        assert anonymous.status == 401, path
        assert anonymous.headers.get_all("WWW-Authenticate") == ['Basic realm="extrapypi"']
        wrong = fetch(stack.url + path, basic("reader", "not the password"))
        assert wrong.status == 401 and wrong.headers["WWW-Authenticate"]
        assert fetch(stack.url + path, basic("reader")).status == 200
    # anonymous must never get the cached answer of a logged-in request
    assert fetch(stack.url + wheel).status == 401


def test_deactivated_user_refused_within_the_delay(stack):
    stack.data.user("leaver", Role.INSTALLER)
    stack.data.release_file("kept", "1.0")
    for path in ("/simple/kept/", "/packages/kept/1.0/kept-1.0-py3-none-any.whl"):
        assert fetch(stack.url + path, basic("leaver")).status == 200  # now cached

    def deactivate(dbsession, tm):
        accounts.set_active(dbsession, accounts.get_user(dbsession, "leaver"), False)

    stack.change(deactivate)
    started = time.monotonic()
    while fetch(stack.url + "/simple/kept/", basic("leaver")).status == 200:
        assert time.monotonic() - started <= DELAY + 1, "still served after the delay"
        time.sleep(0.1)
    deadline = started + DELAY + 1
    wheel = "/packages/kept/1.0/kept-1.0-py3-none-any.whl"
    while fetch(stack.url + wheel, basic("leaver")).status == 200:
        assert time.monotonic() < deadline, "file still served after the delay"
        time.sleep(0.1)
    assert fetch(stack.url + wheel, basic("leaver")).status == 401


def test_quarantined_files_refused_and_yanks_marked(stack):
    stack.data.release_file("held", "1.0")
    stack.data.release_file("held", "2.0")
    wheel = "/packages/held/1.0/held-1.0-py3-none-any.whl"
    assert fetch(stack.url + wheel, basic("reader")).status == 200

    def yank(dbsession, tm):
        package = package_service.get_package(dbsession, "held")
        release = package_service.get_release(dbsession, package, "2.0")
        package_service.set_yanked(dbsession, release, True, "bad", None)

    stack.change(yank)
    page = fetch(stack.url + "/simple/held/", basic("reader")).text
    assert "held-2.0-py3-none-any.whl#sha256=" in page and 'data-yanked="bad"' in page

    def quarantine(dbsession, tm):
        package = package_service.get_package(dbsession, "held")
        status_service.set_status(
            dbsession, package, "quarantined", "malware", None, may_quarantine=True
        )

    stack.change(quarantine)
    page = fetch(stack.url + "/simple/held/", basic("reader"))
    assert '<meta name="pypi:project-status" content="quarantined">' in page.text
    assert ".whl" not in page.text
    assert page.body == fetch(stack.python + "/simple/held/", basic("reader")).body
    for path in (wheel, wheel + ".metadata"):  # at once, though a 200 was cached for them
        front = fetch(stack.url + path, basic("reader"))
        python = fetch(stack.python + path, basic("reader"))
        assert front.status == python.status == 404 and "quarantined" in front.text, path


HOSTILE = [
    "/simple/../../../../etc/passwd",
    "/simple/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/simple/..%2f..%2f..%2fetc/passwd",
    "/simple/%2e%2e%2f.serial",
    "/simple/.%2e/.serial",
    "/packages/hostile/1.0/..%2f..%2f.staging",
    "/packages/hostile/1.0/%2e%2e%2f%2e%2e%2fpages%2f.serial",
    "/packages/%2e%2e/1.0/front.ini",
    "/packages/hostile/%2e%2e/%2e%2e/front.ini",
    "/packages/hostile%2f..%2f..%2f/1.0/front.ini",
    "/packages/hostile/1.0/hostile-1.0-py3-none-any.whl%00.txt",
    "/simple/hostile%2f..%2f..%2f..%2fpages/",
    "/_/front/auth",
    "/_extrapypi_front_auth",
]


def test_hostile_urls_serve_nothing_outside(stack):
    stack.data.release_file("hostile", "1.0")
    secrets = [(stack.work / "front.ini").read_bytes()[:60], b"root:x:0:0"]
    secrets.append((stack.work / "pages" / ".serial").read_bytes())
    for path in HOSTILE:
        for headers in ({}, basic("reader")):
            status, body = raw_get(stack.url, path, headers)
            assert status < 500, (path, status)
            assert status != 200 or path.startswith("/simple/hostile"), (path, status, body[:200])
            assert not any(secret in body for secret in secrets), path
        front = raw_get(stack.url, "/_extrapypi_front_auth", basic("reader"))
        assert front[0] == 404  # internal: clients cannot ask it
