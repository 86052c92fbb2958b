"""Real twine against a real ``pserve``, then real pip and uv installing what it uploaded."""

import hashlib
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import sqlalchemy as sa
from conftest import IN_CI, PASSWORD, basic_auth, venv_tool
from dists import sdist_bytes, wheel_bytes, write

from extrapypi.models import File, Package, Release
from extrapypi.permissions import Role

pytestmark = pytest.mark.e2e
TIMEOUT = 180


def client_env(home) -> dict[str, str]:
    """The environment of a user with no config of their own: only the flags we pass count."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "TWINE_", "PYTHON_KEYRING"))
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        PIP_CONFIG_FILE=os.devnull,
        UV_NO_CONFIG="1",
        COLUMNS="1000",
        NO_COLOR="1",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )
    return env


def twine(live_server, home, username, *files, extra=(), path="/simple/"):
    command = [
        venv_tool("twine"),
        "--no-color",
        "upload",
        "--repository-url",
        live_server.url + path,
        "-u",
        username,
        "-p",
        PASSWORD,
        "--non-interactive",
        "--disable-progress-bar",
        *extra,
        *map(str, files),
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT, env=client_env(home)
    )


def output(result) -> str:
    """twine's output as one line of plain words (rich wraps and colours it)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    return " ".join(text.split())


@pytest.fixture
def people(data):
    data.user("dev", Role.DEVELOPER)
    data.user("maint", Role.MAINTAINER)
    data.user("inst", Role.INSTALLER)
    data.user("other", Role.DEVELOPER)


@pytest.fixture
def dists(tmp_path):
    out = tmp_path / "dist"
    out.mkdir()
    wheel = write(out, wheel_bytes("e2e-demo", "1.0", summary="Demo", requires_python=">=3.8"))
    sdist = write(out, sdist_bytes("e2e-demo", "1.0", summary="Demo", requires_python=">=3.8"))
    return wheel, sdist


def stored(base_settings, normalized, filename) -> bytes:
    with open(
        os.path.join(base_settings["extrapypi.storage.path"], normalized, filename), "rb"
    ) as f:
        return f.read()


def test_twine_upload_is_stored_and_rerun_is_a_no_op(
    live_server, people, dists, tmp_path, engine, base_settings
):
    wheel, sdist = dists
    first = twine(live_server, tmp_path, "dev", wheel, sdist)
    assert first.returncode == 0, output(first)
    assert "Uploading e2e_demo-1.0-py3-none-any.whl" in output(first)
    for path in (wheel, sdist):
        assert stored(base_settings, "e2e-demo", path.name) == path.read_bytes()
    with engine.connect() as connection:
        assert connection.execute(sa.select(Package.name)).scalars().all() == ["e2e-demo"]
        release = connection.execute(sa.select(Release)).one()
        assert (release.version, release.summary, release.requires_python) == (
            "1.0",
            "Demo",
            ">=3.8",
        )
        files = {f.filename: f.sha256 for f in connection.execute(sa.select(File))}
    assert files == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in dists}

    again = twine(live_server, tmp_path, "dev", wheel, sdist)
    assert again.returncode == 0, output(again)
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(File)).scalar() == 2


def test_twine_upload_to_legacy_url(live_server, people, dists, tmp_path, engine):
    result = twine(live_server, tmp_path, "dev", dists[0], path="/legacy/")
    assert result.returncode == 0, output(result)
    with engine.connect() as connection:
        assert connection.execute(sa.select(File.filename)).scalar() == dists[0].name


def test_changed_file_under_existing_name_is_refused(live_server, people, dists, tmp_path):
    wheel, _ = dists
    assert twine(live_server, tmp_path, "dev", wheel).returncode == 0
    changed = tmp_path / "changed"
    changed.mkdir()
    other = write(changed, wheel_bytes("e2e-demo", "1.0", summary="Different content"))
    assert other.name == wheel.name
    result = twine(live_server, tmp_path, "dev", other)
    assert result.returncode == 1
    assert "HTTPError: 400 Bad Request from" in output(result)
    assert "/simple/ File already exists: 'e2e_demo-1.0-py3-none-any.whl'" in output(result)


