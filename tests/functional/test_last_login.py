"""``last_login`` counts pip's and twine's Basic logins too, written at most once an hour."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from test_cli import extrapypi

from extrapypi.models import User
from extrapypi.permissions import Role


def last_login(engine, username: str) -> datetime | None:
    with engine.connect() as connection:
        value = connection.execute(
            sa.select(User.last_login).where(User.username == username)
        ).scalar()
    return value.replace(tzinfo=UTC) if value is not None else None


def set_last_login(engine, username: str, value: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.update(User)
            .where(User.username == username)
            .values(last_login=value.astimezone(UTC).replace(tzinfo=None))
        )


def forget_logins(app) -> None:
    app.registry["extrapypi.login_cache"].clear()
    app.registry["extrapypi.credential_cache"]._entries.clear()


def test_basic_login_is_noted_at_most_hourly(app, testapp, data, engine, auth):
    data.user("pip-user", Role.INSTALLER)
    assert last_login(engine, "pip-user") is None
    testapp.get("/simple/", headers=auth("pip-user"))
    first = last_login(engine, "pip-user")
    assert first is not None
    assert abs(datetime.now(UTC) - first) < timedelta(minutes=1)

    # Within the hour: no write, whether the login cache answers or the database does.
    recent = datetime.now(UTC) - timedelta(minutes=30)
    set_last_login(engine, "pip-user", recent)
    testapp.get("/simple/", headers=auth("pip-user"))  # the login cache
    forget_logins(app)
    testapp.get("/simple/", headers=auth("pip-user"))  # bcrypt again, a cache miss
    assert abs(last_login(engine, "pip-user") - recent) < timedelta(seconds=1)

    # Past the hour: the next verified login moves it.
    set_last_login(engine, "pip-user", datetime.now(UTC) - timedelta(hours=2))
    forget_logins(app)
    testapp.get("/simple/", headers=auth("pip-user"))
    assert datetime.now(UTC) - last_login(engine, "pip-user") < timedelta(minutes=1)


def test_wrong_password_and_anonymous_requests_note_nothing(testapp, data, engine, auth):
    data.user("pip-user", Role.INSTALLER)
    testapp.get("/simple/", headers=auth("pip-user", "not the password"), status=401)
    testapp.get("/simple/", status=401)
    assert last_login(engine, "pip-user") is None


def test_user_list_shows_basic_logins(ini_file, testapp, data, auth, capsys):
    data.user("pip-user", Role.INSTALLER)
    data.user("never-seen", Role.INSTALLER)
    testapp.get("/simple/", headers=auth("pip-user"))
    assert extrapypi(["user", "list", ini_file]) == 0
    rows = {line.split()[0]: line.split()[-2:] for line in capsys.readouterr().out.splitlines()}
    assert rows["never-seen"][-1] == "never"
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert rows["pip-user"][0] == today
