"""Real pip and uv against a real ``pserve``: only the local index is ever consulted."""

import json
import os
import subprocess
import sys

import pytest
from conftest import venv_tool

from extrapypi.permissions import Role

pytestmark = pytest.mark.e2e


def client_env(tmp_path) -> dict:
    """No user config, no cache, no PyPI fallback: what pip and uv see is this index only."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_")) and k not in ("NETRC",)
    }
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_CACHE_DIR="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_KEYRING_PROVIDER="disabled",
        UV_CACHE_DIR=str(tmp_path / "uv-cache"),
        UV_NO_CONFIG="1",
        UV_KEYRING_PROVIDER="disabled",
        HOME=str(tmp_path),
    )
    return env


def run(args, tmp_path, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        args, env=client_env(tmp_path), capture_output=True, text=True, timeout=180
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def pip(tmp_path, *args, check=True):
    return run([sys.executable, "-m", "pip", *args], tmp_path, check=check)


def downloaded(directory) -> set[str]:
    return {p.name for p in directory.iterdir()} if directory.exists() else set()


@pytest.fixture
def world(data):
    data.user("reader", Role.INSTALLER)
    data.release_file("corp-lib", "1.0")
    data.release_file("corp-lib", "1.1")
    data.release_file("corp-lib", "1.0", kind="sdist")
    data.release_file("Corp_App", "1.0", requires_dist=("corp-lib>=1.1",))
    data.release_file("Corp_App", "2.0", requires_python=">=99")
    data.release_file("corp-yank", "1.0")
    data.release_file("corp-yank", "2.0")
    data.user("admin", Role.ADMIN)
    return data


def yank(testapp, auth, name, version, reason="broken"):
    testapp.post(f"/packages/{name}/{version}/yank", {"reason": reason}, headers=auth("admin"))


def test_pip_download_resolves_private_dependency_and_requires_python(world, live_server, tmp_path):
    out = tmp_path / "out"
    pip(
        tmp_path,
        "download",
        "-d",
        str(out),
        "--index-url",
        live_server.index_url("reader"),
        "corp-app",
    )
    # 2.0 requires Python >= 99: skipped; the dependency comes from this index too
    assert downloaded(out) == {"corp_app-1.0-py3-none-any.whl", "corp_lib-1.1-py3-none-any.whl"}


def test_pip_install_and_import(world, live_server, tmp_path):
    target = tmp_path / "target"
    pip(
        tmp_path,
        "install",
        "--target",
        str(target),
        "--index-url",
        live_server.index_url("reader"),
        "Corp.App",
    )
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import corp_app, corp_lib; print(corp_app.__version__, corp_lib.__version__)",
        ],
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout.split() == ["1.0", "1.1"]


def test_pip_skips_yanked_unless_pinned(world, live_server, tmp_path, testapp, auth):
    yank(testapp, auth, "corp-yank", "2.0")
    out = tmp_path / "latest"
    pip(
        tmp_path,
        "download",
        "--no-deps",
        "-d",
        str(out),
        "--index-url",
        live_server.index_url("reader"),
        "corp-yank",
    )
    assert downloaded(out) == {"corp_yank-1.0-py3-none-any.whl"}
    pinned = tmp_path / "pinned"
    result = pip(
        tmp_path,
        "download",
        "--no-deps",
        "-d",
        str(pinned),
        "--index-url",
        live_server.index_url("reader"),
        "corp-yank==2.0",
    )
    assert downloaded(pinned) == {"corp_yank-2.0-py3-none-any.whl"}
    assert "yanked" in (result.stdout + result.stderr).lower()
    assert "broken" in result.stdout + result.stderr


def test_pip_resolves_from_metadata_files_alone(world, live_server, tmp_path, app):
    """PEP 658: with the wheels gone from storage, pip still resolves from ``.metadata``."""
    storage = app.registry["extrapypi.storage"]
    storage.delete("corp-app/corp_app-1.0-py3-none-any.whl")
    storage.delete("corp-lib/corp_lib-1.1-py3-none-any.whl")
    report = tmp_path / "report.json"
    pip(
        tmp_path,
        "install",
        "--dry-run",
        "--ignore-installed",
        "--report",
        str(report),
        "--index-url",
        live_server.index_url("reader"),
        "corp-app",
    )
    installs = json.loads(report.read_text())["install"]
    resolved = {item["metadata"]["name"]: item["metadata"]["version"] for item in installs}
    assert resolved == {"Corp_App": "1.0", "corp-lib": "1.1"}
    assert all(item["download_info"]["url"].startswith(live_server.url) for item in installs)


def test_pip_refused_without_credentials(world, live_server, tmp_path):
    result = pip(
        tmp_path,
        "download",
        "--no-deps",
        "-d",
        str(tmp_path / "o"),
        "--index-url",
        live_server.index_url(),
        "corp-lib",
        check=False,
    )
    assert result.returncode != 0
    assert not downloaded(tmp_path / "o")


@pytest.fixture
def uv_venv(tmp_path):
    venv = tmp_path / "venv"
    run([venv_tool("uv"), "venv", "-q", "--python", sys.executable, str(venv)], tmp_path)
    return venv / "bin" / "python"


def uv_install(tmp_path, python, index_url, *requirements, check=True):
    return run(
        [
            venv_tool("uv"),
            "pip",
            "install",
            "-v",
            "--python",
            str(python),
            "--index-url",
            index_url,
            *requirements,
        ],
        tmp_path,
        check=check,
    )


def installed(tmp_path, python) -> dict[str, str]:
    result = run(
        [venv_tool("uv"), "pip", "list", "--format", "json", "--python", str(python)], tmp_path
    )
    return {p["name"]: p["version"] for p in json.loads(result.stdout)}


def test_uv_installs_with_dependency_and_requires_python(world, live_server, tmp_path, uv_venv):
    result = uv_install(tmp_path, uv_venv, live_server.index_url("reader"), "corp-app")
    assert installed(tmp_path, uv_venv) == {"corp-app": "1.0", "corp-lib": "1.1"}
    # uv read the PEP 658 metadata instead of downloading wheels to resolve
    assert ".whl.metadata" in result.stderr


def test_uv_skips_yanked_unless_pinned(world, live_server, tmp_path, uv_venv, testapp, auth):
    yank(testapp, auth, "corp-yank", "2.0")
    uv_install(tmp_path, uv_venv, live_server.index_url("reader"), "corp-yank")
    assert installed(tmp_path, uv_venv)["corp-yank"] == "1.0"
    uv_install(tmp_path, uv_venv, live_server.index_url("reader"), "corp-yank==2.0")
    assert installed(tmp_path, uv_venv)["corp-yank"] == "2.0"


def test_uv_sees_a_new_upload_at_once(world, live_server, tmp_path, uv_venv):
    uv_install(tmp_path, uv_venv, live_server.index_url("reader"), "corp-lib")
    assert installed(tmp_path, uv_venv)["corp-lib"] == "1.1"
    world.release_file("corp-lib", "1.2")
    uv_install(tmp_path, uv_venv, live_server.index_url("reader"), "--refresh", "-U", "corp-lib")
    assert installed(tmp_path, uv_venv)["corp-lib"] == "1.2"


def fetch(url: str, headers: dict) -> tuple:
    import urllib.request

    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.headers, response.read()


def test_waitress_streams_large_files_exactly(data, live_server, app, auth):
    """Through the real server's file wrapper: whole file, ranges, 304 - the bytes on disk."""
    import hashlib

    data.user("reader")
    stored = data.release_file("big", "1.0")
    storage = app.registry["extrapypi.storage"]
    path = storage.path("big/" + stored["filename"])
    content = os.urandom(3 * 1024 * 1024 + 123) * 4  # past several 4 MiB slices
    with open(path, "wb") as out:
        out.write(content)
    url = f"{live_server.url}/packages/big/1.0/{stored['filename']}"
    status, headers, body = fetch(url, auth("reader"))
    assert status == 200 and len(body) == len(content)
    assert hashlib.sha256(body).digest() == hashlib.sha256(content).digest()
    assert headers["Content-Type"] == "application/octet-stream"
    etag = headers["ETag"]
    status, headers, body = fetch(url, {**auth("reader"), "Range": "bytes=5000000-5000099"})
    assert status == 206 and body == content[5_000_000:5_000_100]
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as error:
        fetch(url, {**auth("reader"), "If-None-Match": etag})
    assert error.value.code == 304
