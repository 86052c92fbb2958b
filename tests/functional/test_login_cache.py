"""The Basic login cache never outlives a change to who may do what, on any instance.

Servers keep verified Basic logins per access serial; every change to a user (password, role,
active flag, name, creation, deletion) or to a package's maintainers bumps it in its own
transaction, so the next request, on this process or another app of this process built from the
same settings, authenticates afresh (other processes: within ``serial_check_seconds``,
``tests/e2e/test_multi_instance.py``). Uploads move only the index serial: no login is lost.
"""

import pytest
import sqlalchemy as sa
import webtest
from conftest import PASSWORD, basic_auth
from conftest import permits as policy_permits

from extrapypi import main
from extrapypi.permissions import Permission, Role
from extrapypi.services import accounts
from extrapypi.services.packages import get_package, remove_maintainer
from extrapypi.services.serials import read_serials

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture
def two_apps(base_settings, clean):
    """Two instances of the same deployment, as behind a load balancer (own caches each)."""
    return [
        webtest.TestApp(main({}, **base_settings), extra_environ={"HTTP_HOST": "example.com"})
        for _ in range(2)
    ]


def serial(data) -> int:
    """The access serial (logins are cached per access serial, pages per index serial)."""
    with data.app.registry["db_engine"].connect() as connection:
        return read_serials(connection).access


def change(data, username: str, how) -> None:
    """Commit a change to one user through the services, as the dashboard or the CLI would."""
    tm, dbsession = data.session()
    with tm:
        how(dbsession, accounts.get_user(dbsession, username))


def warm(apps, path: str, headers: dict, status: int = 200) -> None:
    for app in apps:
        for _ in range(2):  # the second request is served from the login cache
            app.get(path, headers=headers, status=status)


def test_password_change_ends_the_cached_login_everywhere(two_apps, data):
    data.user("pat")
    warm(two_apps, "/simple/", basic_auth("pat"))
    before = serial(data)
    change(
        data, "pat", lambda db, user: accounts.set_password(db, user, "n3w-secret-pass", rounds=4)
    )
    assert serial(data) == before + 1
    for app in two_apps:
        app.get("/simple/", headers=basic_auth("pat"), status=401)
        app.get("/simple/", headers=basic_auth("pat", "n3w-secret-pass"), status=200)


def test_deactivation_and_deletion_end_the_cached_login(two_apps, data):
    data.user("dee")
    data.user("del")
    warm(two_apps, "/simple/", basic_auth("dee"))
    warm(two_apps, "/simple/", basic_auth("del"))
    change(data, "dee", lambda db, user: accounts.set_active(db, user, False))
    for app in two_apps:
        app.get("/simple/", headers=basic_auth("dee"), status=401)
        app.get("/simple/", headers=basic_auth("del"), status=200)
    change(data, "del", lambda db, user: accounts.delete_user(db, user))
    for app in two_apps:
        app.get("/simple/", headers=basic_auth("del"), status=401)
    change(data, "dee", lambda db, user: accounts.set_active(db, user, True))
    for app in two_apps:
        app.get("/simple/", headers=basic_auth("dee"), status=200)


def test_role_change_reaches_both_instances_at_once(two_apps, data):
    data.user("ada", Role.ADMIN)
    data.user("keep", Role.ADMIN)
    warm(two_apps, "/users/", basic_auth("ada"))
    change(data, "ada", lambda db, user: accounts.change_role(db, user, Role.INSTALLER.value))
    for app in two_apps:
        app.get("/users/", headers=basic_auth("ada"), status=403)
        app.get("/simple/", headers=basic_auth("ada"), status=200)
    change(data, "ada", lambda db, user: accounts.change_role(db, user, Role.ADMIN.value))
    for app in two_apps:
        assert "ada" in app.get("/users/", headers=basic_auth("ada")).text


