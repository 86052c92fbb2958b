"""``extrapypi check`` on a deliberately damaged store: each problem found, what can be repaired."""

import hashlib
import os
import time
from pathlib import Path

import pytest

from extrapypi.scripts.cli import main as extrapypi

HOURS_AGO = 2 * 3600


@pytest.fixture
def store(base_settings, data):
    """The storage directory; leftovers in ``.staging`` are removed afterwards."""
    root = Path(base_settings["extrapypi.storage.path"])
    yield root
    for leftover in (root / ".staging").iterdir():
        leftover.unlink()


def _age(path: Path, seconds: int = HOURS_AGO) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _staged(root: Path, name: str, content: bytes, age: int = HOURS_AGO) -> Path:
    path = root / ".staging" / name
    path.write_bytes(content)
    _age(path, age)
    return path


def test_a_healthy_store_is_consistent(ini_file, data, store, capsys):
    data.release_file("alpha", "1.0")
    data.release_file("alpha", "1.0", kind="sdist")
    assert extrapypi(["check", ini_file]) == 0
    assert capsys.readouterr().out.strip() == (
        "2 distributions and 1 metadata file in the database, "
        "2 distributions and 1 metadata file in storage: consistent."
    )


def test_check_finds_every_kind_of_damage_and_repair_fixes_what_it_can(
    ini_file, data, store, capsys
):
    missing = data.release_file("missing", "1.0")
    tampered = data.release_file("tampered", "1.0", kind="sdist")
    interrupted = data.release_file("interrupted", "1.0")
    stripped = data.release_file("stripped", "1.0")
    # A row without its file, no copy anywhere.
    (store / "missing" / missing["filename"]).unlink()
    # Stored bytes that are not the recorded ones.
    (store / "tampered" / tampered["filename"]).write_bytes(b"not the sdist")
    # A crash between the commit and the publish: the bytes are still staged.
    published = store / "interrupted" / interrupted["filename"]
    published.rename(store / ".staging" / "upload-crashed.part")
    _age(store / ".staging" / "upload-crashed.part")
    # The wheel's METADATA (PEP 658) lost.
    (store / "stripped" / (stripped["filename"] + ".metadata")).unlink()
    # A file no row mentions, an old staged leftover, and an upload in progress.
    (store / "orphan").mkdir()
    (store / "orphan" / "orphan-1.0.tar.gz").write_bytes(b"left behind")
    _staged(store, "upload-old.part", b"abandoned upload")
    young = _staged(store, "upload-young.part", b"still uploading", age=5)

    assert extrapypi(["check", ini_file]) == 1
    out = capsys.readouterr().out
    assert f"missing: missing/{missing['filename']}: the database lists it" in out
    assert "cannot repair: no copy of these bytes anywhere" in out
    assert f"hash-mismatch: tampered/{tampered['filename']}: stored 13 bytes" in out
    assert f"missing: interrupted/{interrupted['filename']}" in out
    assert "a staged leftover (upload-crashed.part) has these bytes" in out
    assert f"missing-metadata: stripped/{stripped['filename']}.metadata" in out
    assert "orphan: orphan/orphan-1.0.tar.gz: in storage, but no database row" in out
    assert "staged: upload-old.part: a leftover upload of 16 bytes" in out
    assert "upload-young" not in out
    assert (
        "4 distributions and 3 metadata files in the database, "
        "3 distributions and 2 metadata files in storage: 6 problems, 0 repaired, 6 left."
    ) in out
    # Reporting changed nothing.
    assert (store / "orphan" / "orphan-1.0.tar.gz").exists()
    assert (store / ".staging" / "upload-old.part").exists()

    assert extrapypi(["check", ini_file, "--repair"]) == 1  # two problems cannot be repaired
    out = capsys.readouterr().out
    assert "6 problems, 4 repaired, 2 left." in out
    assert "repaired missing: interrupted/" in out
    assert "published the staged leftover upload-crashed.part" in out
    assert published.read_bytes() == interrupted["content"]
    metadata = (store / "stripped" / (stripped["filename"] + ".metadata")).read_bytes()
    assert metadata.decode() == stripped["metadata"]
    assert not (store / "orphan").exists()
    assert not (store / ".staging" / "upload-old.part").exists()
    assert not (store / ".staging" / "upload-crashed.part").exists()
    assert young.exists()  # may belong to an upload still running
    assert (store / "tampered" / tampered["filename"]).read_bytes() == b"not the sdist"

    assert extrapypi(["check", ini_file]) == 1
    out = capsys.readouterr().out
    assert out.count("cannot repair") == 2
    assert "2 problems, 0 repaired, 2 left." in out


def test_repair_of_repairable_damage_leaves_a_consistent_store(ini_file, data, store, capsys):
    kept = data.release_file("kept", "2.0", kind="sdist")
    path = store / "kept" / kept["filename"]
    path.rename(store / ".staging" / "upload-1.part")
    _age(store / ".staging" / "upload-1.part")
    (store / "stray").mkdir()
    (store / "stray" / "stray-1.0-py3-none-any.whl").write_bytes(b"x")
    assert extrapypi(["check", ini_file, "--repair"]) == 0
    assert "2 problems, 2 repaired, 0 left." in capsys.readouterr().out
    assert (
        hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(kept["content"]).hexdigest()
    )
    assert extrapypi(["check", ini_file]) == 0
    assert "consistent" in capsys.readouterr().out


def test_a_staged_copy_also_repairs_a_hash_mismatch(ini_file, data, store, capsys):
    wheel = data.release_file("fixable", "1.0")
    target = store / "fixable" / wheel["filename"]
    target.write_bytes(b"corrupted")
    _staged(store, "upload-good.part", wheel["content"])
    assert extrapypi(["check", ini_file, "--repair"]) == 0
    assert "repaired hash-mismatch: fixable/" in capsys.readouterr().out
    assert target.read_bytes() == wheel["content"]


def test_no_hashes_checks_presence_only(ini_file, data, store, capsys):
    wheel = data.release_file("quick", "1.0")
    (store / "quick" / wheel["filename"]).write_bytes(b"changed")
    assert extrapypi(["check", ini_file, "--no-hashes"]) == 0
    assert extrapypi(["check", ini_file]) == 1
    assert "hash-mismatch: quick/" in capsys.readouterr().out
