"""Dashboard sessions live on the server: logout and account changes end them for good.

A stolen or copied session cookie ("replayed") must stop working the moment its session ends:
it lands on the login page, and its old CSRF token changes nothing.
"""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
import webtest

from extrapypi.models import LoginSession
from extrapypi.models.meta import utcnow
from extrapypi.permissions import Role
from extrapypi.services import accounts

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
COOKIE = "extrapypi_session"


def csrf_token(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def browser(app) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"HTTP_HOST": "example.com"})


def log_in(client, username: str, password: str = "correct horse") -> str:
    """Log in through the form; returns the CSRF token of the new session."""
    page = client.get("/login")
    client.post(
        "/login",
        {"username": username, "password": password, "csrf_token": csrf_token(page)},
        status=303,
    )
    return csrf_token(client.get("/account", headers=BROWSER, status=200))


def copy_of(client) -> webtest.TestApp:
    """Another client holding a copy of this browser's session cookie (a thief, a replay)."""
    thief = browser(client.app)
    thief.set_cookie(COOKIE, client.cookies[COOKIE])
    return thief


def lands_on_login(client, path: str = "/account") -> None:
    response = client.get(path, headers=BROWSER, status=302)
    assert response.location.startswith("http://example.com/login?came_from=")


def stored(data, fn):
    tm, dbsession = data.session()
    with tm:
        return fn(dbsession)


def session_count(data, username: str) -> int:
    return stored(
        data,
        lambda s: s.scalar(
            sa.select(sa.func.count())
            .select_from(LoginSession)
            .where(LoginSession.user_id == accounts.get_user(s, username).id)
        ),
    )


def email_of(data, username: str) -> str:
    return stored(data, lambda s: accounts.get_user(s, username).email)


def test_replayed_cookie_after_logout_lands_on_login_and_its_token_changes_nothing(app, data):
    data.user("bob", Role.DEVELOPER)
    client = browser(app)
    token = log_in(client, "bob")
    thief = copy_of(client)
    assert "bob · developer" in thief.get("/account", headers=BROWSER).text  # a live copy works
    assert session_count(data, "bob") == 1

    client.post("/logout", {"csrf_token": token}, status=303)

    assert session_count(data, "bob") == 0
    lands_on_login(thief)


def test_old_cookie_and_its_csrf_token_are_refused_after_logout(app, data):
    """The exact review repro: copy the cookie, log out, replay GET and POST with it."""
    data.user("bob", Role.DEVELOPER)
    client = browser(app)
    token = log_in(client, "bob")
    stolen = client.cookies[COOKIE]
    client.post("/logout", {"csrf_token": token}, status=303)

    replay = browser(app)
    replay.set_cookie(COOKIE, stolen)
    lands_on_login(replay)
    replay = browser(app)
    replay.set_cookie(COOKIE, stolen)
    refused = replay.post(
        "/account",
        {"csrf_token": token, "action": "email", "email": "evil@example.com"},
        expect_errors=True,
    )
    assert refused.status_int in (401, 403), refused.status
    assert email_of(data, "bob") == ""
    # The replayed cookie is dropped by the server: the next request carries no session.
    assert "bob" not in replay.get("/login").text


def test_own_password_change_ends_other_sessions_and_keeps_this_one(app, data):
    data.user("bob")
    laptop, phone = browser(app), browser(app)
    token = log_in(laptop, "bob")
    log_in(phone, "bob")
    before = copy_of(laptop)  # the laptop's cookie as it was before the change
    laptop.post(
        "/account",
        {
            "csrf_token": token,
            "action": "password",
            "current": "correct horse",
            "password": "n3w-secret-horse",
            "confirmation": "n3w-secret-horse",
        },
        status=303,
    )
    assert "bob · installer" in laptop.get("/account", headers=BROWSER, status=200).text
    lands_on_login(phone)
    lands_on_login(before)
    assert session_count(data, "bob") == 1


