"""``extrapypi export`` then ``extrapypi import`` of it on an empty database: the same index.

Every JSON page (``/simple/`` and ``/simple/<name>/`` as PEP 691 JSON, ``/pypi/<name>/json`` and
``/pypi/<name>/<version>/json``) is compared before and after, change serials aside; users come
back without passwords, maintainers (users and teams), yanks, upload times, project statuses,
teams and namespace grants as they were (the CLI's listings and the rows compared too).
"""

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from conftest import _clear_database, _clear_storage
from packaging.utils import canonicalize_name
from test_cli import extrapypi, stdin  # noqa: F401 (a fixture)

from extrapypi.models import (
    File,
    Namespace,
    Package,
    Release,
    Team,
    User,
    package_team_maintainers,
    team_members,
)
from extrapypi.permissions import Role
from extrapypi.services import namespaces as namespace_service
from extrapypi.services import status as status_service
from extrapypi.services import teams as team_service
from extrapypi.services.accounts import check_password, get_user
from extrapypi.services.packages import get_package, set_yanked
from extrapypi.services.restore import NO_PASSWORD

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
UPLOADED = datetime(2024, 2, 29, 12, 30, 15, tzinfo=UTC)
PACKAGES = ("demo-pkg", "other", "empty-pkg", "held")
NAMESPACES = "demo\tteam:core\nempty\talice\nother\tteam:ops\n"


@pytest.fixture
def index(data):
    """Three packages with files, one without; yanks, maintainers, an old upload time; teams
    (one maintaining demo-pkg), a deprecated, an archived and a quarantined project, and
    namespaces granted to a user and to a team that does not maintain the project in it."""
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
    data.release_file("held", "1.0", summary="Held")
    tm, dbsession = data.session()
    with tm:
        package = get_package(dbsession, "demo-pkg")
        package.maintainers.extend([get_user(dbsession, "alice"), get_user(dbsession, "bob")])
        release = next(r for r in package.releases if r.version == "2.0")
        set_yanked(dbsession, release, True, "broken build", None)
        for file in dbsession.scalars(sa.select(File)):
            if file.filename.endswith(".tar.gz"):
                file.upload_time = UPLOADED
        core = team_service.create_team(dbsession, "core", None)
        ops = team_service.create_team(dbsession, "ops", None)
        for team, username in ((core, "alice"), (core, "gone"), (ops, "boss")):
            team_service.add_member(dbsession, team, get_user(dbsession, username), None)
        team_service.add_team_maintainer(dbsession, package, core, None)
        for name, status, reason in (
            ("demo-pkg", "deprecated", "use other"),
            ("other", "archived", "no longer maintained"),
            ("held", "quarantined", "malware report #12"),
        ):
            status_service.set_status(
                dbsession, get_package(dbsession, name), status, reason, None, may_quarantine=True
            )
        namespace_service.grant(dbsession, "demo", core, None)
        # ops owns the namespace but does not maintain "other": a restore that granted it before
        # the packages existed would make ops a maintainer of "other" (and "owned" true).
        namespace_service.grant(dbsession, "other", ops, None)
        namespace_service.grant(dbsession, "empty", get_user(dbsession, "alice"), None)


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
            for name in PACKAGES
        }


def rows(engine) -> dict[str, set]:
    """Teams, memberships, team maintainers, namespaces and statuses as stored, by name."""
    with engine.connect() as connection:

        def fetch(query) -> set:
            return {tuple(row) for row in connection.execute(query)}

        return {
            "teams": fetch(sa.select(Team.name, Team.created)),
            "members": fetch(
                sa.select(Team.name, User.username)
                .join(team_members, team_members.c.team_id == Team.id)
                .join(User, User.id == team_members.c.user_id)
            ),
            "team maintainers": fetch(
                sa.select(Package.normalized_name, Team.name)
                .join(package_team_maintainers, package_team_maintainers.c.team_id == Team.id)
                .join(Package, Package.id == package_team_maintainers.c.package_id)
            ),
            "namespaces": fetch(
                sa.select(Namespace.name, User.username, Team.name, Namespace.created)
                .outerjoin(User, User.id == Namespace.user_id)
                .outerjoin(Team, Team.id == Namespace.team_id)
            ),
            "statuses": fetch(
                sa.select(Package.normalized_name, Package.status, Package.status_reason)
            ),
        }


