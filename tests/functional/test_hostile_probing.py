"""What a hostile client learns by probing, and small holes around login (issue 10 items 7, 8, 10).

- anonymous requests under a protected place answer alike whether the thing exists or not (7);
- unknown usernames cost the configured bcrypt rounds, and ``/users/<name>/`` checks permission
  before it looks the name up (8);
- ``came_from`` with non-ASCII, CORS opt-in on the JSON API, ``no-store`` on dashboard pages (10).
"""

import re
import time

import bcrypt
import pytest
import sqlalchemy as sa
import webtest
from test_security import BROWSER, PIP, login

from extrapypi import main
from extrapypi.permissions import Role
from extrapypi.services import accounts

ANY = {"Accept": "*/*"}


def answer(response) -> tuple:
    """What a client can compare between two answers (the login link names the path asked)."""
    location = re.sub(r"came_from=[^&]*", "came_from=...", response.headers.get("Location", ""))
    return (
        response.status,
        response.headers.get("WWW-Authenticate"),
        location,
        response.content_type,
        # A redirect's body repeats the path; a styled page's "Log in" link names it too.
        None if location else re.sub(rb"came_from=[^&\"]*", b"came_from=...", response.body),
    )


# --- item 7: existence does not leak to anonymous requests -----------------------------------


@pytest.mark.parametrize("headers", [BROWSER, PIP, ANY, {}], ids=["browser", "pip", "any", "none"])
def test_anonymous_file_urls_answer_alike_whether_they_exist_or_not(testapp, data, headers):
    filename = data.release_file("real", "1.0")["filename"]
    paths = [
        f"/packages/real/1.0/{filename}",  # exists
        f"/packages/real/1.0/{filename}.metadata",  # exists
        "/packages/real/1.0/real-1.0.tar.gz",  # no such file
        "/packages/real/9.9/real-9.9-py3-none-any.whl",  # no such release
        "/packages/ghost/1.0/ghost-1.0-py3-none-any.whl",  # no such package
    ]
    answers = {answer(testapp.get(path, headers=headers, expect_errors=True)) for path in paths}
    assert len(answers) == 1, answers
    ((status, challenge, *_),) = answers
    assert status.startswith("401") and challenge == 'Basic realm="extrapypi"'


@pytest.mark.parametrize("headers", [BROWSER, PIP], ids=["browser", "pip"])
def test_anonymous_pages_answer_alike_whether_they_exist_or_not(testapp, data, headers):
    data.release_file("real", "1.0")
    paths = [
        "/packages/real/",
        "/packages/ghost/",
        "/packages/real/1.0/",
        "/packages/real/9.9/",
        "/packages/ghost/1.0/",
        "/pypi/real/json",
        "/pypi/ghost/json",
    ]
    answers = {answer(testapp.get(path, headers=headers, expect_errors=True)) for path in paths}
    expected = 1 if headers is PIP else 2  # browsers: login page for the dashboard, 401 for /pypi
    assert len(answers) == expected, answers


def test_anonymous_lookups_never_reach_the_database(testapp, data, engine):
    data.release_file("real", "1.0")
    with captured_parameters(engine) as seen:
        testapp.get("/packages/real/1.0/real-1.0.tar.gz", headers=ANY, status=401)
        testapp.get("/packages/real/", headers=BROWSER, status=302)
        testapp.get("/pypi/real/json", headers=PIP, status=401)
    assert not any("real" in str(value) for value in seen), seen


# --- item 8: username enumeration --------------------------------------------------------------


def test_unknown_usernames_cost_the_configured_bcrypt_rounds(testapp, data, auth, engine):
    """Timing-free: the dummy hash checked for an unknown name has the configured cost (4 here),
    the same cost as the real hashes."""
    data.user("known", Role.INSTALLER)
    accounts._DUMMY_HASHES.clear()
    testapp.get("/simple/", headers=auth("nobody-here"), status=401)
    assert list(accounts._DUMMY_HASHES) == [4]
    assert accounts.dummy_hash(4).startswith("$2b$04$")
    with engine.connect() as connection:
        known = connection.execute(sa.text("SELECT password_hash FROM users")).scalar_one()
    assert known[:7] == accounts.dummy_hash(4)[:7]
    # The dashboard's login form too.
    accounts._DUMMY_HASHES.clear()
    assert login(testapp, "nobody-either").status_int == 400
    assert list(accounts._DUMMY_HASHES) == [4]


