"""``initialize_db``: migrations, then the seed users only on an empty database."""

import configparser
import io
import re
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from conftest import write_ini
from pyramid.settings import asbool

from extrapypi.scripts.initialize_db import main as initialize_db

ROOT = Path(__file__).resolve().parents[2]


def _users(engine):
    with engine.connect() as connection:
        return dict(connection.execute(sa.text("SELECT username, role FROM users")).all())


def shown_password(out: str, username: str) -> str:
    match = re.search(rf"password of {username} \(shown only now\): (\S+)", out)
    assert match, out
    return match.group(1)


def test_seeds_users_with_random_passwords_shown_once(
    ini_file, engine, clean, testapp, auth, capsys
):
    """Outside development no well-known password exists: admin/admin never opens a new index."""
    assert initialize_db([ini_file]) == 0
    out = capsys.readouterr()
    assert "created users admin (admin), pip (installer)" in out.out
    assert "WARNING" not in out.err
    admin, installer = shown_password(out.out, "admin"), shown_password(out.out, "pip")
    assert len(admin) >= 20 and admin != installer
    assert _users(engine) == {"admin": "admin", "pip": "installer"}
    assert "admin" in testapp.get("/users/", headers=auth("admin", admin)).text
    testapp.get("/simple/", headers=auth("pip", installer), status=200)
    testapp.get("/users/", headers=auth("admin", "admin"), status=401)
    testapp.get("/simple/", headers=auth("pip", "pip"), status=401)
    assert initialize_db([ini_file]) == 0
    out = capsys.readouterr()
    assert "created users" not in out.out and "password of" not in out.out
    assert _users(engine) == {"admin": "admin", "pip": "installer"}


def test_development_ini_keeps_the_demo_passwords(
    base_settings, engine, clean, testapp, auth, tmp_path, capsys
):
    ini = write_ini(tmp_path / "dev.ini", {**base_settings, "extrapypi.demo_passwords": "true"})
    assert initialize_db([ini]) == 0
    out = capsys.readouterr()
    assert "password of" not in out.out
    assert "WARNING: default passwords" in out.err
    testapp.get("/users/", headers=auth("admin", "admin"), status=200)
    testapp.get("/simple/", headers=auth("pip", "pip"), status=200)


def test_development_ini_opts_into_the_demo_passwords():
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(ROOT / "development.ini")
    assert asbool(ini["app:main"]["extrapypi.demo_passwords"])
    production = configparser.ConfigParser(interpolation=None)
    production.read(ROOT / "production.ini")
    assert "extrapypi.demo_passwords" not in production["app:main"]
    assert asbool(production["app:main"]["extrapypi.cookie_secure"])


def test_admin_password_from_stdin(ini_file, engine, clean, testapp, auth, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret-from-a-pipe\n"))
    assert initialize_db([ini_file, "--admin-password-stdin"]) == 0
    out = capsys.readouterr().out
    assert "password of admin" not in out and "s3cret-from-a-pipe" not in out
    shown_password(out, "pip")
    testapp.get("/users/", headers=auth("admin", "s3cret-from-a-pipe"), status=200)


def test_admin_password_stdin_that_is_empty_is_refused(ini_file, engine, clean, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert initialize_db([ini_file, "--admin-password-stdin"]) == 1
    assert _users(engine) == {}


def test_custom_names_and_passwords(ini_file, engine, clean, testapp, auth, capsys):
    args = [
        ini_file,
        "--admin-user",
        "root",
        "--admin-password",
        "s3cret-admin-pw",
        "--installer-user",
        "ci",
        "--installer-password",
        "s3cret-ci-pass",
    ]
    assert initialize_db(args) == 0
    assert "WARNING" not in capsys.readouterr().err
    assert _users(engine) == {"root": "admin", "ci": "installer"}
    assert "root" in testapp.get("/users/", headers=auth("root", "s3cret-admin-pw")).text
    testapp.get("/simple/", headers=auth("ci", "pip"), status=401)


def test_no_default_users(ini_file, engine, clean):
    assert initialize_db([ini_file, "--no-default-users"]) == 0
    assert _users(engine) == {}


def test_console_script_runs(ini_file, clean):
    result = subprocess.run(
        [sys.executable, "-m", "extrapypi.scripts.initialize_db", ini_file, "--no-default-users"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "schema is up to date" in result.stdout


def test_chosen_seed_passwords_meet_the_policy_defaults_stay(ini_file, engine, clean, capsys):
    """admin/admin and pip/pip are the documented development pairs; a chosen one is checked."""
    assert initialize_db([ini_file, "--admin-password", "short"]) == 1
    assert "at least 12 characters" in capsys.readouterr().err
    assert _users(engine) == {}
    assert initialize_db([ini_file, "--installer-password", "admin"]) == 1  # not its default
    assert _users(engine) == {}