@pytest.mark.parametrize(
    "form",
    [
        {"action": "password", "password": "n3w-secret-horse", "confirmation": "n3w-secret-horse"},
        {"action": "update", "role": "installer", "email": "", "is_active": "1"},  # role change
        {"action": "update", "role": "developer", "email": ""},  # deactivation
    ],
    ids=["password", "role", "deactivation"],
)
def test_admin_changes_end_the_users_sessions(app, data, form):
    data.user("root", Role.ADMIN)
    data.user("bob", Role.DEVELOPER)
    admin, bob = browser(app), browser(app)
    admin_token = log_in(admin, "root")
    log_in(bob, "bob")
    admin.post("/users/bob/", {"csrf_token": admin_token, **form}, status=303)
    lands_on_login(bob)
    assert session_count(data, "bob") == 0
    assert "root · admin" in admin.get("/account", headers=BROWSER).text


def test_email_change_by_an_admin_keeps_the_users_session(app, data):
    data.user("root", Role.ADMIN)
    data.user("carol", Role.DEVELOPER)
    admin, carol = browser(app), browser(app)
    admin_token = log_in(admin, "root")
    log_in(carol, "carol")
    admin.post(
        "/users/carol/",
        {
            "csrf_token": admin_token,
            "action": "update",
            "role": "developer",
            "email": "c@x.org",
            "is_active": "1",
        },
        status=303,
    )
    assert email_of(data, "carol") == "c@x.org"
    assert "carol · developer" in carol.get("/account", headers=BROWSER, status=200).text


def test_deleting_a_user_ends_their_sessions(app, data):
    data.user("root", Role.ADMIN)
    data.user("bob", Role.DEVELOPER)
    admin, bob = browser(app), browser(app)
    admin_token = log_in(admin, "root")
    log_in(bob, "bob")
    admin.post("/users/bob/delete", {"csrf_token": admin_token}, status=303)
    lands_on_login(bob)
    root_id = stored(data, lambda s: accounts.get_user(s, "root").id)
    assert stored(data, lambda s: s.scalars(sa.select(LoginSession.user_id)).all()) == [root_id]


def test_cli_style_service_changes_end_sessions(app, data):
    """Every path that changes a password or role (the CLI uses the same services) ends them."""
    data.user("bob", Role.DEVELOPER)
    bob = browser(app)
    log_in(bob, "bob")
    tm, dbsession = data.session()
    with tm:
        accounts.change_role(dbsession, accounts.get_user(dbsession, "bob"), "maintainer")
    lands_on_login(bob)


def test_log_out_everywhere_ends_every_session_of_the_account_only(app, data):
    data.user("bob")
    data.user("carol")
    laptop, phone, other_user = browser(app), browser(app), browser(app)
    token = log_in(laptop, "bob")
    log_in(phone, "bob")
    log_in(other_user, "carol")
    page = laptop.get("/account", headers=BROWSER)
    assert "Log out everywhere" in page.text and 'value="logout-everywhere"' in page.text

    done = laptop.post("/account", {"csrf_token": token, "action": "logout-everywhere"}, status=303)
    assert done.location == "http://example.com/login"
    assert "Logged out everywhere (2 session(s) ended)." in laptop.get("/login").text
    lands_on_login(phone)
    lands_on_login(laptop)  # "everywhere" includes this browser
    assert session_count(data, "bob") == 0
    assert "carol · installer" in other_user.get("/account", headers=BROWSER, status=200).text


def test_log_out_everywhere_needs_the_csrf_token(app, data):
    data.user("bob")
    client = browser(app)
    log_in(client, "bob")
    client.post("/account", {"action": "logout-everywhere"}, status=400)
    client.post("/account", {"action": "logout-everywhere", "csrf_token": "x"}, status=400)
    assert session_count(data, "bob") == 1
    assert "bob · installer" in client.get("/account", headers=BROWSER, status=200).text


def test_a_session_idle_past_max_age_has_ended_on_the_server(app, data):
    data.user("bob")
    client = browser(app)
    log_in(client, "bob")
    tm, dbsession = data.session()
    with tm:
        dbsession.execute(sa.update(LoginSession).values(last_seen=utcnow() - timedelta(days=15)))
    lands_on_login(client)


