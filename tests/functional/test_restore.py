"""``extrapypi export`` then ``extrapypi import`` of it on an empty database: the same index.

Every JSON page (``/simple/`` and ``/simple/<name>/`` as PEP 691 JSON, ``/pypi/<name>/json`` and
``/pypi/<name>/<version>/json``) is compared before and after, change serials aside; users come
back without passwords, maintainers, yanks and upload times as they were.
"""

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from conftest import _clear_database, _clear_storage
from packaging.utils import canonicalize_name
from test_cli import extrapypi, stdin  # noqa: F401 (a fixture)

from extrapypi.models import File, Release, User
from extrapypi.permissions import Role
from extrapypi.services.accounts import check_password, get_user
from extrapypi.services.packages import get_package, set_yanked
from extrapypi.services.restore import NO_PASSWORD

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
UPLOADED = datetime(2024, 2, 29, 12, 30, 15, tzinfo=UTC)


@pytest.fixture
def index(data):
    """Two packages with files, one without; yanks, maintainers, an old upload time."""
    data.user("boss", Role.ADMIN, email="boss@example.com")
    data.user("alice", Role.DEVELOPER, email="alice@example.com")
    data.user("bob", Role.MAINTAINER)
    data.user("gone", Role.INSTALLER, active=False)
    data.release_file(
        "Demo_Pkg", "1.0", uploader="alice", summary="First", requires_dist=("packaging>=24",)
    )
    data.release_file("Demo_Pkg", "1.0", kind="sdist", uploader="alice", summary="First")
    data.release_file("Demo_Pkg", "2.0", uploader="bob", summary="Second", requires_python=">=3.9")
    data.release_file("other", "0.1", summary="Other")
    data.package("empty-pkg", maintainers=("alice",))
    tm, dbsession = data.session()
    with tm:
        package = get_package(dbsession, "demo-pkg")
        package.maintainers.extend([get_user(dbsession, "alice"), get_user(dbsession, "bob")])
        release = next(r for r in package.releases if r.version == "2.0")
        set_yanked(dbsession, release, True, "broken build", None)
        for file in dbsession.scalars(sa.select(File)):
            if file.filename.endswith(".tar.gz"):
                file.upload_time = UPLOADED


def pages(testapp, auth) -> dict[str, object]:
    """Every JSON page of the index, without the change serial (a restore is new history)."""
    headers = {**auth("boss"), "Accept": SIMPLE_JSON}
    root = testapp.get("/simple/", headers=headers).json
    found = {"/simple/": root}
    for project in root["projects"]:
        name = canonicalize_name(project["name"])
        found[f"/simple/{name}/"] = testapp.get(f"/simple/{name}/", headers=headers).json
        answer = testapp.get(f"/pypi/{name}/json", headers=auth("boss"), expect_errors=True)
        if answer.status_int != 200:
            found[f"/pypi/{name}/json"] = [answer.status_int, answer.text]
            continue
        found[f"/pypi/{name}/json"] = [200, answer.json]
        for version in answer.json["releases"]:
            path = f"/pypi/{name}/{version}/json"
            found[path] = testapp.get(path, headers=auth("boss")).json
    text = json.dumps(found, sort_keys=True)
    for key in ('"_last-serial": ', '"last_serial": '):
        while key in text:  # drop the number after each serial key
            start = text.index(key) + len(key)
            end = start
            while text[end].isdigit():
                end += 1
            text = text[: start - len(key)] + '"serial": null' + text[end:]
    return json.loads(text)


def accounts(engine) -> dict[str, tuple]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(User.username, User.role, User.email, User.is_active))
        return {row[0]: tuple(row[1:]) for row in rows}


def maintainers(data) -> dict[str, list[str]]:
    tm, dbsession = data.session()
    with tm:
        return {
            name: [user.username for user in get_package(dbsession, name).maintainers]
            for name in ("demo-pkg", "other", "empty-pkg")
        }


def empty_everything(app, engine, base_settings) -> None:
    _clear_database(engine)
    _clear_storage(base_settings["extrapypi.storage.path"])
    app.registry["extrapypi.credential_cache"]._entries.clear()
    app.registry["extrapypi.login_cache"].clear()