@pytest.mark.parametrize("rounds", [5, 10])
def test_dummy_hash_has_the_cost_asked_for(rounds):
    assert accounts.dummy_hash(rounds).startswith(f"$2b${rounds:02d}$")
    # bcrypt checks it at that cost (a string it refused would be a quick ValueError), and no
    # password matches it
    assert bcrypt.checkpw(b"no such user", accounts.dummy_hash(rounds).encode()) is False
    assert len(accounts.dummy_hash(rounds)) == len(bcrypt.hashpw(b"x", bcrypt.gensalt(4)))


def test_checking_the_dummy_hash_takes_as_long_as_a_real_one():
    real = bcrypt.hashpw(b"a password", bcrypt.gensalt(8)).decode()

    def quickest(password_hash: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            accounts.check_password("a guess", password_hash)
            times.append(time.perf_counter() - started)
        return min(times)

    # the same work (a refused string would return at once: thousands of times quicker)
    assert quickest(accounts.dummy_hash(8)) > 0.5 * quickest(real)


@pytest.mark.parametrize("suffix", ["", "delete"], ids=["edit", "delete"])
def test_user_pages_answer_alike_for_existing_and_missing_users(testapp, data, auth, suffix):
    data.user("root", Role.ADMIN)
    data.user("inst", Role.INSTALLER)
    for headers in (auth("inst"), BROWSER, PIP):
        answers = {
            answer(testapp.get(f"/users/{name}/{suffix}", headers=headers, expect_errors=True))
            for name in ("root", "nosuchuser")
        }
        assert len(answers) == 1, (headers, answers)
    refused = testapp.get(f"/users/nosuchuser/{suffix}", headers=auth("inst"), status=403)
    assert "may not administer users" in refused.status
    # Admins, who may look, do learn it.
    testapp.get(f"/users/nosuchuser/{suffix}", headers=auth("root"), status=404)
    testapp.get(f"/users/inst/{suffix}", headers=auth("root"), status=200)


def test_user_lookup_happens_only_after_the_permission_check(testapp, data, auth, engine):
    data.user("inst", Role.INSTALLER)
    data.user("someone", Role.DEVELOPER)
    with captured_parameters(engine) as seen:
        testapp.get("/users/someone/", headers=auth("inst"), status=403)
        testapp.post("/users/someone/", {"action": "update"}, headers=auth("inst"), status=403)
        testapp.get("/users/someone/", headers=BROWSER, status=302)
    assert "someone" not in seen


@pytest.mark.parametrize(
    ("container", "suffix"),
    [("teams", ""), ("teams", "@@status"), ("webhooks", ""), ("webhooks", "delete")],
)
def test_team_and_webhook_pages_answer_alike_for_existing_and_missing(
    testapp, data, auth, engine, container, suffix
):
    from extrapypi.services import teams, webhooks

    data.user("root", Role.ADMIN)
    data.user("inst", Role.INSTALLER)
    tm, dbsession = data.session()
    with tm:
        teams.create_team(dbsession, "core", None)
        endpoint_id = webhooks.create_endpoint(dbsession, "https://hooks.example/x").id
    existing = {"teams": "core", "webhooks": str(endpoint_id)}[container]
    missing = {"teams": "nosuchteam", "webhooks": str(endpoint_id + 1)}[container]
    for headers in (auth("inst"), BROWSER, PIP):
        answers = {
            answer(
                testapp.get(f"/{container}/{name}/{suffix}", headers=headers, expect_errors=True)
            )
            for name in (existing, missing)
        }
        assert len(answers) == 1, (headers, answers)
    with captured_parameters(engine) as seen:
        testapp.get("/teams/core/", headers=auth("inst"), status=403)
    assert "core" not in seen  # not looked up at all
    # Admins, who may look, do learn it.
    testapp.get(f"/{container}/{missing}/", headers=auth("root"), status=404)
    testapp.get(f"/{container}/{existing}/", headers=auth("root"), status=200)


# --- item 10 -------------------------------------------------------------------------------


@pytest.mark.parametrize("came_from", ["/\u3002evil.com", "/\uff0fevil.com", "/caf\u00e9"])
def test_login_with_a_non_ascii_came_from_goes_home(testapp, data, came_from):
    data.user("bob", Role.DEVELOPER)
    response = login(testapp, "bob", came_from=came_from)
    assert response.status_int == 303
    assert response.location == "http://example.com/"


def test_login_keeps_an_encoded_came_from_on_this_site(testapp, data):
    data.user("bob", Role.DEVELOPER)
    response = login(testapp, "bob", came_from="/packages/?q=%E3%80%82")
    assert response.location == "http://example.com/packages/?q=%E3%80%82"


def cors_client(base_settings, origins: str | None):
    settings = dict(base_settings)
    if origins is not None:
        settings["extrapypi.json_api_cors_origins"] = origins
    return webtest.TestApp(main({}, **settings), extra_environ={"HTTP_HOST": "example.com"})


def test_json_api_sends_no_cors_header_unless_configured(testapp, data, auth):
    data.user("reader", Role.INSTALLER)
    data.release_file("demo", "1.0")
    response = testapp.get(
        "/pypi/demo/json", headers={**auth("reader"), "Origin": "https://evil.example"}
    )
    assert response.json["info"]["version"] == "1.0"
    assert "Access-Control-Allow-Origin" not in response.headers


def test_json_api_cors_for_listed_origins_only(base_settings, clean, data, auth):
    data.user("reader", Role.INSTALLER)
    data.release_file("demo", "1.0")
    client = cors_client(base_settings, "https://docs.example.com https://ci.example.com/")
    for origin, allowed in (
        ("https://docs.example.com", True),
        ("https://ci.example.com", True),
        ("https://evil.example", False),
    ):
        response = client.get("/pypi/demo/json", headers={**auth("reader"), "Origin": origin})
        assert response.headers.get("Access-Control-Allow-Origin") == (origin if allowed else None)
        assert "Origin" in response.headers["Vary"]
        assert "Access-Control-Allow-Credentials" not in response.headers
    star = cors_client(base_settings, "*").get("/pypi/demo/json", headers=auth("reader"))
    assert star.headers["Access-Control-Allow-Origin"] == "*"


def test_dashboard_pages_are_never_stored(testapp, data, auth):
    data.user("root", Role.ADMIN, email="root@example.com")
    data.release_file("demo", "1.0")
    assert testapp.get("/login").headers["Cache-Control"] == "no-store"
    assert login(testapp, "root").status_int == 303
    for path in ("/", "/account", "/users/", "/users/root/", "/packages/", "/packages/demo/"):
        response = testapp.get(path, headers=BROWSER)
        assert response.status_int == 200, path
        assert response.headers["Cache-Control"] == "no-store", path
    # Programs' pages and files keep their own caching.
    simple = testapp.get("/simple/demo/", headers=auth("root"))
    assert "no-store" not in simple.headers.get("Cache-Control", "")
    wheel = testapp.get("/packages/demo/1.0/demo-1.0-py3-none-any.whl", headers=auth("root"))
    assert "immutable" in wheel.headers["Cache-Control"]


class captured_parameters:
    """Every parameter value the app sends to the database while the block runs."""

    def __init__(self, engine):
        self.engine = engine
        self.seen: list = []

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        rows = parameters if executemany else [parameters]
        for row in rows:
            values = row.values() if isinstance(row, dict) else (row or ())
            self.seen.extend(values)

    def __enter__(self) -> list:
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self.seen

    def __exit__(self, *exc) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._record)
