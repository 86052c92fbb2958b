"""Login throttling slows guessing without letting anyone lock an account out.

Budgets (small here): 3 failures per (username, address), 5 per address, 6 per account from all
addresses; past the account budget only addresses the account logged in from before get in.
Client addresses are set as a WSGI server sets them (``REMOTE_ADDR``); the real-socket version
is ``tests/e2e/test_throttle_server.py``.
"""

import re

import pytest
import sqlalchemy as sa
import webtest
from conftest import basic_auth

from extrapypi import main
from extrapypi.models import LoginAddress, LoginFailure

THROTTLE = {
    "extrapypi.login_throttle_attempts": "3",
    "extrapypi.login_throttle_window": "60",
    "extrapypi.login_throttle_address_attempts": "5",
    "extrapypi.login_throttle_account_attempts": "6",
    "extrapypi.login_throttle_account_window": "600",
}
ATTACKER, VICTIM_HOME, ELSEWHERE = "127.0.0.2", "127.0.0.3", "127.0.0.4"


@pytest.fixture(scope="module")
def throttled_wsgi(app, base_settings):
    return main({}, **{**base_settings, **THROTTLE})


@pytest.fixture
def client(throttled_wsgi, clean):
    """``client(address)``: a browser or pip at that address; caches emptied per test."""
    throttled_wsgi.registry["extrapypi.credential_cache"]._entries.clear()
    throttled_wsgi.registry["extrapypi.login_cache"].clear()

    def at(address: str) -> webtest.TestApp:
        return webtest.TestApp(
            throttled_wsgi, extra_environ={"HTTP_HOST": "example.com", "REMOTE_ADDR": address}
        )

    return at


def post_login(client, username: str, password: str = "correct horse"):
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post(
        "/login",
        {"username": username, "password": password, "csrf_token": token},
        expect_errors=True,
    )


def test_hammering_from_one_address_does_not_lock_the_owner_out(client, data):
    """The review's repro: eleven wrong passwords for victim from .2; victim logs in from .3."""
    data.user("victim")
    attacker = client(ATTACKER)
    for _ in range(3):
        assert post_login(attacker, "victim", "wrong").status_int == 400
    refused = post_login(attacker, "victim")  # even the right password, from that address
    assert refused.status_int == 429
    assert "Too many failed logins for this username from your address" in refused.text
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    for _ in range(8):
        assert post_login(attacker, "victim", "wrong").status_int == 429
    assert post_login(client(VICTIM_HOME), "victim").status_int == 303
    client(ELSEWHERE).get("/simple/", headers=basic_auth("victim"), status=200)


def test_basic_auth_is_throttled_per_username_and_address(client, data, app):
    data.user("dave")
    attacker = client(ATTACKER)
    for _ in range(3):
        attacker.get("/simple/", headers=basic_auth("dave", "wrong"), status=401)
    refused = attacker.get("/simple/", headers=basic_auth("dave"), status=429)
    assert refused.status.startswith("429 Too many failed logins")
    assert refused.headers["Retry-After"]
    # Shared state: another app process refuses that pair too, and lets the owner in elsewhere.
    second = webtest.TestApp(
        main({}, **{**app.registry.settings, **THROTTLE}),
        extra_environ={"HTTP_HOST": "example.com", "REMOTE_ADDR": ATTACKER},
    )
    second.get("/simple/", headers=basic_auth("dave"), status=429)
    client(VICTIM_HOME).get("/simple/", headers=basic_auth("dave"), status=200)
    assert post_login(client(ELSEWHERE), "dave").status_int == 303


def test_one_address_spraying_many_usernames_is_refused(client, data):
    data.user("carol")
    sprayer = client(ATTACKER)
    for n in range(5):
        assert post_login(sprayer, f"user{n}", "guess").status_int == 400
    refused = post_login(sprayer, "carol")
    assert refused.status_int == 429
    assert "Too many failed logins from your address" in refused.text
    sprayer.get("/simple/", headers=basic_auth("carol"), status=429)
    assert post_login(client(VICTIM_HOME), "carol").status_int == 303


