"""``extrapypi prune``: retention rules, the dry run, what is never deleted, overrides, S3."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from conftest import write_ini
from test_dashboard import BROWSER, csrf_token, log_in
from test_upload import post

from extrapypi.models import File, JournalEntry, Package, Release, RetentionRule
from extrapypi.models.meta import utcnow
from extrapypi.permissions import Role
from extrapypi.scripts.cli import main as extrapypi
from extrapypi.services.packages import filename_was_deleted, get_package


def age(data, name: str, version: str, days: float) -> None:
    """Make a release (and its files) look ``days`` old."""
    when = utcnow() - timedelta(days=days)
    tm, dbsession = data.session()
    with tm:
        package = get_package(dbsession, name)
        release = dbsession.scalars(
            sa.select(Release).where(Release.package_id == package.id, Release.version == version)
        ).one()
        release.created = when
        for file in release.files:
            file.upload_time = when


def publish(data, name: str, *versions: tuple[str, float]) -> dict[str, str]:
    """Upload each version (a wheel) and age it; returns version → filename."""
    filenames = {}
    for version, days in versions:
        filenames[version] = data.release_file(name, version)["filename"]
        age(data, name, version, days)
    return filenames


def versions(data, name: str) -> list[str]:
    tm, dbsession = data.session()
    with tm:
        package = get_package(dbsession, name)
        return [r.version for r in package.releases] if package else []


def journal(data, action: str) -> list[tuple[str, str, str]]:
    tm, dbsession = data.session()
    with tm:
        entries = dbsession.scalars(
            sa.select(JournalEntry).where(JournalEntry.action == action).order_by(JournalEntry.id)
        ).all()
        return [(e.version, e.filename, e.detail) for e in entries]


def test_dry_run_lists_exactly_what_keep_last_deletes(app, data, ini_file, capsys):
    files = publish(data, "Demo", ("1.0", 30), ("1.1", 20), ("2.0", 10), ("3.0", 5))
    storage = app.registry["extrapypi.storage"]
    tm, dbsession = data.session()
    with tm:
        sizes = {
            v: dbsession.scalars(sa.select(File.size).where(File.filename == f)).one()
            for v, f in files.items()
        }

    assert extrapypi(["prune", ini_file, "--keep-last", "2", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "would delete Demo 1.1 (not among the 2 newest releases):",
        f"  {files['1.1']}  {sizes['1.1']} bytes",
        "would delete Demo 1.0 (not among the 2 newest releases):",
        f"  {files['1.0']}  {sizes['1.0']} bytes",
        f"Dry run: 2 releases, 2 files, {sizes['1.0'] + sizes['1.1']} bytes would be freed; "
        "nothing deleted.",
    ]
    assert versions(data, "Demo") == ["3.0", "2.0", "1.1", "1.0"]
    assert all(storage.exists(storage_key_for(data, "Demo", f)) for f in files.values())
    assert journal(data, "prune file") == []

    assert extrapypi(["prune", ini_file, "--keep-last", "2"]) == 0
    out = capsys.readouterr().out
    assert f"Deleted 2 releases, 2 files, {sizes['1.0'] + sizes['1.1']} bytes." in out
    assert versions(data, "Demo") == ["3.0", "2.0"]
    for version in ("1.0", "1.1"):
        assert not storage.exists(storage_key_for(data, "Demo", files[version]))
    assert storage.exists(storage_key_for(data, "Demo", files["3.0"]))
    reason = "not among the 2 newest releases"
    assert journal(data, "prune file") == [
        ("1.1", files["1.1"], reason),
        ("1.0", files["1.0"], reason),
    ]
    assert [v for v, _, _ in journal(data, "delete release")] == ["1.1", "1.0"]
    tm, dbsession = data.session()
    with tm:
        assert filename_was_deleted(dbsession, files["1.0"])
    # Running again finds nothing more.
    assert extrapypi(["prune", ini_file, "--keep-last", "2"]) == 0
    assert "Deleted 0 releases, 0 files, 0 bytes." in capsys.readouterr().out


def storage_key_for(data, name: str, filename: str) -> str:
    return f"{name.lower()}/{filename}"


def test_a_pruned_filename_cannot_be_uploaded_again(app, data, ini_file, testapp, auth):
    from dists import wheel_bytes

    data.user("dev", Role.DEVELOPER)
    publish(data, "Demo", ("1.0", 30), ("2.0", 20))
    assert extrapypi(["prune", ini_file, "--keep-last", "1"]) == 0
    built = wheel_bytes("Demo", "1.0")
    response = post(testapp, built, auth("dev"), status=400)
    assert "cannot be reused" in response.status


def test_old_pre_and_dev_releases_go_recent_ones_stay(data, ini_file, capsys):
    publish(
        data,
        "Demo",
        ("1.0", 100),
        ("2.0a1", 40),
        ("2.0.dev3", 45),
        ("2.0", 35),
        ("2.1rc1", 10),
        ("2.2b1", 2),
    )
    assert extrapypi(["prune", ini_file, "--prerelease-days", "30"]) == 0
    assert versions(data, "Demo") == ["2.2b1", "2.1rc1", "2.0", "1.0"]
    assert {v for v, _, _ in journal(data, "prune file")} == {"2.0a1", "2.0.dev3"}
    assert "pre-release older than 30 days" in capsys.readouterr().out


def test_never_the_newest_final_the_newest_or_a_file_younger_than_a_day(data, ini_file):
    publish(data, "Finals", ("1.0", 50), ("2.0b1", 40), ("2.0b2", 30))
    publish(data, "Young", ("0.9", 0), ("1.0", 30), ("2.0", 20), ("3.0", 10))
    # A release with one young file stays even if its other file is old.
    publish(data, "Mixed", ("1.0", 30), ("2.0", 20))
    data.release_file("Mixed", "1.0", kind="sdist")
    assert extrapypi(["prune", ini_file, "--keep-last", "1", "--prerelease-days", "1"]) == 0
    # 2.0b2 is the newest release, 1.0 the newest final one; 2.0b1 is an old pre-release.
    assert versions(data, "Finals") == ["2.0b2", "1.0"]
    # 0.9 is beyond the newest one but was uploaded just now.
    assert versions(data, "Young") == ["3.0", "0.9"]
    assert versions(data, "Mixed") == ["2.0", "1.0"]


def test_nothing_happens_without_a_rule(data, ini_file, capsys):
    publish(data, "Demo", ("1.0", 50), ("2.0", 40))
    assert extrapypi(["prune", ini_file]) == 0
    out = capsys.readouterr().out
    assert "No default retention rule" in out
    assert "Deleted 0 releases" in out
    assert versions(data, "Demo") == ["2.0", "1.0"]


def test_bad_arguments_are_refused(data, ini_file, capsys):
    assert extrapypi(["prune", ini_file, "--keep-last", "-1"]) == 1
    assert "0 (off) or more" in capsys.readouterr().err
    assert extrapypi(["prune", ini_file, "--keep-last", "1", "--package", "nope"]) == 1
    assert "no package named 'nope'" in capsys.readouterr().err
    assert extrapypi(["prune", ini_file, "--keep-last", "many"]) == 2


def test_only_the_named_packages(data, ini_file):
    publish(data, "One", ("1.0", 50), ("2.0", 40))
    publish(data, "Two", ("1.0", 50), ("2.0", 40))
    assert extrapypi(["prune", ini_file, "--keep-last", "1", "--package", "one"]) == 0
    assert versions(data, "One") == ["2.0"]
    assert versions(data, "Two") == ["2.0", "1.0"]


def test_defaults_from_the_ini_and_overrides_from_the_dashboard(
    app, data, base_settings, tmp_path, testapp
):
    ini = write_ini(
        tmp_path / "retention.ini", base_settings | {"extrapypi.retention.keep_last": "2"}
    )
    publish(data, "Keep", ("1.0", 50), ("2.0", 40), ("3.0", 30))
    publish(data, "Strict", ("1.0", 50), ("2.0", 40), ("3.0", 30))
    publish(data, "Default", ("1.0", 50), ("2.0", 40), ("3.0", 30))
    data.user("boss", Role.ADMIN)
    token = log_in(testapp, "boss")
    page = testapp.get("/packages/strict/retention", headers=BROWSER)
    assert "The next prune would delete" in page.text and "Nothing." in page.text
    testapp.post(
        "/packages/strict/retention",
        {"csrf_token": csrf_token(page), "keep_last": "1", "prerelease_days": ""},
        status=303,
    )
    page = testapp.get("/packages/strict/retention", headers=BROWSER)
    assert "2.0 (not among the 1 newest releases; 1 files" in page.text
    assert "1.0 (not among the 1 newest releases" in page.text
    assert "Retention rule" in testapp.get("/packages/strict/", headers=BROWSER).text
    testapp.post(
        "/packages/keep/retention",
        {"csrf_token": token, "keep_last": "0", "prerelease_days": ""},
        status=303,
    )
    bad = testapp.post(
        "/packages/keep/retention",
        {"csrf_token": token, "keep_last": "-3", "prerelease_days": ""},
        status=400,
    )
    assert "whole number" in bad.text
    testapp.post("/packages/keep/retention", {"keep_last": "1"}, status=400)  # no CSRF token
    tm, dbsession = data.session()
    with tm:
        rules = {
            dbsession.get(Package, r.package_id).name: (r.keep_last, r.prerelease_days)
            for r in dbsession.scalars(sa.select(RetentionRule))
        }
    assert rules == {"Strict": (1, None), "Keep": (0, None)}
    assert [d for _, _, d in journal(data, "set retention")] == [
        "keep_last=1 prerelease_days=default",
        "keep_last=0 prerelease_days=default",
    ]

    assert extrapypi(["prune", ini]) == 0
    assert versions(data, "Strict") == ["3.0"]
    assert versions(data, "Keep") == ["3.0", "2.0", "1.0"]
    assert versions(data, "Default") == ["3.0", "2.0"]


@pytest.mark.parametrize("role", [Role.INSTALLER, Role.MAINTAINER, Role.DEVELOPER])
def test_only_admins_set_retention(data, testapp, role):
    publish(data, "Demo", ("1.0", 1))
    data.user("someone", role)
    tm, dbsession = data.session()
    with tm:
        from extrapypi.services.accounts import get_user

        package = get_package(dbsession, "Demo")
        package.maintainers.append(get_user(dbsession, "someone"))
    token = log_in(testapp, "someone")
    testapp.get("/packages/demo/retention", headers=BROWSER, status=403)
    testapp.post("/packages/demo/retention", {"csrf_token": token, "keep_last": "1"}, status=403)
    page = testapp.get("/packages/demo/", headers=BROWSER)
    assert "Retention rule" not in page.text


def test_prune_on_s3(s3_app_settings, s3_data, tmp_path, capsys):
    ini = write_ini(tmp_path / "s3.ini", s3_app_settings)
    files = publish(s3_data, "Demo", ("1.0", 30), ("2.0", 20), ("3.0", 10))
    storage = s3_data.storage
    keys = set(storage.iter_keys())
    assert {f"demo/{f}" for f in files.values()} <= keys
    assert extrapypi(["prune", ini, "--keep-last", "1", "--dry-run"]) == 0
    assert set(storage.iter_keys()) == keys
    assert extrapypi(["prune", ini, "--keep-last", "1"]) == 0
    remaining = set(storage.iter_keys())
    assert f"demo/{files['3.0']}" in remaining
    for version in ("1.0", "2.0"):
        assert f"demo/{files[version]}" not in remaining
        assert f"demo/{files[version]}.metadata" not in remaining
    tm, dbsession = s3_data.session()
    with tm:
        assert dbsession.scalar(sa.select(sa.func.count()).select_from(File)) == 1
