"""API tokens with the real clients against a real ``pserve``: twine ``-u __token__``,
``uv publish --token``, pip and ``uv pip install`` reading with a read token."""

import pytest
import sqlalchemy as sa
from conftest import SECRET, venv_tool
from dists import wheel_bytes, write
from test_pip_uv import installed, pip, uv_install, uv_venv, world  # noqa: F401 (fixtures)
from test_pip_uv import run as run_client
from test_twine import TIMEOUT, client_env, output

from extrapypi.models import File
from extrapypi.permissions import Role
from extrapypi.services import tokens as token_service
from extrapypi.services.accounts import get_user

pytestmark = pytest.mark.e2e


def make_token(data, username, name="ci", scope="upload", projects=(), expires_days=None):
    tm, dbsession = data.session()
    with tm:
        user = get_user(dbsession, username)
        _row, token = token_service.create_token(
            dbsession, SECRET, user, name, scope, list(projects), expires_days
        )
    return token


def twine_token(live_server, home, token, *files):
    import subprocess

    command = [
        venv_tool("twine"),
        "--no-color",
        "upload",
        "--repository-url",
        live_server.url + "/legacy/",
        "-u",
        "__token__",
        "-p",
        token,
        "--non-interactive",
        "--disable-progress-bar",
        *map(str, files),
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT, env=client_env(home)
    )


def uv_publish(live_server, home, token, *files):
    return run_client(
        [
            venv_tool("uv"),
            "publish",
            "--publish-url",
            live_server.url + "/legacy/",
            "--token",
            token,
            *map(str, files),
        ],
        home,
        check=False,
    )


def token_index(live_server, token) -> str:
    return live_server.index_url("__token__", token)


@pytest.fixture
def dev(data):
    data.user("dev", Role.DEVELOPER)
    data.release_file("tok-a", "1.0", uploader="dev")
    data.release_file("tok-b", "1.0", uploader="dev")


def test_twine_uploads_with_a_token_and_sees_each_refusal(live_server, dev, data, tmp_path, engine):
    out = tmp_path / "dist"
    out.mkdir()
    wheel_a = write(out, wheel_bytes("tok-a", "2.0"))
    wheel_b = write(out, wheel_bytes("tok-b", "2.0"))
    token = make_token(data, "dev", name="ci-release", projects=["tok-a"])
    ok = twine_token(live_server, tmp_path, token, wheel_a)
    assert ok.returncode == 0, output(ok)
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(File.upload_token).where(File.filename == wheel_a.name)
        ).scalar()
    assert row == "ci-release"
    other = twine_token(live_server, tmp_path, token, wheel_b)
    assert other.returncode == 1
    assert "403 Forbidden from" in output(other)
    assert "Forbidden: token 'ci-release' is limited to tok-a, not 'tok-b'" in output(other)
    read = make_token(data, "dev", name="reader", scope="read")
    wrong_scope = twine_token(live_server, tmp_path, read, wheel_b)
    assert "has the 'read' scope" in output(wrong_scope)
    expired = make_token(data, "dev", name="old", expires_days=1)
    tm, dbsession = data.session()
    with tm:
        from extrapypi.models.meta import utcnow
        from extrapypi.services.tokens import find_token

        find_token(dbsession, expired).expires = utcnow()
    refused = twine_token(live_server, tmp_path, expired, wheel_b)
    assert refused.returncode == 1
    assert "API token 'old'" in output(refused) and "has expired" in output(refused)
    unknown = twine_token(live_server, tmp_path, token[:-3] + "zzz", wheel_b)
    assert "unknown API token" in output(unknown)


def test_uv_publish_with_a_token(live_server, dev, data, tmp_path, engine):
    out = tmp_path / "dist"
    out.mkdir()
    wheel = write(out, wheel_bytes("tok-new", "1.0"))
    token = make_token(data, "dev", name="uv")
    result = uv_publish(live_server, tmp_path, token, wheel)
    assert result.returncode == 0, result.stderr
    with engine.connect() as connection:
        assert (
            connection.execute(
                sa.select(File.upload_token).where(File.filename == wheel.name)
            ).scalar()
            == "uv"
        )
    revoked = make_token(data, "dev", name="gone")
    tm, dbsession = data.session()
    with tm:
        from extrapypi.services.tokens import find_token, revoke_token

        revoke_token(dbsession, find_token(dbsession, revoked))
    again = uv_publish(live_server, tmp_path, revoked, write(out, wheel_bytes("tok-new", "2.0")))
    assert again.returncode != 0
    assert "is revoked" in again.stderr, again.stderr


def test_pip_and_uv_install_with_a_read_token(world, live_server, tmp_path, uv_venv):  # noqa: F811
    token = make_token(world, "reader", name="pip", scope="read")
    target = tmp_path / "target"
    pip(
        tmp_path,
        "install",
        "--target",
        str(target),
        "--index-url",
        token_index(live_server, token),
        "corp-app",
    )
    assert (target / "corp_app").is_dir() or any(target.glob("corp_app*"))
    uv_install(tmp_path, uv_venv, token_index(live_server, token), "corp-app")
    assert installed(tmp_path, uv_venv) == {"corp-app": "1.0", "corp-lib": "1.1"}
    refused = pip(
        tmp_path,
        "download",
        "-d",
        str(tmp_path / "x"),
        "--index-url",
        token_index(live_server, token[:-3] + "zzz"),
        "corp-lib",
        check=False,
    )
    assert refused.returncode != 0
    assert "401" in refused.stdout + refused.stderr