def test_twine_7_refuses_skip_existing_for_a_private_index(live_server, people, dists, tmp_path):
    """twine 7 allows --skip-existing only against PyPI: our 200 no-op keeps re-runs green."""
    result = twine(live_server, tmp_path, "dev", dists[0], extra=["--skip-existing"])
    assert result.returncode == 1
    assert "--skip-existing" in output(result)
    assert "not supported" in output(result) or "Unsupported" in output(result)


def test_maintainer_cannot_upload_to_package_they_do_not_maintain(
    live_server, people, data, dists, tmp_path, engine
):
    data.package("e2e-demo", maintainers=("other",))
    result = twine(live_server, tmp_path, "maint", dists[0])
    assert result.returncode == 1
    assert "HTTPError: 403 Forbidden from" in output(result)
    reason = "Forbidden: user 'maint' (maintainer) may not upload to 'e2e-demo': not one of its"
    assert reason in output(result)
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(File)).scalar() == 0


def test_installer_cannot_upload(live_server, people, dists, tmp_path, engine):
    result = twine(live_server, tmp_path, "inst", dists[0])
    assert result.returncode == 1
    assert "HTTPError: 403 Forbidden from" in output(result)
    assert "Forbidden: user 'inst' (installer) may not create new packages" in output(result)
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(Package)).scalar() == 0


