"""Cached reads cost no database round trip, and logins survive everything but their own user's
changes: the serial clock (``services/serials.py``) and the access serial (``models/access.py``).

Every app here reads the serials at most once an hour unless told otherwise, so what a test sees
is what this process's own commits told it, never a lucky re-read.
"""

import time

import pytest
import sqlalchemy as sa
import webtest
from conftest import SECRET, basic_auth, permits
from dists import wheel_bytes
from test_upload import post

from extrapypi import main
from extrapypi.permissions import Permission, Role
from extrapypi.services import accounts, serials, teams, tokens
from extrapypi.services.accounts import BcryptChecks
from extrapypi.services.packages import get_package

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture
def slow_clock_app(base_settings, clean):
    """An app whose serial clock reads the database at most once an hour."""
    app = main({}, **{**base_settings, "extrapypi.serial_check_seconds": "3600"})
    return webtest.TestApp(app, extra_environ={"HTTP_HOST": "example.com"})


def files_of(app, project: str, username: str = "reader") -> list[str]:
    page = app.get(f"/simple/{project}/", headers={**basic_auth(username), "Accept": JSON}).json
    return [f["filename"] for f in page["files"]]


def count_statements(engine):
    statements = []
    sa.event.listen(engine, "before_cursor_execute", lambda c, cur, s, *a: statements.append(s))
    return statements


def test_cached_reads_make_no_statement_and_open_no_session(slow_clock_app, data):
    data.user("reader")
    info = data.release_file("demo", "1.0")
    app = slow_clock_app
    assert files_of(app, "demo") == [info["filename"]]  # login verified, page built
    app.get("/simple/", headers=basic_auth("reader"))
    engine = app.app.registry["db_engine"]
    statements = count_statements(engine)
    checkouts = []
    sa.event.listen(engine, "checkout", lambda *a: checkouts.append(a))
    for _ in range(3):
        assert files_of(app, "demo") == [info["filename"]]
        app.get("/simple/", headers=basic_auth("reader"))
    assert statements == [] and checkouts == []


def test_an_upload_in_this_process_shows_at_once_and_costs_no_login(slow_clock_app, data):
    data.user("reader")
    data.user("dev", Role.DEVELOPER)
    app = slow_clock_app
    app.get("/simple/", headers=basic_auth("dev"))
    assert app.get("/simple/demo/", headers=basic_auth("reader"), status=404)
    checks = BcryptChecks.count
    post(app, wheel_bytes("demo", "1.0"), basic_auth("dev"))  # through this app
    assert files_of(app, "demo") == ["demo-1.0-py3-none-any.whl"]
    data.release_file("demo", "2.0")  # another app of this process (the CLI's importer, say)
    assert files_of(app, "demo") == ["demo-1.0-py3-none-any.whl", "demo-2.0-py3-none-any.whl"]
    app.get("/simple/", headers=basic_auth("dev"))
    assert BcryptChecks.count == checks  # both logins were verified before the uploads


def test_a_change_by_another_process_waits_for_the_clock(base_settings, data):
    """Another server's commit (raw SQL on a connection of its own) is seen when the clock reads
    again: never with an hour-long interval, at the next request after a short one."""
    data.user("reader")
    data.release_file("demo", "1.0")
    apps = {
        seconds: webtest.TestApp(
            main({}, **{**base_settings, "extrapypi.serial_check_seconds": seconds}),
            extra_environ={"HTTP_HOST": "example.com"},
        )
        for seconds in ("3600", "0.2")
    }
    for app in apps.values():
        assert files_of(app, "demo") == ["demo-1.0-py3-none-any.whl"]
    other = sa.create_engine(base_settings["sqlalchemy.url"])  # not this process's apps' engine
    try:
        with other.begin() as connection:
            connection.execute(sa.text("UPDATE files SET filename = 'demo-1.0-renamed.whl'"))
            connection.execute(sa.text("UPDATE index_state SET serial = serial + 1 WHERE id = 1"))
    finally:
        other.dispose()
    assert files_of(apps["3600"], "demo") == ["demo-1.0-py3-none-any.whl"]  # stale, by design
    clock = apps["0.2"].app.registry["extrapypi.serial_clock"]
    reads = clock.reads
    time.sleep(0.25)
    assert files_of(apps["0.2"], "demo") == ["demo-1.0-renamed.whl"]
    assert clock.reads == reads + 1


