"""The built wheel carries its migrations: pip install + initialize_db, no checkout."""

import os
import sqlite3
import subprocess
import sys
import zipfile

import pytest
from conftest import venv_tool

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--sdist", "--outdir", str(out), ROOT],
        check=True,
        capture_output=True,
        text=True,
    )
    wheel = next(out.glob("extrapypi-*.whl")), next(out.glob("extrapypi-*.tar.gz"))
    return wheel, result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(built):
    return built[0]


def _files_under(directory: str, prefix: str) -> set[str]:
    found = set()
    for current, dirs, files in os.walk(os.path.join(ROOT, directory)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            relative = os.path.relpath(os.path.join(current, name), os.path.join(ROOT, directory))
            found.add(f"{prefix}/{relative}")
    return found


@pytest.mark.e2e
def test_build_declares_every_package_and_ships_all_data(built):
    """No setuptools 'absent from the packages configuration' warning (one per data directory,
    ~150 lines on every `make run`), and every template, static file, migration and the
    common-password list is in the wheel."""
    (whl, _sdist), output = built
    assert "absent from the `packages` configuration" not in output, output[-3000:]
    names = set(zipfile.ZipFile(whl).namelist())
    wanted = (
        _files_under("src/extrapypi/templates", "extrapypi/templates")
        | _files_under("src/extrapypi/static", "extrapypi/static")
        | _files_under("src/extrapypi/data", "extrapypi/data")
        | {
            path
            for path in _files_under("alembic", "extrapypi/migrations")
            if path.endswith((".py", ".mako"))
        }
    )
    assert len(wanted) >= 15
    assert sorted(wanted - names) == []


@pytest.mark.e2e
def test_wheel_and_sdist_contents(wheel):
    whl, sdist = wheel
    names = set(zipfile.ZipFile(whl).namelist())
    assert "extrapypi/migrations/env.py" in names
    assert "extrapypi/migrations/script.py.mako" in names
    assert "extrapypi/migrations/versions/0001_initial_schema.py" in names
    assert "extrapypi/templates/base.jinja2" in names
    assert "extrapypi/static/style.css" in names
    import tarfile

    with tarfile.open(sdist) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
    for path in (
        "development.ini",
        "production.ini",
        "alembic/env.py",
        "MANIFEST.in",
        "src/extrapypi/templates/login.jinja2",
        "README.md",
    ):
        assert path in members, path


@pytest.mark.e2e
def test_installed_wheel_runs_migrations_and_serves(wheel, tmp_path):
    whl, _ = wheel
    venv = tmp_path / "venv"
    subprocess.run(
        [venv_tool("uv"), "venv", "-q", "--python", sys.executable, str(venv)], check=True
    )
    subprocess.run(
        [
            venv_tool("uv"),
            "pip",
            "install",
            "-q",
            "--python",
            str(venv / "bin" / "python"),
            str(whl),
        ],
        check=True,
    )
    ini = tmp_path / "site.ini"
    ini.write_text(
        "[app:main]\nuse = egg:extrapypi\n"
        f"sqlalchemy.url = sqlite:///{tmp_path}/db.sqlite\n"
        "extrapypi.secret = a-real-secret-for-this-test-1234567\n"
        f"extrapypi.storage.path = {tmp_path}/packages\n"
        "[alembic]\nscript_location = extrapypi:migrations\n"
    )
    result = subprocess.run(
        [str(venv / "bin" / "initialize_db"), str(ini)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        users = dict(db.execute("SELECT username, role FROM users"))
    assert {"users", "packages", "releases", "files", "alembic_version"} <= tables
    assert users == {"admin": "admin", "pip": "installer"}
    ping = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from pyramid.paster import get_app; from pyramid.request import Request; "
            f"print(Request.blank('/ping').get_response(get_app({str(ini)!r})).text)",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert ping.stdout.strip() == "pong", ping.stderr
