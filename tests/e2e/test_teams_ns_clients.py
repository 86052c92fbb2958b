"""Real twine, pip and uv against a real ``pserve`` speaking simple API 1.4 (HTML) / 1.5 (JSON):
namespace conflicts and status refusals read in twine's output, installs unaffected."""

import pytest
import sqlalchemy as sa
from dists import wheel_bytes, write
from test_pip_uv import installed, pip, uv_install, uv_venv  # noqa: F401 (fixture)
from test_twine import output, twine

from extrapypi.models import Package
from extrapypi.permissions import Role
from extrapypi.services import namespaces as ns
from extrapypi.services import status as status_service
from extrapypi.services import teams
from extrapypi.services.accounts import get_user
from extrapypi.services.packages import get_package

pytestmark = pytest.mark.e2e


@pytest.fixture
def world(data):
    data.user("plat", Role.DEVELOPER)
    data.user("mallory", Role.DEVELOPER)
    data.user("reader", Role.INSTALLER)
    tm, dbsession = data.session()
    with tm:
        team = teams.create_team(dbsession, "platform", None)
        teams.add_member(dbsession, team, get_user(dbsession, "plat"), None)
        ns.grant(dbsession, "acme", team, None)
    return data


def set_status(data, name, status, reason=""):
    tm, dbsession = data.session()
    with tm:
        package = get_package(dbsession, name)
        status_service.set_status(dbsession, package, status, reason, None, may_quarantine=True)


def test_twine_shows_the_409_naming_namespace_and_owner(live_server, world, tmp_path, engine):
    wheel = write(tmp_path, wheel_bytes("acme-payments", "1.0"))
    result = twine(live_server, tmp_path, "mallory", wheel)
    assert result.returncode == 1
    text = output(result)
    assert "HTTPError: 409 Conflict from" in text
    assert (
        "Conflict: the name 'acme-payments' is in the namespace 'acme' reserved for "
        "team:platform; user 'mallory' may not create it"
    ) in text
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(Package)).scalar() == 0
    # a member of the owning team creates it
    result = twine(live_server, tmp_path, "plat", wheel)
    assert result.returncode == 0, output(result)


def test_twine_shows_why_an_archived_project_refuses(live_server, world, tmp_path):
    world.release_file("acme-old", "1.0", uploader="plat")
    set_status(world, "acme-old", "archived", "superseded by acme-new")
    result = twine(live_server, tmp_path, "plat", write(tmp_path, wheel_bytes("acme-old", "2.0")))
    assert result.returncode == 1
    assert (
        "Upload refused: project 'acme-old' is archived (superseded by acme-new) and accepts "
        "no new files"
    ) in output(result)


@pytest.fixture
def index(world):
    world.release_file("acme-lib", "1.0", uploader="plat")
    world.release_file("acme-lib", "1.1", uploader="plat")
    world.release_file("old-lib", "1.0")
    world.release_file("bad-lib", "1.0")
    set_status(world, "acme-lib", "deprecated", "use acme-lib2")
    set_status(world, "old-lib", "archived", "done")
    set_status(world, "bad-lib", "quarantined", "malware")
    return world


def test_pip_installs_deprecated_and_archived_but_never_quarantined(index, live_server, tmp_path):
    url = live_server.index_url("reader")
    target = tmp_path / "target"
    result = pip(
        tmp_path, "install", "--target", str(target), "--index-url", url, "acme-lib", "old-lib"
    )
    assert "Successfully installed acme-lib-1.1 old-lib-1.0" in result.stdout
    assert "version" not in result.stderr.lower()  # no complaint about the 1.4/1.5 API
    result = pip(
        tmp_path, "download", "-d", str(tmp_path / "d"), "--index-url", url, "bad-lib", check=False
    )
    assert result.returncode != 0
    assert "No matching distribution found for bad-lib" in result.stderr


def test_uv_installs_deprecated_and_archived_but_never_quarantined(
    index,
    live_server,
    tmp_path,
    uv_venv,  # noqa: F811 (the fixture imported above)
):
    url = live_server.index_url("reader")
    result = uv_install(tmp_path, uv_venv, url, "acme-lib", "old-lib")
    assert "warning" not in result.stderr.lower()
    assert installed(tmp_path, uv_venv) == {"acme-lib": "1.1", "old-lib": "1.0"}
    result = uv_install(tmp_path, uv_venv, url, "bad-lib", check=False)
    assert result.returncode != 0
    assert "bad-lib" in result.stderr and "no version" in result.stderr.lower()