def test_wrong_password_is_reported_by_twine(live_server, people, dists, tmp_path):
    result = subprocess.run(
        [
            venv_tool("twine"),
            "upload",
            "--repository-url",
            live_server.url + "/simple/",
            "-u",
            "dev",
            "-p",
            "wrong",
            "--non-interactive",
            str(dists[0]),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=client_env(tmp_path),
    )
    assert result.returncode == 1
    assert "401" in output(result)


def _simple_index_serves(live_server, name: str) -> bool:
    request = urllib.request.Request(
        f"{live_server.url}/simple/{name}/", headers=basic_auth("inst")
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return name in response.read().decode() or True
    except urllib.error.HTTPError:
        return False


def fresh_venv(tmp_path, name):
    venv = tmp_path / name
    subprocess.run(
        [venv_tool("uv"), "venv", "-q", "--seed", "--python", sys.executable, str(venv)],
        check=True,
        timeout=TIMEOUT,
        env=client_env(tmp_path),
    )
    return venv / "bin" / "python"


def test_uploaded_package_installs_with_pip_and_uv(live_server, people, dists, tmp_path):
    wheel, sdist = dists
    assert twine(live_server, tmp_path, "dev", wheel, sdist).returncode == 0
    assert _simple_index_serves(live_server, "e2e-demo")
    index = live_server.index_url("inst")
    env = client_env(tmp_path)

    pip_python = fresh_venv(tmp_path, "pip-venv")
    result = subprocess.run(
        [str(pip_python), "-m", "pip", "install", "--isolated", "--no-cache-dir",
         "--index-url", index, "e2e-demo==1.0"],
        capture_output=True, text=True, timeout=TIMEOUT, env=env,
    )  # fmt: skip
    assert result.returncode == 0, output(result)
    check = [str(pip_python), "-c", "import e2e_demo; print(e2e_demo.__version__)"]
    assert subprocess.run(check, capture_output=True, text=True).stdout.strip() == "1.0"

    uv_python = fresh_venv(tmp_path, "uv-venv")
    result = subprocess.run(
        [venv_tool("uv"), "pip", "install", "--no-cache", "--python", str(uv_python),
         "--index-url", index, "e2e-demo==1.0"],
        capture_output=True, text=True, timeout=TIMEOUT, env=env,
    )  # fmt: skip
    assert result.returncode == 0, output(result)
    check[0] = str(uv_python)
    assert subprocess.run(check, capture_output=True, text=True).stdout.strip() == "1.0"


#: Real files from PyPI: distutils-era sdists (capitalised and dotted names, Metadata 1.0) and
#: current wheels with Metadata-Version 2.4. twine 7 itself refuses WebOb 1.0's PKG-INFO
#: (a Classifier in Metadata 1.0), so that one goes up the way ``setup.py upload`` sent it.
PYPI_SDISTS = ["WebOb==1.0", "zope.event==3.4.0"]
TWINE_REFUSES = "WebOb-1.0.tar.gz"
PYPI_WHEELS = ["packaging==25.0", "attrs==25.3.0"]


def distutils_upload(live_server, username, path):
    """POST an sdist as distutils' ``upload`` did: md5 only, PKG-INFO fields, no pyversion."""
    import email
    import tarfile

    import requests

    with tarfile.open(path) as archive:
        member = next(m for m in archive if m.name.endswith("/PKG-INFO") and m.name.count("/") == 1)
        pkg_info = email.message_from_bytes(archive.extractfile(member).read())
    content = path.read_bytes()
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": pkg_info["Metadata-Version"],
        "name": pkg_info["Name"],
        "version": pkg_info["Version"],
        "summary": pkg_info["Summary"],
        "home_page": pkg_info["Home-page"],
        "author": pkg_info["Author"],
        "license": pkg_info["License"],
        "filetype": "sdist",
        "pyversion": "",
        "md5_digest": hashlib.md5(content).hexdigest(),
        "classifiers": pkg_info.get_all("Classifier") or [],
    }
    response = requests.post(
        live_server.url + "/legacy/",
        data=fields,
        files={"content": (path.name, content)},
        auth=(username, PASSWORD),
        timeout=TIMEOUT,
    )
    response.status = response.status_code
    return response


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


def test_real_distributions_from_pypi_upload(live_server, people, tmp_path, engine, base_settings):
    if not _pypi_reachable():
        reason = "pypi.org is unreachable from this machine: cannot fetch real distributions"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    out = tmp_path / "pypi"
    env = client_env(tmp_path)
    del env["PIP_CONFIG_FILE"]  # pip download goes to PyPI here, on purpose
    download = [sys.executable, "-m", "pip", "download", "-q", "--isolated", "--no-deps",
                "-d", str(out)]  # fmt: skip
    for args in (["--no-binary", ":all:", *PYPI_SDISTS], ["--only-binary", ":all:", *PYPI_WHEELS]):
        result = subprocess.run(
            [*download, *args], capture_output=True, text=True, timeout=TIMEOUT, env=env
        )
        assert result.returncode == 0, output(result)
    files = sorted(out.iterdir())
    names = sorted(f.name for f in files)
    assert names == [
        "WebOb-1.0.tar.gz",
        "attrs-25.3.0-py3-none-any.whl",
        "packaging-25.0-py3-none-any.whl",
        "zope.event-3.4.0.tar.gz",
    ]
    result = twine(live_server, tmp_path, "dev", *[f for f in files if f.name != TWINE_REFUSES])
    assert result.returncode == 0, output(result)
    response = distutils_upload(live_server, "dev", out / TWINE_REFUSES)
    assert response.status == 200, response.reason
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(Package.normalized_name, File.filename, File.sha256, Release.metadata_version)
            .join(Release, File.release_id == Release.id)
            .join(Package, Release.package_id == Package.id)
        ).all()
    assert {(r[0], r[1]) for r in rows} == {
        ("webob", "WebOb-1.0.tar.gz"),
        ("zope-event", "zope.event-3.4.0.tar.gz"),
        ("packaging", "packaging-25.0-py3-none-any.whl"),
        ("attrs", "attrs-25.3.0-py3-none-any.whl"),
    }
    for normalized, filename, sha256, metadata_version in rows:
        assert hashlib.sha256(stored(base_settings, normalized, filename)).hexdigest() == sha256
        if filename.endswith(".whl"):
            assert metadata_version == "2.4"
            assert stored(base_settings, normalized, filename + ".metadata").startswith(
                b"Metadata-Version: 2.4"
            )
