"""API tokens through WebTest: every limit refuses with its reason, the owner's rights apply now."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from conftest import SECRET, basic_auth
from dists import wheel_bytes
from test_security import BROWSER, PIP, login
from test_upload import post

from extrapypi.models import ApiToken, File, JournalEntry, LoginFailure
from extrapypi.models.meta import utcnow
from extrapypi.permissions import Role
from extrapypi.services import accounts
from extrapypi.services import tokens as token_service
from extrapypi.services.accounts import get_user
from extrapypi.services.packages import get_package


def make_token(data, username, name="ci", scope="upload", projects=(), expires_days=None):
    tm, dbsession = data.session()
    with tm:
        user = get_user(dbsession, username)
        _row, token = token_service.create_token(
            dbsession, SECRET, user, name, scope, list(projects), expires_days
        )
    return token


ADDR = {"REMOTE_ADDR": "10.9.8.7"}


def token_auth(token):
    return basic_auth("__token__", token)


def change(data, action):
    tm, dbsession = data.session()
    with tm:
        action(dbsession)


def assert_refused(response, status, reason_part):
    assert response.status_int == status, response.status
    assert reason_part in response.status, response.status
    assert reason_part in response.text


@pytest.fixture
def alice(data):
    data.user("alice", Role.DEVELOPER)
    data.release_file("alpha", "1.0", uploader="alice")
    data.release_file("beta", "1.0", uploader="alice")
    return "alice"


def test_token_format_and_storage(data, alice, engine):
    token = make_token(data, "alice")
    assert re.fullmatch(r"xpypi-[0-9a-f]{12}-[A-Za-z0-9_-]{43,}", token), token
    with engine.connect() as connection:
        row = connection.execute(sa.select(ApiToken.__table__)).one()
    secret = token.split("-", 2)[2]
    assert row.id == token[6:18]
    assert secret not in str(tuple(row)) and token not in str(tuple(row))
    assert len(row.secret_hash) == 64


def test_read_token_reads_and_cannot_upload(testapp, data, alice):
    token = make_token(data, "alice", scope="read")
    page = testapp.get("/simple/alpha/", headers={**PIP, **token_auth(token)})
    assert "alpha-1.0-py3-none-any.whl" in page.text
    filename = page.json["files"][0]["filename"]
    download = testapp.get(f"/packages/alpha/1.0/{filename}", headers=token_auth(token))
    assert download.content_length == page.json["files"][0]["size"] > 0
    response = post(testapp, wheel_bytes("alpha", "2.0"), token_auth(token), status=403)
    assert_refused(response, 403, "has the 'read' scope")


def test_upload_token_limited_to_its_projects(testapp, data, alice, engine):
    token = make_token(data, "alice", name="ci-release", projects=["Alpha"])
    ok = post(testapp, wheel_bytes("alpha", "2.0"), token_auth(token))
    assert "uploaded" in ok.text
    with engine.connect() as connection:
        upload_token = connection.execute(
            sa.select(File.upload_token).where(File.filename.like("alpha-2.0%"))
        ).scalar()
    assert upload_token == "ci-release"
    other = post(testapp, wheel_bytes("beta", "2.0"), token_auth(token), status=403)
    assert_refused(other, 403, "is limited to alpha, not 'beta'")
    new = post(testapp, wheel_bytes("gamma", "1.0"), token_auth(token), status=403)
    assert_refused(new, 403, "is limited to alpha, not 'gamma'")
    tm, dbsession = data.session()
    with tm:
        assert get_package(dbsession, "gamma") is None


def test_uploader_shown_with_token_name(testapp, data, alice):
    token = make_token(data, "alice", name="ci-release")
    post(testapp, wheel_bytes("gamma", "1.0"), token_auth(token))  # created: in no list
    login(testapp, "alice")
    page = testapp.get("/packages/gamma/1.0/", headers=BROWSER)
    assert 'alice (token "ci-release")' in page.text


def test_unlimited_upload_token_creates_as_its_owner_may(testapp, data, alice):
    token = make_token(data, "alice")
    assert "uploaded" in post(testapp, wheel_bytes("gamma", "1.0"), token_auth(token)).text


def test_owner_demoted_token_loses_rights_at_once(testapp, data, alice):
    token = make_token(data, "alice")
    assert "uploaded" in post(testapp, wheel_bytes("alpha", "2.0"), token_auth(token)).text
    change(data, lambda s: accounts.change_role(s, get_user(s, "alice"), Role.INSTALLER))
    refused = post(testapp, wheel_bytes("alpha", "3.0"), token_auth(token), status=403)
    assert_refused(refused, 403, "user 'alice' (installer) may not upload to 'alpha'")


def test_maintainer_removal_applies_at_once(testapp, data, alice):
    data.user("bob", Role.MAINTAINER)
    data.release_file("delta", "1.0", uploader="bob")
    token = make_token(data, "bob")
    assert "uploaded" in post(testapp, wheel_bytes("delta", "2.0"), token_auth(token)).text

    def remove_maintainers(dbsession):
        package = get_package(dbsession, "delta")
        package.maintainers.clear()

    change(data, remove_maintainers)
    refused = post(testapp, wheel_bytes("delta", "3.0"), token_auth(token), status=403)
    assert_refused(refused, 403, "not one of its maintainers")


def test_owner_deactivated_or_deleted_refused(testapp, data, alice):
    data.user("root", Role.ADMIN)
    token = make_token(data, "alice", scope="read")
    testapp.get("/simple/alpha/", headers={**PIP, **token_auth(token)}, status=200)
    change(data, lambda s: accounts.set_active(s, get_user(s, "alice"), False))
    refused = testapp.get("/simple/alpha/", headers={**PIP, **token_auth(token)}, status=401)
    assert_refused(refused, 401, "is deactivated")
    assert refused.headers["WWW-Authenticate"].startswith("Basic")
    change(data, lambda s: accounts.delete_user(s, get_user(s, "alice")))
    gone = testapp.get("/simple/alpha/", headers={**PIP, **token_auth(token)}, status=401)
    assert_refused(gone, 401, "unknown API token")


def test_revoked_token_refused_and_journaled(testapp, data, alice, engine):
    token = make_token(data, "alice", name="laptop")
    testapp.get("/simple/alpha/", headers={**PIP, **token_auth(token)}, status=200)

    def revoke(dbsession):
        assert token_service.revoke_token(dbsession, token_service.find_token(dbsession, token))

    change(data, revoke)
    refused = testapp.get("/simple/alpha/", headers={**PIP, **token_auth(token)}, status=401)
    assert_refused(refused, 401, "API token 'laptop'")
    assert "is revoked" in refused.status
    upload = post(testapp, wheel_bytes("alpha", "2.0"), token_auth(token), status=401)
    assert_refused(upload, 401, "is revoked")
    with engine.connect() as connection:
        actions = connection.execute(sa.select(JournalEntry.action, JournalEntry.detail)).all()
    assert any(a == "revoke token" for a, _ in actions)
    refusals = [d for a, d in actions if a == "refused token"]
    assert len(refusals) == 1 and "is revoked" in refusals[0]  # once a minute, not per request


def test_expired_token_refused(testapp, data, alice):
    token = make_token(data, "alice", expires_days=1)
    testapp.get("/simple/alpha/", headers={**PIP, **token_auth(token)}, status=200)

    def expire(dbsession):
        token_service.find_token(dbsession, token).expires = utcnow() - timedelta(seconds=1)

    change(data, expire)
    refused = testapp.get("/simple/alpha/", headers={**PIP, **token_auth(token)}, status=401)
    assert_refused(refused, 401, "has expired")


def test_unknown_token_refused_and_counted_by_address(testapp, data, alice, engine):
    token = make_token(data, "alice")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (forged, "xpypi-000000000000-" + "x" * 43, "not-a-token"):
        refused = testapp.get(
            "/simple/alpha/", headers={**PIP, **token_auth(bad)}, status=401, extra_environ=ADDR
        )
        assert_refused(refused, 401, "unknown API token")
    with engine.connect() as connection:
        keys = connection.execute(sa.select(LoginFailure.key)).scalars().all()
    assert keys == ["addr:10.9.8.7"] * 3  # the address's budget only: no account, no pair


def test_unknown_tokens_are_throttled(app, testapp, data, alice):
    throttle = app.registry["extrapypi.login_throttle"]
    limit = throttle.address_attempts
    headers = {**PIP, **token_auth("xpypi-000000000000-" + "y" * 43)}
    for _ in range(limit):
        testapp.get("/simple/alpha/", headers=headers, status=401, extra_environ=ADDR)
    throttled = testapp.get("/simple/alpha/", headers=headers, status=429, extra_environ=ADDR)
    assert "Too many failed logins" in throttled.status


def test_tokens_never_use_the_dashboard(testapp, data, alice):
    data.user("root", Role.ADMIN)
    token = make_token(data, "root")
    headers = {**BROWSER, **token_auth(token)}
    for path in ("/", "/account", "/packages/", "/packages/alpha/", "/users/", "/teams/"):
        refused = testapp.get(path, headers=headers, status=403)
        assert_refused(refused, 403, "cannot be used for the dashboard")
    # downloads under /packages/ are for clients: allowed
    download = "/packages/alpha/1.0/alpha-1.0-py3-none-any.whl"
    assert testapp.get(download, headers=token_auth(token), status=200).body[:2] == b"PK"
    form = login(testapp, "__token__", token)
    assert form.status_int == 400
    assert "API tokens cannot log into the dashboard" in form.text
    pasted = login(testapp, "root", token)
    assert "API tokens cannot log into the dashboard" in pasted.text


def test_admin_token_cannot_administer(testapp, data, alice):
    data.user("root", Role.ADMIN)
    token = make_token(data, "root")
    refused = testapp.post(
        "/pypi/alpha/1.0/yank", headers=token_auth(token), status=403, expect_errors=True
    )
    assert refused.status_int in (403, 404)
    assert "uploaded" in post(testapp, wheel_bytes("alpha", "2.0"), token_auth(token)).text


def test_token_username_cannot_be_an_account(data):
    with pytest.raises(accounts.AccountError, match="API tokens"):
        data.user("__token__")


def test_last_use_written_at_most_once_a_minute(testapp, data, alice, engine):
    token = make_token(data, "alice", scope="read")
    for _ in range(3):
        testapp.get("/simple/alpha/", headers={**PIP, **token_auth(token)}, status=200)
    with engine.connect() as connection:
        row = connection.execute(sa.select(ApiToken.last_used, ApiToken.last_used_from)).one()
    assert row.last_used is not None
    assert row.last_used_from == ""  # WebTest has no REMOTE_ADDR
    recorder = token_service.UseRecorder()
    factory = data.session_factory
    assert recorder.note(factory, token[6:18], "10.0.0.1") is False  # the row is < 1 min old
    assert recorder.note(factory, token[6:18], "10.0.0.1") is False  # and the process knows


def test_create_refuses_bad_requests(data, alice):
    tm, dbsession = data.session()
    with tm:
        user = get_user(dbsession, "alice")
        for kwargs, message in (
            ({"name": ""}, "needs a name"),
            ({"name": "x", "scope": "admin"}, "Unknown scope"),
            ({"name": "x", "scope": "read", "projects": ["alpha"]}, "needs the 'upload' scope"),
            ({"name": "x", "projects": ["not a name!"]}, "not a valid project name"),
            ({"name": "x", "expires_days": 0}, "Expiry is 1 to"),
        ):
            with pytest.raises(token_service.TokenError, match=message):
                token_service.create_token(dbsession, SECRET, user, **kwargs)


# --- the dashboard ------------------------------------------------------------------------------


def csrf_of(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def test_dashboard_create_shows_token_once_and_revokes(testapp, data, alice, engine):
    assert login(testapp, "alice").status_int == 303
    account = testapp.get("/account", headers=BROWSER)
    assert "/tokens" in account.text
    page = testapp.get("/tokens", headers=BROWSER)
    created = testapp.post(
        "/tokens",
        {
            "action": "create",
            "name": "ci-release",
            "scope": "upload",
            "projects": "Alpha",
            "expires": "7",
            "csrf_token": csrf_of(page),
        },
        headers=BROWSER,
    )
    token = re.search(r'class="new-token">(xpypi-[^<]+)<', created.text).group(1)
    assert created.headers["Cache-Control"] == "no-store"
    assert "uploaded" in post(testapp, wheel_bytes("alpha", "2.0"), token_auth(token)).text
    again = testapp.get("/tokens", headers=BROWSER)
    assert "ci-release" in again.text and token not in again.text  # never shown again
    no_csrf = testapp.post(
        "/tokens", {"action": "revoke", "token_id": token[6:18]}, headers=BROWSER, status=400
    )
    assert no_csrf.status_int == 400
    testapp.post(
        "/tokens",
        {"action": "revoke", "token_id": token[6:18], "csrf_token": csrf_of(again)},
        headers=BROWSER,
        status=303,
    )
    refused = post(testapp, wheel_bytes("alpha", "3.0"), token_auth(token), status=401)
    assert "is revoked" in refused.status


def test_dashboard_refuses_bad_token_forms(testapp, data, alice):
    login(testapp, "alice")
    page = testapp.get("/tokens", headers=BROWSER)
    refused = testapp.post(
        "/tokens",
        {
            "action": "create",
            "name": "x",
            "scope": "read",
            "projects": "alpha",
            "csrf_token": csrf_of(page),
        },
        headers=BROWSER,
        status=400,
    )
    assert "needs the &#39;upload&#39; scope" in refused.text
    assert "new-token" not in refused.text


def test_user_cannot_revoke_anothers_token(testapp, data, alice, engine):
    data.user("mallory", Role.DEVELOPER)
    token = make_token(data, "alice")
    login(testapp, "mallory")
    page = testapp.get("/tokens", headers=BROWSER)
    testapp.post(
        "/tokens",
        {"action": "revoke", "token_id": token[6:18], "csrf_token": csrf_of(page)},
        headers=BROWSER,
        status=303,
    )
    with engine.connect() as connection:
        assert connection.execute(sa.select(ApiToken.revoked)).scalar() is None
    testapp.get("/users/alice/tokens", headers=BROWSER, status=403)


def test_admin_lists_and_revokes_anyones_tokens(testapp, data, alice, engine):
    data.user("root", Role.ADMIN)
    token = make_token(data, "alice", name="laptop")
    login(testapp, "root")
    assert "/users/alice/tokens" in testapp.get("/users/alice/", headers=BROWSER).text
    page = testapp.get("/users/alice/tokens", headers=BROWSER)
    assert "laptop" in page.text and token[6:18] in page.text
    assert token.split("-", 2)[2] not in page.text
    testapp.post(
        "/users/alice/tokens",
        {"action": "revoke", "token_id": token[6:18], "csrf_token": csrf_of(page)},
        headers=BROWSER,
        status=303,
    )
    with engine.connect() as connection:
        entry = connection.execute(
            sa.select(JournalEntry.username).where(JournalEntry.action == "revoke token")
        ).scalar()
    assert entry == "root"
