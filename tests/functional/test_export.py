"""``extrapypi export``: every file, byte for byte, and a manifest a restore can rely on."""

import hashlib
import json
import subprocess
from pathlib import Path

from conftest import venv_tool

from extrapypi.scripts.cli import main as extrapypi


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_export_writes_files_and_manifest(ini_file, data, tmp_path, capsys):
    data.user("root", role="admin", email="root@example.com")
    data.user("dev", role="developer")
    data.user("gone", role="installer", active=False)
    wheel = data.release_file("Hello.World", "1.0", uploader="dev", summary="Hi")
    sdist = data.release_file("Hello.World", "1.0", kind="sdist", uploader="dev")
    newer = data.release_file("Hello.World", "1.10", uploader="dev")
    data.package("empty-project", maintainers=("root", "dev"))
    target = tmp_path / "backup"

    assert extrapypi(["export", ini_file, str(target)]) == 0
    assert (
        "Exported 2 packages, 2 releases, 3 files" in capsys.readouterr().out
    )  # and the bytes count
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["format"] == "extrapypi-export"
    assert manifest["format_version"] == 1
    assert manifest["problems"] == []
    assert manifest["serial"] >= 3

    users = {user["username"]: user for user in manifest["users"]}
    assert set(users) == {"root", "dev", "gone"}
    assert users["root"]["email"] == "root@example.com"
    assert users["gone"]["is_active"] is False
    assert users["dev"]["role"] == "developer"
    assert all("password" not in key for user in users.values() for key in user)
    assert "$2b$" not in (target / "manifest.json").read_text()

    packages = {package["normalized_name"]: package for package in manifest["packages"]}
    assert set(packages) == {"hello-world", "empty-project"}
    assert packages["empty-project"]["maintainers"] == ["dev", "root"]
    assert packages["empty-project"]["releases"] == []
    hello = packages["hello-world"]
    assert hello["name"] == "Hello.World"
    assert hello["maintainers"] == ["dev"]
    assert [release["version"] for release in hello["releases"]] == ["1.0", "1.10"]
    first = hello["releases"][0]
    assert first["summary"] == "Hi"
    assert first["uploader"] == "dev"
    files = {file["filename"]: file for release in hello["releases"] for file in release["files"]}
    for built in (wheel, sdist, newer):
        entry = files[built["filename"]]
        expected = hashlib.sha256(built["content"]).hexdigest()
        assert entry["sha256"] == expected
        assert entry["size"] == len(built["content"])
        assert entry["uploader"] == "dev"
        assert entry["path"] == f"files/hello-world/{built['filename']}"
        assert _sha256(target / entry["path"]) == expected
    wheel_entry = files[wheel["filename"]]
    assert wheel_entry["filetype"] == "bdist_wheel"
    metadata_path = target / wheel_entry["metadata_path"]
    assert metadata_path.read_text() == wheel["metadata"]
    assert _sha256(metadata_path) == wheel_entry["metadata_sha256"]
    assert "metadata_path" not in files[sdist["filename"]]


def test_export_refuses_a_non_empty_directory(ini_file, data, tmp_path, capsys):
    target = tmp_path / "used"
    target.mkdir()
    (target / "something").write_text("keep me")
    assert extrapypi(["export", ini_file, str(target)]) == 1
    assert "is not an empty directory" in capsys.readouterr().err
    assert sorted(p.name for p in target.iterdir()) == ["something"]


def test_export_reports_missing_and_damaged_files(ini_file, data, base_settings, tmp_path, capsys):
    store = Path(base_settings["extrapypi.storage.path"])
    lost = data.release_file("lost", "1.0", kind="sdist")
    bent = data.release_file("bent", "1.0", kind="sdist")
    (store / "lost" / lost["filename"]).unlink()
    (store / "bent" / bent["filename"]).write_bytes(b"bent bytes")
    target = tmp_path / "partial"
    assert extrapypi(["export", ini_file, str(target)]) == 1
    err = capsys.readouterr().err
    assert f"lost/{lost['filename']}: missing from storage, not exported" in err
    assert f"bent/{bent['filename']}: stored bytes have sha256" in err
    manifest = json.loads((target / "manifest.json").read_text())
    assert len(manifest["problems"]) == 2
    lost_entry = manifest["packages"][1]["releases"][0]["files"][0]
    assert lost_entry["filename"] == lost["filename"]
    assert lost_entry["path"] is None
    assert (target / "files" / "bent" / bent["filename"]).read_bytes() == b"bent bytes"


def test_export_through_the_console_script(ini_file, data, tmp_path):
    built = data.release_file("scripted", "0.1")
    target = tmp_path / "out"
    result = subprocess.run(
        [venv_tool("extrapypi"), "export", ini_file, str(target)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"Exported 1 package, 1 release, 1 file ({len(built['content'])} bytes) and 0 users"
        in result.stdout
    )
    exported = target / "files" / "scripted" / built["filename"]
    assert exported.read_bytes() == built["content"]