def test_unrelated_user_changes_cost_no_bcrypt(slow_clock_app, data):
    """Another user's change moves the access serial: each login costs one row read, no bcrypt."""
    data.user("reader")
    data.user("other")
    app = slow_clock_app
    app.get("/simple/", headers=basic_auth("reader"))
    app.get("/simple/", headers=basic_auth("other"))
    checks = BcryptChecks.count
    data.user("newcomer")
    tm, dbsession = data.session()
    with tm:
        accounts.set_active(dbsession, accounts.get_user(dbsession, "other"), False)
    app.get("/simple/", headers=basic_auth("reader"))
    app.get("/simple/", headers=basic_auth("other"), status=401)
    assert BcryptChecks.count == checks


@pytest.mark.parametrize(
    "change, status",
    [
        (lambda db, user: accounts.set_password(db, user, "a brand new password", rounds=4), 401),
        (lambda db, user: accounts.set_active(db, user, False), 401),
        (lambda db, user: accounts.delete_user(db, user), 401),
        (lambda db, user: accounts.change_role(db, user, Role.INSTALLER.value), 403),
    ],
    ids=["password", "deactivation", "deletion", "role"],
)
def test_a_change_to_that_user_takes_effect_at_once(slow_clock_app, data, change, status):
    data.user("ada", Role.ADMIN)
    data.user("keep", Role.ADMIN)
    app = slow_clock_app
    for _ in range(2):
        app.get("/users/", headers=basic_auth("ada"), status=200)
    tm, dbsession = data.session()
    with tm:
        change(dbsession, accounts.get_user(dbsession, "ada"))
    app.get("/users/", headers=basic_auth("ada"), status=status)


def test_a_revoked_token_and_a_team_change_take_effect_at_once(slow_clock_app, data):
    data.user("tim", Role.MAINTAINER)
    data.package("pkg")
    tm, dbsession = data.session()
    with tm:
        user = accounts.get_user(dbsession, "tim")
        _, token = tokens.create_token(dbsession, SECRET, user, "ci", tokens.Scope.READ)
        team = teams.create_team(dbsession, "core", None)
        teams.add_team_maintainer(dbsession, get_package(dbsession, "pkg"), team, None)
    app = slow_clock_app.app
    for _ in range(2):
        slow_clock_app.get("/simple/", headers=basic_auth("__token__", token), status=200)
        assert not permits(app, basic_auth("tim"), "pkg", Permission.UPLOAD)
    with tm:
        teams.add_member(dbsession, teams.get_team(dbsession, "core"), user_named(dbsession), None)
    assert permits(app, basic_auth("tim"), "pkg", Permission.UPLOAD)  # team:core, at once
    with tm:
        tokens.revoke_token(dbsession, tokens.find_token(dbsession, token))
    slow_clock_app.get("/simple/", headers=basic_auth("__token__", token), status=401)


def user_named(dbsession, username: str = "tim"):
    return accounts.get_user(dbsession, username)


def test_the_clock_reads_once_per_interval_and_again_after_a_commit_here(app, data):
    clock = serials.SerialClock(app.registry["db_engine"], check_seconds=3600)
    first = clock.current()
    assert clock.current() is first and clock.reads == 1
    data.release_file("demo", "1.0")  # commits through the same database: invalidates
    second = clock.current()
    assert second.index == first.index + 1 and second.access == first.access
    assert clock.reads == 2
    data.user("someone")
    third = clock.current()
    assert third.access == second.access + 1 and third.index == second.index


def test_parallel_requests_with_the_same_new_credentials_pay_one_bcrypt(slow_clock_app, data):
    """pip's connections after the caches expired: one check, the others wait for its answer."""
    import threading

    from webob import Request

    data.user("reader")
    app = slow_clock_app.app
    checks = BcryptChecks.count
    statuses = []

    def read():
        request = Request.blank("/simple/", headers={"Host": "example.com", **basic_auth("reader")})
        statuses.append(request.get_response(app).status_int)

    threads = [threading.Thread(target=read) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 6
    assert BcryptChecks.count == checks + 1