def test_a_session_costs_one_lookup_and_basic_costs_none(app, data, auth):
    """One indexed lookup per dashboard request; ``last_seen`` written every few minutes only."""
    data.user("bob")
    client = browser(app)
    log_in(client, "bob")
    engine = app.registry["db_engine"]
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()))

    def on_sessions() -> list[str]:
        return [s for s in statements if re.search(r"\bsessions\b", s)]

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        client.get("/account", headers=BROWSER, status=200)
        assert len(on_sessions()) == 1 and on_sessions()[0].startswith("SELECT")
        # Seen long enough ago: this request refreshes last_seen (one UPDATE), the next does not.
        tm, dbsession = data.session()
        with tm:
            dbsession.execute(
                sa.update(LoginSession).values(last_seen=utcnow() - timedelta(minutes=10))
            )
        statements.clear()
        client.get("/account", headers=BROWSER, status=200)
        assert [s.split()[0] for s in on_sessions()] == ["SELECT", "UPDATE"]
        statements.clear()
        client.get("/account", headers=BROWSER, status=200)
        assert [s.split()[0] for s in on_sessions()] == ["SELECT"]
        statements.clear()
        for _ in range(2):
            browser(app).get("/simple/", headers=auth("bob"), status=200)
        assert statements and on_sessions() == []
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def test_the_database_keeps_only_a_hash_of_the_token(app, data):
    data.user("bob")
    client = browser(app)
    log_in(client, "bob")
    ids = stored(data, lambda s: s.scalars(sa.select(LoginSession.id)).all())
    assert len(ids) == 1 and re.fullmatch(r"[0-9a-f]{64}", ids[0])
    cookie = client.cookies[COOKIE]
    assert ids[0] not in cookie


def test_remember_me_still_makes_a_lasting_cookie_backed_by_a_session(app, data):
    data.user("bob")
    client = browser(app)
    page = client.get("/login")
    lasting = client.post(
        "/login",
        {
            "username": "bob",
            "password": "correct horse",
            "remember": "1",
            "csrf_token": csrf_token(page),
        },
        status=303,
    )
    assert "Max-Age=1209600" in lasting.headers["Set-Cookie"]
    assert session_count(data, "bob") == 1
    token = csrf_token(client.get("/account", headers=BROWSER))
    client.post("/logout", {"csrf_token": token}, status=303)
    assert session_count(data, "bob") == 0


def test_logging_in_again_opens_a_new_session_and_drops_expired_ones(app, data):
    data.user("bob")
    data.user("carol")
    stale = browser(app)
    log_in(stale, "carol")
    tm, dbsession = data.session()
    with tm:
        dbsession.execute(sa.update(LoginSession).values(last_seen=utcnow() - timedelta(days=30)))
    log_in(browser(app), "bob")
    assert session_count(data, "carol") == 0
    assert session_count(data, "bob") == 1


def test_password_change_in_a_request_that_refreshes_last_seen(app, data):
    """The refresh of ``last_seen`` and the end of every session meet in one transaction."""
    data.user("bob")
    client = browser(app)
    token = log_in(client, "bob")
    tm, dbsession = data.session()
    with tm:
        dbsession.execute(
            sa.update(LoginSession).values(last_seen=utcnow() - timedelta(minutes=10))
        )
    client.post(
        "/account",
        {
            "csrf_token": token,
            "action": "password",
            "current": "correct horse",
            "password": "n3w-secret-horse",
            "confirmation": "n3w-secret-horse",
        },
        status=303,
    )
    assert "bob · installer" in client.get("/account", headers=BROWSER, status=200).text
    assert session_count(data, "bob") == 1


def test_account_page_title_is_its_title_and_the_sessions_card_is_in_the_page(app, data):
    # A merge once put the "Log out everywhere" card inside the <title> block as well.
    data.user("bob")
    laptop = browser(app)
    log_in(laptop, "bob")
    page = laptop.get("/account", headers=BROWSER, status=200)
    assert page.html.title.string == "My account · extrapypi"
    assert page.text.count("Log out everywhere</button>") == 1
    assert page.html.select_one("main form input[value=logout-everywhere]") is not None