def listings(ini_file, capsys) -> list[str]:
    """What ``team list``, ``namespace list`` and ``maintainer list`` print."""
    capsys.readouterr()
    commands = [["team", "list"], ["namespace", "list"]]
    commands += [["maintainer", "list", name] for name in PACKAGES]
    found = []
    for command in commands:
        assert extrapypi([*command[:2], ini_file, *command[2:]]) == 0
        found.append(capsys.readouterr().out)
    return found


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
    assert before["/simple/other/"]["project-status"] == {
        "status": "archived",
        "reason": "no longer maintained",
    }
    assert before["/simple/other/"]["namespaces"] == [{"name": "other", "owned": False}]
    assert before["/simple/demo-pkg/"]["namespaces"] == [{"name": "demo", "owned": True}]
    assert before["/simple/held/"]["project-status"]["status"] == "quarantined"
    assert before["/simple/held/"]["files"] == []
    users_before, maintainers_before = accounts(engine), maintainers(data)
    rows_before, listings_before = rows(engine), listings(ini_file, capsys)
    assert listings_before[:2] == ["core\talice, gone\nops\tboss\n", NAMESPACES]
    assert "team:core\tteam\n" in listings_before[2]
    export = tmp_path / "export"
    assert extrapypi(["export", ini_file, str(export)]) == 0
    capsys.readouterr()
    manifest = json.loads((export / "manifest.json").read_text())
    assert [(t["name"], t["members"]) for t in manifest["teams"]] == [
        ("core", ["alice", "gone"]),
        ("ops", ["boss"]),
    ]
    assert [(n["name"], n["owner"]) for n in manifest["namespaces"]] == [
        ("demo", "team:core"),
        ("empty", "alice"),
        ("other", "team:ops"),
    ]
    exported = {p["normalized_name"]: p for p in manifest["packages"]}
    assert exported["demo-pkg"]["team_maintainers"] == ["core"]
    assert (exported["held"]["status"], exported["held"]["status_reason"]) == (
        "quarantined",
        "malware report #12",
    )

    empty_everything(app, engine, base_settings)
    assert rows(engine) == {key: set() for key in rows_before}
    assert extrapypi(["import", ini_file, str(export)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert (
        "extrapypi import: 5 imported, 0 skipped (already there), 0 refused; 4 users created "
        "(without passwords), 0 already there; 2 teams created, 0 already there; "
        "3 namespaces granted, 0 already there"
    ) in out
    assert "Users restored without passwords: alice, bob, boss, gone." in out
    assert "extrapypi user set-password" in out

    assert accounts(engine) == users_before
    assert maintainers(data) == maintainers_before
    assert rows(engine) == rows_before
    assert listings(ini_file, capsys) == listings_before
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

    # Running it again changes nothing and says so (the archived and quarantined projects'
    # files too, although those projects refuse new files).
    capsys.readouterr()
    assert extrapypi(["import", ini_file, str(export)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "0 imported, 5 skipped (already there), 0 refused" in out
    assert "0 teams created, 2 already there; 0 namespaces granted, 3 already there" in out
    assert rows(engine) == rows_before
    assert listings(ini_file, capsys) == listings_before


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
    assert "5 imported, 0 skipped (already there), 0 refused, 4 .metadata files passed over" in out
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
    manifest["webhooks"] = [{"url": "https://example.com"}]  # a section of a newer version
    (export / "manifest.json").write_text(json.dumps(manifest))
    empty_everything(app, engine, base_settings)
    capsys.readouterr()

    assert extrapypi(["import", ini_file, str(export)]) == 1
    out, err = capsys.readouterr()
    assert err.count("refused") == 2, err
    assert f"refused files/demo-pkg/{sdist['filename']}: its bytes have sha256" in err
    assert "leads out of the export's files/" in err
    assert "ignored (not known to this version): webhooks" in err
    assert "3 imported, 0 skipped (already there), 2 refused" in out
    with engine.connect() as connection:
        stored = set(connection.execute(sa.select(File.filename)).scalars())
    assert sdist["filename"] not in stored and len(stored) == 3


def test_import_of_an_export_refuses_user_option(ini_file, index, tmp_path, capsys):
    export = tmp_path / "export"
    assert extrapypi(["export", ini_file, str(export)]) == 0
    capsys.readouterr()
    assert extrapypi(["import", ini_file, str(export), "--user", "alice"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "extrapypi: error: --user does not apply to an export: its manifest names uploaders"
    ]


def test_teams_statuses_and_namespaces_of_a_manifest_are_checked_by_their_services(
    app, index, engine, base_settings, ini_file, tmp_path, capsys
):
    """What the CLI would refuse, a manifest cannot slip in: each refusal named, the rest kept."""
    export = tmp_path / "export"
    assert extrapypi(["export", ini_file, str(export)]) == 0
    manifest = json.loads((export / "manifest.json").read_text())
    manifest["teams"].append({"name": "Not A Team!", "members": ["alice"]})
    next(t for t in manifest["teams"] if t["name"] == "core")["members"].append("nobody")
    manifest["namespaces"] += [
        {"name": "demo-extra", "owner": "bob"},  # inside team:core's "demo"
        {"name": "acme", "owner": "team:nope"},
        {"name": "a-b-c", "owner": "alice"},  # deeper than namespace_max_depth
    ]
    packages = {p["normalized_name"]: p for p in manifest["packages"]}
    packages["demo-pkg"]["team_maintainers"].append("nope")
    packages["empty-pkg"]["status"] = "frozen"
    (export / "manifest.json").write_text(json.dumps(manifest))
    empty_everything(app, engine, base_settings)
    capsys.readouterr()

    assert extrapypi(["import", ini_file, str(export)]) == 1
    out, err = capsys.readouterr()
    refusals = [line for line in err.splitlines() if line.startswith("refused ")]
    assert refusals == [
        "refused member 'nobody' of team 'core': no such user",
        "refused team 'Not A Team!': Invalid team name 'Not A Team!': use 1 to 100 lowercase "
        "letters, digits, '.', '_' or '-', starting and ending with a letter or digit.",
        "refused maintainer team:nope of 'Demo_Pkg': no such team",
        "refused status of 'empty-pkg': Unknown project status 'frozen': use one of active, "
        "archived, deprecated, quarantined.",
        "refused namespace 'demo-extra': Namespace 'demo-extra' overlaps 'demo', granted to "
        "team:core: grants of different owners may not overlap.",
        "refused namespace 'acme': its owner 'team:nope' is unknown",
        "refused namespace 'a-b-c': Namespace 'a-b-c' has 2 hyphens: this index grants at most 1 "
        "(extrapypi.namespace_max_depth).",
    ]
    assert "5 imported, 0 skipped (already there), 7 refused" in out
    stored = rows(engine)
    assert {name for name, _ in stored["teams"]} == {"core", "ops"}
    assert stored["members"] == {("core", "alice"), ("core", "gone"), ("ops", "boss")}
    assert stored["team maintainers"] == {("demo-pkg", "core")}
    assert {row[0] for row in stored["namespaces"]} == {"demo", "empty", "other"}
    assert ("empty-pkg", "active", "") in stored["statuses"]
    assert ("other", "archived", "no longer maintained") in stored["statuses"]


def test_a_file_missing_from_an_archived_project_is_refused_with_the_way_out(
    app, index, engine, base_settings, ini_file, tmp_path, capsys
):
    """The status is restored after the files; a later run cannot add a file to the archived
    project (PEP 792), and says how to restore it instead of a bare upload refusal."""
    export = tmp_path / "export"
    assert extrapypi(["export", ini_file, str(export)]) == 0
    original = (export / "manifest.json").read_text()
    manifest = json.loads(original)
    other = next(p for p in manifest["packages"] if p["normalized_name"] == "other")
    filename = other["releases"][0]["files"][0]["filename"]
    other["releases"][0]["files"][0]["path"] = "files/other/missing.whl"
    (export / "manifest.json").write_text(json.dumps(manifest))
    empty_everything(app, engine, base_settings)
    assert extrapypi(["import", ini_file, str(export)]) == 1
    capsys.readouterr()

    (export / "manifest.json").write_text(original)
    assert extrapypi(["import", ini_file, str(export)]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"refused files/other/{filename}: Upload refused: project 'other' is archived (no longer "
        "maintained) and accepts no new files; to restore it, set the project active "
        "(extrapypi status set INI other active) and import again: it sets the status back"
    ]
    assert "0 imported, 4 skipped (already there), 1 refused" in out

    assert extrapypi(["status", "set", ini_file, "other", "active"]) == 0
    assert extrapypi(["import", ini_file, str(export)]) == 0
    assert "1 imported, 4 skipped (already there), 0 refused" in capsys.readouterr().out
    with engine.connect() as connection:
        assert filename in set(connection.execute(sa.select(File.filename)).scalars())
        status = connection.execute(
            sa.select(Package.status, Package.status_reason).where(Package.name == "other")
        ).one()
    assert tuple(status) == ("archived", "no longer maintained")  # the import set it back