def test_distributed_guessing_pauses_new_addresses_but_not_known_ones(client, data):
    data.user("victim")
    assert post_login(client(VICTIM_HOME), "victim").status_int == 303  # a known address now
    # Six addresses guess once each: no pair or address budget is spent, the account's is.
    for n in range(6):
        bot = client(f"10.0.0.{n + 10}")
        assert post_login(bot, "victim", "wrong").status_int == 400
    fresh = post_login(client(ELSEWHERE), "victim")
    assert fresh.status_int == 429
    assert "addresses it has not used before are paused" in fresh.text
    client("10.0.0.99").get("/simple/", headers=basic_auth("victim", "guess"), status=429)
    # The owner, from where they logged in before, gets in by form and by Basic.
    assert post_login(client(VICTIM_HOME), "victim").status_int == 303
    client(VICTIM_HOME).get("/simple/", headers=basic_auth("victim"), status=200)
    # Guessing from a known address still spends that pair's budget.
    home = client(VICTIM_HOME)
    for _ in range(3):
        assert post_login(home, "victim", "wrong").status_int == 400
    assert post_login(home, "victim").status_int == 429


def test_a_success_forgets_the_failures_of_its_pair(client, data):
    data.user("bob")
    me = client(VICTIM_HOME)
    for _ in range(2):
        assert post_login(me, "bob", "typo").status_int == 400
    assert post_login(me, "bob").status_int == 303
    for _ in range(2):
        assert post_login(me, "bob", "typo").status_int == 400
    assert post_login(me, "bob").status_int == 303


def test_known_addresses_are_recorded_per_account_and_deleted_with_it(client, data):
    user_id = data.user("bob")
    assert post_login(client(VICTIM_HOME), "bob").status_int == 303
    client(ELSEWHERE).get("/simple/", headers=basic_auth("bob"), status=200)
    tm, dbsession = data.session()
    with tm:
        rows = dbsession.execute(sa.select(LoginAddress.user_id, LoginAddress.address)).all()
        assert sorted(rows) == [(user_id, VICTIM_HOME), (user_id, ELSEWHERE)]
        from extrapypi.services.accounts import delete_user, get_user

        delete_user(dbsession, get_user(dbsession, "bob"))
    with tm:
        assert dbsession.scalars(sa.select(LoginAddress)).all() == []


def test_cached_basic_credentials_cost_no_throttle_query(client, data):
    data.user("erin")
    pip = client(VICTIM_HOME)
    pip.get("/simple/", headers=basic_auth("erin"), status=200)  # verified and cached
    engine = pip.app.registry["db_engine"]
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        pip.get("/simple/", headers=basic_auth("erin"), status=200)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    # At most the serial clock's read (once a second, services/serials.py): no throttle query.
    assert all("index_state" in s for s in statements), statements


def test_hostile_usernames_and_addresses_are_counted_not_crashed(client, data):
    long_name = "x" * 5000
    attacker = client("\x00" + "1" * 300)
    for _ in range(3):
        attacker.get("/simple/", headers=basic_auth(long_name + "\x00", "p"), status=401)
    attacker.get("/simple/", headers=basic_auth(long_name + "\x00", "p"), status=429)
    tm, dbsession = data.session()
    with tm:
        keys = dbsession.scalars(sa.select(LoginFailure.key).distinct()).all()
    assert keys and all(len(key) <= 255 and "\x00" not in key for key in keys)


def test_a_good_login_from_a_known_address_writes_nothing(client, data, throttled_wsgi):
    """Usual case costs: the failure count and the known-address read; no write, no lock."""
    data.user("erin")
    pip = client(VICTIM_HOME)
    pip.get("/simple/", headers=basic_auth("erin"), status=200)  # records the address
    throttled_wsgi.registry["extrapypi.credential_cache"]._entries.clear()
    throttled_wsgi.registry["extrapypi.login_cache"].clear()
    engine = throttled_wsgi.registry["db_engine"]
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()))

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        pip.get("/simple/", headers=basic_auth("erin"), status=200)  # bcrypt again
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    login = [s for s in statements if "login_failures" in s or "login_addresses" in s]
    assert len(login) == 2 and all(s.startswith("SELECT") for s in login), login
