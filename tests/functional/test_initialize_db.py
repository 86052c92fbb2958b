"""``initialize_db``: migrations, then the seed users only on an empty database."""

import subprocess
import sys

import sqlalchemy as sa

from extrapypi.scripts.initialize_db import main as initialize_db


def _users(engine):
    with engine.connect() as connection:
        return dict(connection.execute(sa.text("SELECT username, role FROM users")).all())


def test_seeds_default_users_once(ini_file, engine, clean, capsys):
    assert initialize_db([ini_file]) == 0
    out = capsys.readouterr()
    assert "created users admin (admin), pip (installer)" in out.out
    assert "WARNING: default passwords" in out.err
    assert _users(engine) == {"admin": "admin", "pip": "installer"}
    assert initialize_db([ini_file]) == 0
    assert "created users" not in capsys.readouterr().out
    assert _users(engine) == {"admin": "admin", "pip": "installer"}


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
