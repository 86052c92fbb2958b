"""Cached reads answered before Pyramid builds a request (``fastpath.py``) answer exactly what the
full stack answers, and only what it already allowed at the same serials."""

import pytest
from webob import Request

from extrapypi.permissions import Role
from extrapypi.services import accounts, status
from extrapypi.services.metrics import COUNTER_KEY
from extrapypi.services.packages import get_package

JSON = "application/vnd.pypi.simple.v1+json"
#: Headers that differ between any two answers.
VOLATILE = {"Date", "Server"}


class RouterCalls:
    """Counts the requests that reach the Pyramid router (the full stack)."""

    def __init__(self, app):
        self.fast = app
        self.router = app.router
        self.count = 0
        app.router = self

    def __call__(self, environ, start_response):
        self.count += 1
        return self.router(environ, start_response)

    def restore(self):
        self.fast.router = self.router


@pytest.fixture
def calls(app):
    counter = RouterCalls(app)
    yield counter
    counter.restore()


@pytest.fixture
def world(data):
    data.user("reader", Role.INSTALLER)
    data.user("maint", Role.MAINTAINER)
    return data.release_file("demo", "1.0")


def get(app, path: str, headers: dict, method: str = "GET"):
    return Request.blank(
        path, method=method, headers={"Host": "example.com", **headers}
    ).get_response(app)


def answer(response) -> tuple:
    headers = sorted((k, v) for k, v in response.headerlist if k not in VOLATILE)
    return response.status, headers, response.body


READS = [
    ("/simple/demo/", {}),
    ("/simple/demo/", {"Accept": JSON}),
    ("/simple/demo/", {"Accept-Encoding": "gzip"}),
    ("/simple/demo/", {"Accept": "application/vnd.pypi.simple.v1+html"}),
    ("/simple/", {"Accept-Encoding": "gzip"}),
    ("/simple/", {"Accept": JSON}),
]


@pytest.mark.parametrize("path, extra", READS)
def test_a_cached_page_is_the_full_stacks_answer(app, world, auth, calls, path, extra):
    headers = {**auth("reader"), **extra}
    full = get(app, path, headers)  # fills the login, decision and page caches
    assert calls.count == 1 and full.status_int == 200
    fast = get(app, path, headers)
    assert calls.count == 1, "the second read should not reach the router"
    assert answer(fast) == answer(full)
    head = get(app, path, headers, method="HEAD")
    assert calls.count == 1 and head.body == b""
    assert head.headers["Content-Length"] == full.headers["Content-Length"]


@pytest.mark.parametrize("suffix", ["", ".metadata"])
def test_a_cached_download_is_the_full_stacks_answer(app, world, auth, calls, suffix):
    path = f"/packages/demo/1.0/{world['filename']}{suffix}"
    full = get(app, path, auth("reader"))
    assert full.status_int == 200 and calls.count == 1
    fast = get(app, path, auth("reader"))
    assert calls.count == 1
    assert answer(fast) == answer(full)
    expected = world["metadata"].encode() if suffix else world["content"]
    assert fast.body == expected


def test_fast_downloads_are_counted_and_heads_are_not(app, world, auth, calls):
    counter = app.registry[COUNTER_KEY]
    with counter._flushing:  # a batch an earlier test made due is written on a thread: wait
        pass
    counter.flush()
    path = f"/packages/demo/1.0/{world['filename']}"
    for _ in range(3):
        get(app, path, auth("reader"))
    get(app, path, auth("reader"), method="HEAD")
    get(app, path + ".metadata", auth("reader"))
    assert calls.count == 2  # the first download and the first .metadata
    assert counter.pending(world["filename"]) == 3


def test_what_the_stack_did_not_answer_goes_through_it(app, world, auth, calls):
    get(app, "/simple/demo/", auth("reader"))
    for path, headers in [
        ("/simple/demo/", auth("reader", "wrong password")),  # 401 from the stack
        ("/simple/demo/", {}),  # anonymous
        ("/simple/Demo/", auth("reader")),  # a redirect to the normalized name
        ("/simple/demo", auth("reader")),
        ("/simple/nothing/", auth("reader")),  # 404
        ("/simple/demo/?format=" + JSON, auth("reader")),
        ("/simple/demo/", {**auth("reader"), "Cookie": "a=b"}),
        ("/simple/demo/", auth("maint")),  # another user: its first request
    ]:
        before = calls.count
        get(app, path, headers)
        assert calls.count == before + 1, path
    path = f"/packages/demo/1.0/{world['filename']}"
    get(app, path, auth("reader"))
    before = calls.count
    assert get(app, path, {**auth("reader"), "Range": "bytes=0-9"}).status_int == 206
    assert calls.count == before + 1


def test_deactivation_and_quarantine_apply_at_once(app, data, world, auth, calls):
    path = f"/packages/demo/1.0/{world['filename']}"
    for _ in range(2):
        assert get(app, path, auth("reader")).status_int == 200
        assert get(app, "/simple/demo/", auth("maint")).status_int == 200
    tm, dbsession = data.session()
    with tm:
        status.set_status(
            dbsession, get_package(dbsession, "demo"), "quarantined", "", None, may_quarantine=True
        )
    assert get(app, path, auth("reader")).status_int == 404
    with tm:
        accounts.set_active(dbsession, accounts.get_user(dbsession, "maint"), False)
    assert get(app, "/simple/demo/", auth("maint")).status_int == 401


def test_a_fast_answer_is_logged_as_the_stack_logs_it(app, world, auth, calls, caplog):
    path = f"/packages/demo/1.0/{world['filename']}"
    with caplog.at_level("INFO", logger="extrapypi.requests"):
        for _ in range(2):
            get(app, "/simple/demo/", auth("reader"))
            get(app, path, auth("reader"))
    assert calls.count == 2
    records = [r for r in caplog.records if r.name.endswith("requests")]
    lines = [r.getMessage().rsplit(" ", 1)[0] for r in records]
    expected = ["reader GET /simple/demo/ 200", f"reader GET {path} 200"]
    assert lines == expected * 2


def test_a_token_read_is_fast_too_and_revocation_applies_at_once(app, data, world, calls):
    from test_tokens import make_token, token_auth

    from extrapypi.models import ApiToken
    from extrapypi.services import tokens as token_service

    token = make_token(data, "reader", scope="read")
    headers = token_auth(token)
    path = f"/packages/demo/1.0/{world['filename']}"
    full_page, full_file = get(app, "/simple/demo/", headers), get(app, path, headers)
    assert full_page.status_int == full_file.status_int == 200 and calls.count == 2
    fast_page, fast_file = get(app, "/simple/demo/", headers), get(app, path, headers)
    assert calls.count == 2, "a token verified before is answered without the router"
    assert answer(fast_page) == answer(full_page) and answer(fast_file) == answer(full_file)
    tm, dbsession = data.session()
    with tm:
        assert dbsession.query(ApiToken).one().last_used is not None  # recorded, as on the stack
    # the same user's password, and another token of theirs, have answers of their own
    other = make_token(data, "reader", name="other", scope="read")
    before = calls.count
    assert get(app, "/simple/demo/", token_auth(other)).status_int == 200
    assert calls.count == before + 1
    with tm:
        row = token_service.find_token(dbsession, token)
        token_service.revoke_token(dbsession, row)
    refused = get(app, "/simple/demo/", headers)
    assert refused.status_int == 401 and "revoked" in refused.text.lower() + refused.status.lower()
    assert get(app, path, headers).status_int == 401
