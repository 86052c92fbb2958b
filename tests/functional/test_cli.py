"""The ``extrapypi`` command run as users run it: ``main(argv)`` and the console script."""

import io
import os
import pty
import select
import stat
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from conftest import PASSWORD, basic_auth, free_port, start_server, venv_tool

from extrapypi.scripts.cli import main as extrapypi
from extrapypi.services.accounts import check_password
from extrapypi.settings import parse_settings


def _users(engine) -> dict[str, tuple[str, bool]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT username, role, is_active FROM users")).all()
    return {username: (role, bool(active)) for username, role, active in rows}


def _password_hash(engine, username: str) -> str:
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT password_hash FROM users WHERE username = :u"), {"u": username}
        ).scalar_one()


@pytest.fixture
def stdin(monkeypatch):
    """Feed ``--password-stdin`` the way a pipe would."""

    def feed(text: str) -> None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(text))

    return feed


# --- help and usage --------------------------------------------------------------------------

COMMANDS = [
    [],
    ["new-config"],
    ["start"],
    ["init"],
    ["user"],
    ["user", "add"],
    ["user", "list"],
    ["user", "set-role"],
    ["user", "set-password"],
    ["user", "activate"],
    ["user", "deactivate"],
    ["user", "delete"],
    ["create-user"],
    ["check"],
    ["export"],
    ["import"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_every_command_has_help(command, capsys):
    assert extrapypi([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: extrapypi")
    assert "--help" in out


def test_top_level_help_lists_commands_and_aliases(capsys):
    assert extrapypi(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("new-config", "user", "check", "export", "import", "start", "init", "create-user"):
        assert name in out
    assert "Exit codes: 0 done, 1 failed, 2 wrong usage" in out


def test_usage_errors_exit_2(capsys):
    assert extrapypi([]) == 2
    assert "required: COMMAND" in capsys.readouterr().err
    assert extrapypi(["frobnicate"]) == 2
    assert extrapypi(["user", "add"]) == 2
    assert "the following arguments are required" in capsys.readouterr().err
    assert extrapypi(["check", "x.ini", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_missing_config_file_is_an_error(tmp_path, capsys):
    assert extrapypi(["user", "list", str(tmp_path / "nope.ini")]) == 1
    assert "no such configuration file" in capsys.readouterr().err


# --- new-config / start ----------------------------------------------------------------------


def test_new_config_writes_a_private_ini_with_a_random_secret(tmp_path, capsys):
    target = tmp_path / "prod.ini"
    base = tmp_path / "data"
    assert extrapypi(["new-config", str(target), "--base-dir", str(base), "--port", "7000"]) == 0
    assert "Wrote" in capsys.readouterr().out
    text = target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert base.is_dir()
    assert f"sqlalchemy.url = sqlite:///{base}/extrapypi.sqlite" in text
    assert f"extrapypi.storage.path = {base}/packages" in text
    assert "listen = 127.0.0.1:7000" in text
    assert "max_request_body_size = 110000000" in text  # waitress refuses huge bodies early
    assert "[logger_extrapypi]" in text
    secret = next(line for line in text.splitlines() if line.startswith("extrapypi.secret"))
    secret = secret.split("=", 1)[1].strip()
    parse_settings({"extrapypi.secret": secret})  # accepted by the app's own rules
    other = tmp_path / "other.ini"
    assert extrapypi(["new-config", str(other), "--base-dir", str(base)]) == 0
    assert secret not in other.read_text()


def test_new_config_refuses_to_overwrite(tmp_path, capsys):
    target = tmp_path / "prod.ini"
    target.write_text("precious\n")
    assert extrapypi(["new-config", str(target)]) == 1
    assert "already exists; not overwriting it" in capsys.readouterr().err
    assert target.read_text() == "precious\n"


def test_start_is_the_original_spelling_of_new_config(tmp_path):
    target = tmp_path / "config.ini"
    assert extrapypi(["start", "--filename", str(target), "--base-dir", str(tmp_path)]) == 0
    assert "extrapypi.secret" in target.read_text()
    assert extrapypi(["start", "--filename", str(target)]) == 1
    assert extrapypi(["start"]) == 2


@pytest.mark.e2e
def test_new_config_then_init_then_serve(tmp_path):
    """The generated file is really production-ready: migrate it, add a user, serve it."""
    port = free_port()
    ini = tmp_path / "production.ini"
    script = venv_tool("extrapypi")
    run = dict(capture_output=True, text=True, check=False, timeout=120)
    result = subprocess.run(
        [script, "new-config", str(ini), "--base-dir", str(tmp_path / "var"), "--port", str(port)],
        **run,
    )
    assert result.returncode == 0, result.stderr
    result = subprocess.run([script, "init", str(ini), "--no-default-users"], **run)
    assert result.returncode == 0, result.stderr
    result = subprocess.run(
        [script, "user", "add", str(ini), "ops", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
        **run,
    )
    assert result.returncode == 0, result.stderr
    server = start_server(str(ini), port, tmp_path / "pserve.log")
    try:
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(server.url + "/simple/", timeout=10)
        assert refused.value.code == 401
        request = urllib.request.Request(server.url + "/", headers=basic_auth("ops"))
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            assert "ops · admin" in response.read().decode()
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
    assert " GET /simple/ 401 " in server.log()  # the request log is on in the generated file


# --- init ------------------------------------------------------------------------------------


def test_init_is_initialize_db(ini_file, engine, clean, capsys):
    assert extrapypi(["init", ini_file, "--admin-password", "s3cret-admin"]) == 0
    assert "created users admin (admin), pip (installer)" in capsys.readouterr().out
    assert _users(engine) == {"admin": ("admin", True), "pip": ("installer", True)}
    assert check_password("s3cret-admin", _password_hash(engine, "admin"))


def test_init_reads_the_config_from_the_environment(ini_file, engine, clean, monkeypatch):
    monkeypatch.setenv("EXTRAPYPI_CONFIG", ini_file)
    assert extrapypi(["init", "--no-default-users"]) == 0
    monkeypatch.delenv("EXTRAPYPI_CONFIG")
    assert extrapypi(["init"]) == 2


# --- user ------------------------------------------------------------------------------------


def test_user_add_from_stdin_then_list(ini_file, engine, data, stdin, capsys):
    stdin("s3cret-dev-pass\n")
    args = ["user", "add", ini_file, "dev", "--role", "developer", "--email", "d@example.com"]
    assert extrapypi([*args, "--password-stdin"]) == 0
    assert "Created user 'dev' (developer)" in capsys.readouterr().out
    assert _users(engine) == {"dev": ("developer", True)}
    assert check_password("s3cret-dev-pass", _password_hash(engine, "dev"))
    assert extrapypi(["user", "list", ini_file]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["USERNAME", "ROLE", "ACTIVE", "EMAIL", "LAST", "LOGIN"]
    assert lines[1].split() == ["dev", "developer", "yes", "d@example.com", "never"]


def test_user_add_refuses_bad_input(ini_file, engine, data, stdin, capsys):
    data.user("taken")
    stdin("whatever\n")
    assert extrapypi(["user", "add", ini_file, "x", "--role", "boss", "--password-stdin"]) == 2
    assert "invalid choice: 'boss'" in capsys.readouterr().err
    stdin("whatever\n")
    assert extrapypi(["user", "add", ini_file, "taken", "--password-stdin"]) == 1
    assert "A user named 'taken' already exists." in capsys.readouterr().err
    stdin("\n")
    assert extrapypi(["user", "add", ini_file, "empty", "--password-stdin"]) == 1
    assert "no password on standard input" in capsys.readouterr().err
    stdin("ab\n")
    assert extrapypi(["user", "add", ini_file, "short", "--password-stdin"]) == 1
    assert "at least 12 characters" in capsys.readouterr().err
    stdin("Qwerty123456\n")  # in the common list, whatever the case
    assert extrapypi(["user", "add", ini_file, "common", "--password-stdin"]) == 1
    assert "10,000 most common" in capsys.readouterr().err
    stdin("whatever\n")
    assert extrapypi(["user", "add", ini_file, "bad:name", "--password-stdin"]) == 1
    assert "may not contain" in capsys.readouterr().err
    assert set(_users(engine)) == {"taken"}


def test_user_add_inactive_cannot_log_in_until_activated(ini_file, engine, data, stdin, testapp):
    stdin("s3cret-later\n")
    assert extrapypi(["user", "add", ini_file, "later", "--inactive", "--password-stdin"]) == 0
    assert _users(engine) == {"later": ("installer", False)}
    testapp.get("/", headers=basic_auth("later", "s3cret-later"), status=401)
    assert extrapypi(["user", "activate", ini_file, "later"]) == 0
    testapp.get("/", headers=basic_auth("later", "s3cret-later"), status=200)


def test_user_add_without_a_terminal_or_stdin_flag_is_refused(ini_file, data, stdin, capsys):
    stdin("piped but not announced\n")
    assert extrapypi(["user", "add", ini_file, "someone"]) == 2
    assert "no terminal to ask for the password: pass it with --password-stdin" in (
        capsys.readouterr().err
    )


def test_password_is_never_taken_from_argv(capsys):
    assert extrapypi(["user", "add", "x.ini", "bob", "--password", "hunter2"]) == 2
    assert "unrecognized arguments: --password" in capsys.readouterr().err


def test_set_role_and_unknown_user(ini_file, engine, data, capsys):
    data.user("root", role="admin")
    data.user("bob")
    assert extrapypi(["user", "set-role", ini_file, "bob", "maintainer"]) == 0
    assert "'bob' is now maintainer" in capsys.readouterr().out
    assert _users(engine)["bob"] == ("maintainer", True)
    assert extrapypi(["user", "set-role", ini_file, "bob", "overlord"]) == 2
    assert extrapypi(["user", "set-role", ini_file, "ghost", "admin"]) == 1
    assert "no user named 'ghost'" in capsys.readouterr().err
    for command in ("activate", "deactivate", "delete", "set-password"):
        assert extrapypi(["user", command, ini_file, "ghost"]) == 1
        assert "no user named 'ghost'" in capsys.readouterr().err


def test_set_password(ini_file, engine, data, stdin, testapp):
    data.user("bob")
    stdin("new-password\n")
    assert extrapypi(["user", "set-password", ini_file, "bob", "--password-stdin"]) == 0
    assert check_password("new-password", _password_hash(engine, "bob"))
    testapp.get("/", headers=basic_auth("bob", "new-password"), status=200)
    testapp.get("/", headers=basic_auth("bob"), status=401)


def test_deactivate_activate_delete(ini_file, engine, data, testapp, capsys):
    data.user("root", role="admin")
    data.user("bob")
    assert extrapypi(["user", "deactivate", ini_file, "bob"]) == 0
    assert _users(engine)["bob"] == ("installer", False)
    testapp.get("/", headers=basic_auth("bob"), status=401)
    assert extrapypi(["user", "activate", ini_file, "bob"]) == 0
    assert _users(engine)["bob"] == ("installer", True)
    testapp.get("/", headers=basic_auth("bob"), status=200)
    assert extrapypi(["user", "delete", ini_file, "bob"]) == 0
    assert "Deleted user 'bob'" in capsys.readouterr().out
    assert set(_users(engine)) == {"root"}


def test_the_last_active_admin_is_protected(ini_file, engine, data, capsys):
    data.user("root", role="admin")
    data.user("former", role="admin", active=False)
    for command in (
        ["user", "delete", ini_file, "root"],
        ["user", "deactivate", ini_file, "root"],
        ["user", "set-role", ini_file, "root", "developer"],
    ):
        assert extrapypi(command) == 1
        assert "'root' is the last active admin" in capsys.readouterr().err
    assert _users(engine)["root"] == ("admin", True)
    # With a second active admin, the first may go.
    assert extrapypi(["user", "activate", ini_file, "former"]) == 0
    assert extrapypi(["user", "set-role", ini_file, "root", "developer"]) == 0
    assert extrapypi(["user", "delete", ini_file, "former"]) == 1  # now the last one
    assert _users(engine) == {"root": ("developer", True), "former": ("admin", True)}


def test_create_user_is_the_original_spelling_of_user_add(
    ini_file, engine, data, stdin, monkeypatch, capsys
):
    stdin("s3cret-alice-pw\n")
    command = ["create-user", "alice", "alice@example.com", "--role", "maintainer"]
    assert extrapypi([*command, "--config", ini_file, "--password-stdin"]) == 0
    monkeypatch.setenv("EXTRAPYPI_CONFIG", ini_file)
    stdin("s3cret-carol-pw\n")
    assert extrapypi(["create-user", "carol", "c@example.com", "--password-stdin"]) == 0
    assert _users(engine) == {"alice": ("maintainer", True), "carol": ("installer", True)}
    assert extrapypi(["create-user", "dave", "d@example.com", "--role", "king"]) == 2


def test_password_prompt_asks_twice_on_a_terminal(ini_file, engine, data):
    """The real getpass prompt, through a pseudo-terminal, as a person would type it."""

    def run(*answers: str) -> tuple[int, str]:
        pid, fd = pty.fork()
        if pid == 0:  # the child: the installed console script on a terminal
            script = venv_tool("extrapypi")
            os.execv(script, [script, "user", "add", ini_file, "tty-user", "--role", "developer"])
        output, given = b"", 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not select.select([fd], [], [], 1)[0]:
                continue
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                break  # the child closed the terminal
            if not chunk:
                break
            output += chunk
            # Answer each prompt once it is fully written (getpass turned echo off before it).
            if (
                given < len(answers)
                and output.count(b"Password") > given
                and output.endswith(b": ")
            ):
                os.write(fd, answers[given].encode() + b"\n")
                given += 1
        else:
            os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        return os.waitstatus_to_exitcode(status), output.decode(errors="replace")

    code, output = run("typed-one-long", "typed-two-long")
    assert code == 1, output
    assert "the two passwords differ; nothing changed" in output
    assert "tty-user" not in _users(engine)
    code, output = run("typed-pass-long", "typed-pass-long")
    assert code == 0, output
    assert "typed-pass-long" not in output  # never echoed
    assert check_password("typed-pass-long", _password_hash(engine, "tty-user"))


# --- the console script ----------------------------------------------------------------------


def test_console_script_exit_codes(ini_file, engine, data):
    script = venv_tool("extrapypi")
    run = dict(capture_output=True, text=True, check=False, timeout=120)
    result = subprocess.run(
        [script, "user", "add", ini_file, "piped", "--role", "admin", "--password-stdin"],
        input="s3cret-piped\n",
        **run,
    )
    assert result.returncode == 0, result.stderr
    assert _users(engine) == {"piped": ("admin", True)}
    result = subprocess.run([script, "user", "delete", ini_file, "piped"], **run)
    assert result.returncode == 1
    assert "last active admin" in result.stderr
    result = subprocess.run([script, "user", "set-role", ini_file, "piped", "emperor"], **run)
    assert result.returncode == 2
    assert "invalid choice: 'emperor'" in result.stderr
    result = subprocess.run([script, "--help"], **run)
    assert result.returncode == 0
    assert "usage: extrapypi" in result.stdout


# --- import ----------------------------------------------------------------------------------


def test_import_subcommand_imports_then_skips(ini_file, data, engine, tmp_path, capsys):
    from dists import sdist_bytes, wheel_bytes, write

    data.user("ops", "developer")
    write(tmp_path, wheel_bytes("Imported.Pkg", "1.0", summary="From a dump"))
    write(tmp_path, sdist_bytes("Imported.Pkg", "1.0"))
    (tmp_path / "notes.txt").write_text("not a distribution")
    assert extrapypi(["import", ini_file, str(tmp_path), "--user", "ops"]) == 1
    captured = capsys.readouterr()
    assert "2 imported, 0 skipped (already there), 1 refused" in captured.out
    assert "notes.txt" in captured.err
    with engine.connect() as connection:
        files = connection.execute(sa.text("SELECT filename FROM files ORDER BY filename")).all()
        maintainers = connection.execute(
            sa.text("SELECT u.username FROM package_maintainers m JOIN users u ON u.id = m.user_id")
        ).all()
    assert [f for (f,) in files] == ["imported_pkg-1.0-py3-none-any.whl", "imported_pkg-1.0.tar.gz"]
    assert maintainers == [("ops",)]
    (tmp_path / "notes.txt").unlink()
    assert extrapypi(["import", ini_file, str(tmp_path), "--quiet"]) == 0
    assert "0 imported, 2 skipped (already there), 0 refused" in capsys.readouterr().out


def test_import_subcommand_refuses_a_missing_directory(ini_file, clean, tmp_path, capsys):
    assert extrapypi(["import", ini_file, str(tmp_path / "nope")]) == 1
    assert "no such directory" in capsys.readouterr().err
