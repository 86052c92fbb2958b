"""Another site cannot upload or yank through the browser's saved Basic password (issue 10 item 1).

The victim once answered the Basic prompt of the index (here: opened ``/simple/`` with the
credentials in the URL, which Chromium keeps in its HTTP auth cache like a typed answer). A page on
a second origin (a tiny ``http.server`` on another port, on ``localhost`` for a cross-site origin
and on ``127.0.0.1`` for a same-site one) then auto-submits a multipart upload form (the wheel
built with ``DataTransfer``) to ``/legacy/`` and a form to ``/packages/<name>/<version>/yank``.
Before the fix the server answered 401 with a challenge, Chromium replayed the saved password, and
the file was stored and the release yanked.
"""

import base64
import hashlib
import http.server
import json
import threading
import urllib.parse

import pytest
from conftest import PASSWORD
from dists import wheel_bytes
from test_browser import browser  # noqa: F401 - the fixture

from extrapypi.permissions import Role
from extrapypi.services.packages import get_package, get_release

UPLOAD_PAGE = """<!doctype html>
<html><body>
<form id="attack" method="post" action="{action}" enctype="multipart/form-data">
{fields}
<input type="file" name="content" id="content">
</form>
<script>
const bytes = Uint8Array.from(atob("{content}"), (c) => c.charCodeAt(0));
const transfer = new DataTransfer();
transfer.items.add(new File([bytes], "{filename}", {{type: "application/octet-stream"}}));
document.getElementById("content").files = transfer.files;
document.getElementById("attack").submit();
</script>
</body></html>
"""
YANK_PAGE = """<!doctype html>
<html><body>
<form id="attack" method="post" action="{action}">
<input name="reason" value="pwned">
</form>
<script>document.getElementById("attack").submit();</script>
</body></html>
"""


class AttackerSite:
    """A second origin that serves the pages it is given (no CSP: it is the attacker's site)."""

    def __init__(self):
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = pages.get(self.path, "not here").encode()
                self.send_response(200 if self.path in pages else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def attacker():
    site = AttackerSite()
    yield site
    site.close()


def upload_page(index: str, name: str, version: str) -> tuple[str, str]:
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
    inputs = "\n".join(f'<input name="{k}" value="{v}">' for k, v in fields.items())
    page = UPLOAD_PAGE.format(
        action=f"{index}/legacy/",
        fields=inputs,
        content=base64.b64encode(content).decode(),
        filename=filename,
    )
    return page, filename


def stored(data, fn):
    tm, dbsession = data.session()
    with tm:
        return fn(dbsession)


def yanked(data, name: str, version: str) -> bool:
    return stored(data, lambda s: get_release(s, get_package(s, name), version).yanked)


@pytest.mark.e2e
@pytest.mark.browser
def test_other_sites_cannot_upload_or_yank_through_a_saved_basic_password(
    browser,  # noqa: F811
    live_server,
    data,
    attacker,
):
    data.user("owner", Role.ADMIN)
    data.release_file("victim", "1.0", uploader="owner")
    index = live_server.url
    host = index.split("://", 1)[1]

    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    to_index: list[tuple[str, str, int, str]] = []

    def note(response):
        if response.url.startswith(index) and response.request.method == "POST":
            request_headers = response.request.all_headers()
            to_index.append(
                (
                    response.request.method,
                    urllib.parse.urlsplit(response.url).path,
                    response.status,
                    request_headers.get("authorization", ""),
                )
            )

    page.on("response", note)

    # The victim answers the index's Basic prompt once; the browser keeps the password.
    user = urllib.parse.quote(PASSWORD)
    answer = page.goto(f"http://owner:{user}@{host}/simple/")
    assert answer.status == 200
    # Positive control: the browser does replay the saved password after a challenge elsewhere
    # on the index (so the attack below would succeed if the server challenged the POSTs).
    control = page.goto(f"{index}/pypi/victim/json")
    assert control.status == 200, control.status
    assert json.loads(control.body())["info"]["version"] == "1.0"

    uploads = []
    for attacker_host in ("localhost", "127.0.0.1"):  # cross-site, then same-site (other port)
        name = f"evil-{len(uploads)}"
        attacker.pages[f"/upload-{name}.html"], _ = upload_page(index, name, "1.0")
        uploads.append(name)
        with page.expect_response(lambda r: r.url == f"{index}/legacy/") as response_info:
            page.goto(f"http://{attacker_host}:{attacker.port}/upload-{name}.html")
        refused = response_info.value
        assert refused.status == 403, (attacker_host, refused.status, refused.text()[:200])
        assert "another site" in refused.text()
        assert "www-authenticate" not in refused.headers

    attacker.pages["/yank.html"] = YANK_PAGE.format(action=f"{index}/packages/victim/1.0/yank")
    with page.expect_response(lambda r: r.url.endswith("/yank")) as response_info:
        page.goto(f"http://localhost:{attacker.port}/yank.html")
    refused = response_info.value
    assert refused.status == 403, (refused.status, refused.text()[:200])
    assert "www-authenticate" not in refused.headers

    # Every POST reached the index once, was refused, and was never retried with the password.
    assert [(m, p, s) for m, p, s, _ in to_index] == [
        ("POST", "/legacy/", 403),
        ("POST", "/legacy/", 403),
        ("POST", "/packages/victim/1.0/yank", 403),
    ]
    for name in uploads:
        assert stored(data, lambda s, name=name: get_package(s, name)) is None
    assert not yanked(data, "victim", "1.0")
    assert " 500 " not in live_server.log()
    context.close()
