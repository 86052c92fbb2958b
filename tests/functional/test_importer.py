"""`extrapypi import`: a pypiserver-style directory goes in, refusals reported, re-runs no-ops."""

import hashlib
import os
import shutil
import subprocess
import sys

import pytest
import sqlalchemy as sa
from dists import metadata_text, sdist_bytes, wheel_bytes, write
from test_upload import rezip, rows, stored_files

from extrapypi.models import File, Package, Release
from extrapypi.permissions import Role
from extrapypi.services.importer import ImportError_, import_directory
from extrapypi.services.uploads import Limits


@pytest.fixture
def storage_root(base_settings):
    return base_settings["extrapypi.storage.path"]


@pytest.fixture
def dump(tmp_path):
    """A pypiserver packages directory: flat files plus a per-project subdirectory, and junk."""
    root = tmp_path / "packages"
    (root / "web").mkdir(parents=True)
    good = {
        "wheel": write(root, wheel_bytes("alpha", "1.0", summary="First", requires_dist=("six",))),
        "sdist": write(root, sdist_bytes("alpha", "1.0", summary="First")),
        "legacy": write(root, ("Web.Kit-0.9-dev.tar.gz", *_legacy_sdist())),
        "new": write(root / "web", wheel_bytes("beta", "2.0", metadata_version="2.4")),
    }
    (root / "README.txt").write_text("not a distribution")
    (root / "broken-1.0-py3-none-any.whl").write_bytes(b"PK\x03\x04 truncated")
    (root / "liar-1.0-py3-none-any.whl").write_bytes(
        rezip({"liar-1.0.dist-info/METADATA": metadata_text("other", "1.0").encode()})
    )
    (root / "nopkginfo-1.0.tar.gz").write_bytes(_tar({"nopkginfo-1.0/setup.py": b""}))
    (root / "old-1.0.tar.bz2").write_bytes(b"BZh9")
    (root / ".hidden-1.0.tar.gz").write_bytes(b"ignored")
    return root, good