def test_a_raw_orm_change_bumps_the_serial_too(data):
    """Not only the services: any flush that touches a user's access does (the CLI, scripts)."""
    data.user("raw")
    before = serial(data)
    change(data, "raw", lambda db, user: setattr(user, "email", "raw@example.com"))
    change(data, "raw", lambda db, user: accounts.touch_last_login(user))
    assert serial(data) == before  # neither decides access: pages stay cached
    change(data, "raw", lambda db, user: setattr(user, "username", "cooked"))
    assert serial(data) == before + 1

    def two_changes(db, user):
        user.role = Role.DEVELOPER.value
        db.flush()
        user.is_active = False

    change(data, "cooked", two_changes)
    assert serial(data) == before + 2  # once per transaction, however many flushes


def permits(app, username: str, package_name: str, permission: Permission) -> bool:
    return policy_permits(app, basic_auth(username), package_name, permission)


def test_maintainer_removal_bumps_the_serial_and_ends_the_right(app, data):
    data.user("mia", Role.MAINTAINER)
    data.package("pkg", maintainers=("mia",))
    assert permits(app, "mia", "pkg", Permission.UPLOAD)
    assert permits(app, "mia", "pkg", Permission.UPLOAD)  # cached login
    before = serial(data)
    tm, dbsession = data.session()
    with tm:
        package = get_package(dbsession, "pkg")
        remove_maintainer(dbsession, package, accounts.get_user(dbsession, "mia"), None)
    assert serial(data) == before + 1
    assert not permits(app, "mia", "pkg", Permission.UPLOAD)
    assert permits(app, "mia", "pkg", Permission.VIEW)


def test_a_cached_basic_request_costs_no_statement(base_settings, data):
    testapp = webtest.TestApp(  # a slow machine must not see the clock's second pass by
        main({}, **{**base_settings, "extrapypi.serial_check_seconds": "3600"}),
        extra_environ={"HTTP_HOST": "example.com"},
    )
    engine = testapp.app.registry["db_engine"]
    data.user("reader")
    data.release_file("demo", "1.0")
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    headers = {**basic_auth("reader"), "Accept": JSON}
    testapp.get("/simple/demo/", headers=headers)  # verifies the login, builds the page
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        page = testapp.get("/simple/demo/", headers=headers).json
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert [f["filename"] for f in page["files"]] == ["demo-1.0-py3-none-any.whl"]
    # The serials come from the process's clock (read at most once a second): no round trip.
    assert statements == []


def test_wrong_password_is_never_served_from_the_cache(testapp, data):
    data.user("sam")
    testapp.get("/simple/", headers=basic_auth("sam"), status=200)
    testapp.get("/simple/", headers=basic_auth("sam", PASSWORD + "x"), status=401)
    testapp.get("/simple/", headers=basic_auth("sam", PASSWORD[:-1]), status=401)
    testapp.get("/simple/", headers=basic_auth("Sam"), status=401)


def test_login_cache_keys_do_not_collide_and_keep_no_password():
    cache = accounts.LoginCache("secret")
    who = accounts.Account(1, "a", "installer")
    cache.put(7, "a", "b\0c", who)
    assert cache.get(7, "a", "b\0c") == who
    assert cache.get(7, "a\0b", "c") is None
    assert all(b"b\0c" not in key for key in cache._entries)
    assert cache.get(8, "a", "b\0c") is None  # another serial empties the cache
    cache.put(8, "a", "b\0c", who)
    assert cache.get(7, "a", "b\0c") is None  # the serial may go back (a restored database)
    off = accounts.LoginCache("secret", ttl_seconds=0)
    off.put(1, "a", "b", who)
    assert off.get(1, "a", "b") is None


def test_without_the_cache_every_basic_request_checks_the_database(base_settings, clean, data):
    app = webtest.TestApp(
        main({}, **{**base_settings, "extrapypi.credential_cache_seconds": "0"}),
        extra_environ={"HTTP_HOST": "example.com"},
    )
    data.user("nora")
    warm([app], "/simple/", basic_auth("nora"))
    assert app.app.registry["extrapypi.login_cache"]._entries == {}
    change(data, "nora", lambda db, user: accounts.set_active(db, user, False))
    app.get("/simple/", headers=basic_auth("nora"), status=401)