def test_export_then_import_on_an_empty_database_restores_the_index(
    app,
    testapp,
    index,
    data,
    engine,
    base_settings,
    ini_file,
    tmp_path,
    auth,
    stdin,  # noqa: F811 (the fixture imported above)
    capsys,
):
    before = pages(testapp, auth)
    assert set(before) >= {"/simple/demo-pkg/", "/pypi/demo-pkg/json", "/pypi/demo-pkg/2.0/json"}
    assert before["/pypi/empty-pkg/json"][0] == 404  # no release: PyPI answers 404 too
    users_before, maintainers_before = accounts(engine), maintainers(data)
    export = tmp_path / "export"
    assert extrapypi(["export", ini_file, str(export)]) == 0
    capsys.readouterr()

    empty_everything(app, engine, base_settings)
    assert extrapypi(["import", ini_file, str(export)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "extrapypi import: 4 imported, 0 skipped (already there), 0 refused" in out
    assert "Users restored without passwords: alice, bob, boss, gone." in out
    assert "extrapypi user set-password" in out

    assert accounts(engine) == users_before
    assert maintainers(data) == maintainers_before
    with engine.connect() as connection:
        hashes = set(connection.execute(sa.select(User.password_hash)).scalars())
        yanked = connection.execute(
            sa.select(Release.version, Release.yanked_reason).where(Release.yanked)
        ).all()
        times = connection.execute(
            sa.select(File.upload_time).where(File.filename.like("%.tar.gz"))
        ).scalars()
        assert [t.replace(tzinfo=UTC) for t in times] == [UPLOADED]
    assert hashes == {NO_PASSWORD}
    assert yanked == [("2.0", "broken build")]
    testapp.get("/simple/", headers=auth("boss"), status=401)  # no password until one is set

    stdin("a new password for boss\n")
    assert extrapypi(["user", "set-password", ini_file, "boss", "--password-stdin"]) == 0
    tm, dbsession = data.session()
    with tm:
        assert check_password("a new password for boss", get_user(dbsession, "boss").password_hash)
    assert pages(testapp, lambda user: auth(user, "a new password for boss")) == before

    # Running it again changes nothing and says so.
    capsys.readouterr()
    assert extrapypi(["import", ini_file, str(export)]) == 0
    assert "0 imported, 4 skipped (already there), 0 refused" in capsys.readouterr().out


def test_importing_the_files_directory_of_an_export_passes_over_metadata(
    app, index, engine, base_settings, ini_file, tmp_path, capsys
):
    """The restore docs/backup.md used to give: it refused every .metadata and exited 1."""
    export = tmp_path / "export"
    assert extrapypi(["export", ini_file, str(export)]) == 0
    empty_everything(app, engine, base_settings)
    capsys.readouterr()
    assert extrapypi(["import", ini_file, str(export / "files")]) == 0
    out, err = capsys.readouterr()
    assert "4 imported, 0 skipped (already there), 0 refused, 3 .metadata files passed over" in out
    assert "refused" not in err
    assert err.count(f"`extrapypi import INI {export}` also restores") == 1


def test_a_damaged_export_is_refused_file_by_file_each_refusal_once(
    app, index, engine, base_settings, ini_file, tmp_path, capsys
):
    export = tmp_path / "export"
    assert extrapypi(["export", ini_file, str(export)]) == 0
    manifest = json.loads((export / "manifest.json").read_text())
    demo = next(p for p in manifest["packages"] if p["normalized_name"] == "demo-pkg")
    sdist = next(f for r in demo["releases"] for f in r["files"] if f["filetype"] == "sdist")
    sdist["sha256"] = "0" * 64  # the bytes no longer match what the manifest promises
    escaping = next(p for p in manifest["packages"] if p["normalized_name"] == "other")
    escaping["releases"][0]["files"][0]["path"] = "../../etc/passwd"
    manifest["teams"] = [{"name": "core"}]  # a section of a newer version
    (export / "manifest.json").write_text(json.dumps(manifest))
    empty_everything(app, engine, base_settings)
    capsys.readouterr()

    assert extrapypi(["import", ini_file, str(export)]) == 1
    out, err = capsys.readouterr()
    assert err.count("refused") == 2, err
    assert f"refused files/demo-pkg/{sdist['filename']}: its bytes have sha256" in err
    assert "leads out of the export's files/" in err
    assert "ignored (not known to this version): teams" in err
    assert "2 imported, 0 skipped (already there), 2 refused" in out
    with engine.connect() as connection:
        stored = set(connection.execute(sa.select(File.filename)).scalars())
    assert sdist["filename"] not in stored and len(stored) == 2


def test_import_of_an_export_refuses_user_option(ini_file, index, tmp_path, capsys):
    export = tmp_path / "export"
    assert extrapypi(["export", ini_file, str(export)]) == 0
    capsys.readouterr()
    assert extrapypi(["import", ini_file, str(export), "--user", "alice"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "extrapypi: error: --user does not apply to an export: its manifest names uploaders"
    ]