def _tar(members: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _legacy_sdist() -> tuple[bytes, str]:
    """What distutils wrote in 2009: dotted, capitalised name, '-dev' version, Metadata 1.0."""
    pkg_info = "Metadata-Version: 1.0\nName: Web.Kit\nVersion: 0.9-dev\nSummary: Old\n"
    return _tar(
        {"Web.Kit-0.9-dev/PKG-INFO": pkg_info.encode(), "Web.Kit-0.9-dev/setup.py": b""}
    ), pkg_info


EXPECTED_REFUSALS = {
    "README.txt": "not a wheel (.whl) or sdist",
    "broken-1.0-py3-none-any.whl": "not a valid zip file",
    "liar-1.0-py3-none-any.whl": "must start with the project name and version (other 1.0)",
    "nopkginfo-1.0.tar.gz": "no usable top-level PKG-INFO",
    "old-1.0.tar.bz2": "not a wheel (.whl) or sdist",
}


def run_import(app, directory, username=None):
    registry = app.registry
    return import_directory(
        registry["dbsession_factory"],
        registry["extrapypi.storage"],
        str(directory),
        limits=Limits(registry["extrapypi.settings"].upload_limit_bytes),
        username=username,
    )


def test_import_reports_and_stores_only_good_files(app, data, dump, engine, storage_root):
    data.user("ops", Role.ADMIN)
    root, good = dump
    report = run_import(app, root, "ops")
    assert sorted(report.imported) == sorted(
        [
            "Web.Kit-0.9-dev.tar.gz",
            "alpha-1.0-py3-none-any.whl",
            "alpha-1.0.tar.gz",
            "web/beta-2.0-py3-none-any.whl",
        ]
    )
    assert report.duplicates == []
    refused = dict(report.refused)
    assert set(refused) == set(EXPECTED_REFUSALS)
    for path, reason in EXPECTED_REFUSALS.items():
        assert reason in refused[path], (path, refused[path])
    assert report.summary() == "4 imported, 0 skipped (already there), 5 refused"

    assert stored_files(storage_root) == sorted(
        [
            "alpha/alpha-1.0-py3-none-any.whl",
            "alpha/alpha-1.0-py3-none-any.whl.metadata",
            "alpha/alpha-1.0.tar.gz",
            "beta/beta-2.0-py3-none-any.whl",
            "beta/beta-2.0-py3-none-any.whl.metadata",
            "web-kit/Web.Kit-0.9-dev.tar.gz",
        ]
    )
    assert os.listdir(os.path.join(storage_root, ".staging")) == []
    for path in good.values():
        normalized = {"alpha": "alpha", "beta": "beta", "Web.Kit": "web-kit"}[
            path.name.split("-")[0]
        ]
        with open(os.path.join(storage_root, normalized, path.name), "rb") as stored:
            assert (
                hashlib.sha256(stored.read()).hexdigest()
                == hashlib.sha256(path.read_bytes()).hexdigest()
            )
    with engine.connect() as connection:
        releases = {
            (r.version, r.summary, r.metadata_version)
            for r in connection.execute(sa.select(Release))
        }
        assert releases == {("1.0", "First", "2.1"), ("2.0", "", "2.4"), ("0.9-dev", "Old", "1.0")}
        assert connection.execute(
            sa.select(Release.requires_dist).where(Release.version == "1.0")
        ).scalar() == ["six"]
        names = set(connection.execute(sa.select(Package.name)).scalars())
        assert names == {"alpha", "beta", "Web.Kit"}
        maintainers = connection.execute(sa.text("select count(*) from package_maintainers"))
        assert maintainers.scalar() == 3
        uploaders = set(connection.execute(sa.select(File.uploader_id)).scalars())
        assert len(uploaders) == 1 and None not in uploaders


def test_import_twice_changes_nothing(app, dump, engine, storage_root, data):
    root, _ = dump
    run_import(app, root)
    before = (rows(engine, File), stored_files(storage_root))
    again = run_import(app, root)
    assert again.imported == []
    assert len(again.duplicates) == 4
    assert len(again.refused) == 5
    assert (rows(engine, File), stored_files(storage_root)) == before


def test_changed_file_under_known_name_is_refused(app, data, tmp_path, engine, storage_root):
    first = tmp_path / "one"
    first.mkdir()
    built = sdist_bytes("gamma", "1.0")
    write(first, built)
    assert run_import(app, first).imported == ["gamma-1.0.tar.gz"]
    second = tmp_path / "two"
    second.mkdir()
    write(second, sdist_bytes("gamma", "1.0", summary="different bytes"))
    report = run_import(app, second)
    assert report.refused[0][0] == "gamma-1.0.tar.gz"
    assert "File already exists" in report.refused[0][1]
    with open(os.path.join(storage_root, "gamma", built[0]), "rb") as stored:
        assert stored.read() == built[1]


def test_unknown_user_or_directory_stops_before_anything(app, data, tmp_path, engine):
    write(tmp_path, sdist_bytes("delta", "1.0"))
    with pytest.raises(ImportError_, match="unknown user 'ghost'"):
        run_import(app, tmp_path, "ghost")
    with pytest.raises(ImportError_, match="not a directory"):
        run_import(app, tmp_path / "missing")
    assert rows(engine, File) == 0


def test_import_command(ini_file, data, dump, engine, storage_root):
    data.user("ops", Role.DEVELOPER)
    root, good = dump
    command = [sys.executable, "-m", "extrapypi.scripts.import_dists", ini_file, str(root)]
    result = subprocess.run(
        [*command, "--user", "ops"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, result.stderr  # some files were refused
    assert "4 imported, 0 skipped (already there), 5 refused" in result.stdout
    assert "refused README.txt: Invalid filename 'README.txt'" in result.stderr
    assert "alpha-1.0.tar.gz: imported" in result.stdout
    assert rows(engine, File) == 4

    only_good = root.parent / "good"
    only_good.mkdir()
    shutil.copy(good["sdist"], only_good)  # the same bytes (gzip stamps the time)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "extrapypi.scripts.import_dists",
            ini_file,
            str(only_good),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip()
        == "extrapypi import: 0 imported, 1 skipped (already there), 0 refused"
    )

    result = subprocess.run(
        [*command, "--user", "ghost"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "unknown user 'ghost'" in result.stderr
    result = subprocess.run(command[:4], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
