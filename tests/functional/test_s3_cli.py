"""``extrapypi check``, ``export`` and ``import`` on the S3 backend (a real moto server process)."""

import hashlib
import json
import os
import tracemalloc
import uuid
import zipfile

import pytest
from conftest import s3_settings, write_ini

from extrapypi.scripts.cli import main as extrapypi
from extrapypi.services.consistency import _wheel_metadata
from extrapypi.storage import StagedFile, build_storage
from extrapypi.storage.base import Digests

MiB = 1024 * 1024


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class AppBucket:
    """The app's prefix in the moto bucket, read and damaged with a client of its own."""

    def __init__(self, client, name: str, prefix: str):
        self.client = client
        self.name = name
        self.prefix = prefix  # ends with "/"

    def keys(self) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        return sorted(
            item["Key"][len(self.prefix) :]
            for page in paginator.paginate(Bucket=self.name, Prefix=self.prefix)
            for item in page.get("Contents", ())
        )

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=self.prefix + key)["Body"].read()

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=self.prefix + key, Body=body)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=self.prefix + key)

    def move(self, key: str, target: str) -> None:
        self.put(target, self.get(key))
        self.delete(key)

    def pending_uploads(self) -> list[str]:
        answer = self.client.list_multipart_uploads(Bucket=self.name, Prefix=self.prefix)
        return [upload["Key"][len(self.prefix) :] for upload in answer.get("Uploads", ())]

    def start_upload(self, key: str, part: bytes) -> None:
        """A multipart upload a crashed process never finished, with one part sent."""
        created = self.client.create_multipart_upload(Bucket=self.name, Key=self.prefix + key)
        self.client.upload_part(
            Bucket=self.name,
            Key=self.prefix + key,
            UploadId=created["UploadId"],
            PartNumber=1,
            Body=part,
        )


def _clear_staging(storage) -> None:
    for token in set(storage.iter_staged()):
        storage.discard(StagedFile(token, Digests()))


@pytest.fixture
def bucket(s3_data, moto_server) -> AppBucket:
    storage = s3_data.storage
    _clear_staging(storage)
    yield AppBucket(moto_server.client(), storage.bucket, storage.prefix)
    _clear_staging(storage)


@pytest.fixture
def s3_ini(s3_app_settings, tmp_path) -> str:
    """An ini whose settings select the S3 backend (the same bucket and prefix as ``s3_data``)."""
    return write_ini(tmp_path / "s3.ini", s3_app_settings)


# --- check -----------------------------------------------------------------------------------


def test_check_on_s3_finds_every_kind_of_damage_and_repair_fixes_what_it_can(
    s3_ini, s3_data, bucket, capsys
):
    missing = s3_data.release_file("missing", "1.0")
    tampered = s3_data.release_file("tampered", "1.0", kind="sdist")
    interrupted = s3_data.release_file("interrupted", "1.0")
    stripped = s3_data.release_file("stripped", "1.0")
    healthy = s3_data.release_file("healthy", "1.0", kind="sdist")
    # A row without its object, no copy anywhere.
    bucket.delete(f"missing/{missing['filename']}")
    # Stored bytes that are not the recorded ones.
    bucket.put(f"tampered/{tampered['filename']}", b"not the sdist")
    # A crash between the commit and the publish: the bytes are still staged.
    bucket.move(f"interrupted/{interrupted['filename']}", ".staging/upload-crashed")
    # The wheel's METADATA (PEP 658) lost.
    bucket.delete(f"stripped/{stripped['filename']}.metadata")
    # An object no row mentions, and a staged leftover.
    bucket.put("orphan/orphan-1.0.tar.gz", b"left behind")
    bucket.put(".staging/upload-old", b"abandoned upload")

    # By default staged objects this young are taken for uploads in progress and left alone.
    assert extrapypi(["check", s3_ini]) == 1
    out = capsys.readouterr().out
    assert "upload-" not in out
    assert f"missing: interrupted/{interrupted['filename']}" in out
    assert (
        "5 distributions and 3 metadata files in the database, "
        "4 distributions and 2 metadata files in storage: 5 problems, 0 repaired, 5 left."
    ) in out

    # An upload a crash left half sent (added only now: moto dates every multipart upload
    # 2010-11-10, so it always looks old).
    bucket.start_upload(".staging/upload-unfinished", b"first part")

    assert extrapypi(["check", s3_ini, "--min-staged-age", "0"]) == 1
    out = capsys.readouterr().out
    assert f"missing: missing/{missing['filename']}: the database lists it" in out
    assert "cannot repair: no copy of these bytes anywhere" in out
    assert f"hash-mismatch: tampered/{tampered['filename']}: stored 13 bytes" in out
    assert f"missing: interrupted/{interrupted['filename']}" in out
    assert "a staged leftover (upload-crashed) has these bytes; --repair publishes it" in out
    assert f"missing-metadata: stripped/{stripped['filename']}.metadata" in out
    assert "orphan: orphan/orphan-1.0.tar.gz: in storage, but no database row" in out
    assert "staged: upload-old: a leftover upload of 16 bytes, unused" in out
    assert "staged: upload-unfinished: a leftover upload of 10 bytes, unused" in out
    assert "not examined" not in out
    assert "healthy" not in out
    assert (
        "5 distributions and 3 metadata files in the database, "
        "4 distributions and 2 metadata files in storage: 7 problems, 0 repaired, 7 left."
    ) in out
    # Reporting changed nothing.
    assert "orphan/orphan-1.0.tar.gz" in bucket.keys()
    assert ".staging/upload-old" in bucket.keys()
    assert bucket.pending_uploads() == [".staging/upload-unfinished"]

    # Two problems cannot be repaired: the lost object and the tampered one.
    assert extrapypi(["check", s3_ini, "--repair", "--min-staged-age", "0"]) == 1
    out = capsys.readouterr().out
    assert "7 problems, 5 repaired, 2 left." in out
    assert "published the staged leftover upload-crashed" in out
    assert _sha256(bucket.get(f"interrupted/{interrupted['filename']}")) == _sha256(
        interrupted["content"]
    )
    metadata = bucket.get(f"stripped/{stripped['filename']}.metadata")
    assert metadata.decode() == stripped["metadata"]
    assert bucket.get(f"tampered/{tampered['filename']}") == b"not the sdist"  # kept as evidence
    assert bucket.get(f"healthy/{healthy['filename']}") == healthy["content"]
    keys = bucket.keys()
    assert "orphan/orphan-1.0.tar.gz" not in keys
    assert not [key for key in keys if key.startswith(".staging/")]
    assert bucket.pending_uploads() == []

    assert extrapypi(["check", s3_ini, "--min-staged-age", "0"]) == 1
    out = capsys.readouterr().out
    assert out.count("cannot repair") == 2
    assert "2 problems, 0 repaired, 2 left." in out


def test_a_staged_copy_repairs_a_hash_mismatch_on_s3(s3_ini, s3_data, bucket, capsys):
    wheel = s3_data.release_file("fixable", "1.0")
    key = f"fixable/{wheel['filename']}"
    bucket.put(key, b"corrupted")
    bucket.put(".staging/upload-good", wheel["content"])

    assert extrapypi(["check", s3_ini, "--repair", "--min-staged-age", "0"]) == 0
    out = capsys.readouterr().out
    assert f"repaired hash-mismatch: {key}" in out
    assert "1 problem, 1 repaired, 0 left." in out
    assert bucket.get(key) == wheel["content"]
    assert bucket.keys() == [key, key + ".metadata"]

    assert extrapypi(["check", s3_ini, "--min-staged-age", "0"]) == 0
    assert capsys.readouterr().out.strip() == (
        "1 distribution and 1 metadata file in the database, "
        "1 distribution and 1 metadata file in storage: consistent."
    )


def _peak_memory(work):
    """Run ``work``; return its result and the most memory Python held meanwhile."""
    tracemalloc.start()
    try:
        result = work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def test_check_reads_s3_objects_a_chunk_at_a_time(moto_server, s3_bucket, tmp_path):
    storage = build_storage(s3_settings(moto_server, s3_bucket, f"run/{uuid.uuid4().hex[:10]}"))
    big = tmp_path / "big-1.0-py3-none-any.whl"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as wheel:
        wheel.writestr("big/data.bin", os.urandom(16 * MiB))
        wheel.writestr("big-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: big\n")
    with open(big, "rb") as source:
        staged = storage.stage(source)

    (digests, age), peak = _peak_memory(lambda: storage.inspect_staged(staged.token))
    assert digests == staged.digests
    assert 0 <= age < 600
    assert peak < 4 * MiB, f"inspect_staged: peak {peak / MiB:.1f} MiB"

    storage.publish(staged, "big/big-1.0-py3-none-any.whl")
    digests, peak = _peak_memory(lambda: storage.hash_file("big/big-1.0-py3-none-any.whl"))
    assert digests == staged.digests
    assert peak < 4 * MiB, f"hash_file: peak {peak / MiB:.1f} MiB"

    # The METADATA a repair extracts again: the wheel is spooled to disk, not read into memory.
    metadata, peak = _peak_memory(lambda: _wheel_metadata(storage, "big/big-1.0-py3-none-any.whl"))
    assert metadata == b"Metadata-Version: 2.1\nName: big\n"
    assert peak < 4 * MiB, f"METADATA extraction: peak {peak / MiB:.1f} MiB"
    storage.delete("big/big-1.0-py3-none-any.whl")
    with pytest.raises(FileNotFoundError):
        storage.inspect_staged(staged.token)


# --- export ----------------------------------------------------------------------------------


def test_export_from_s3_writes_every_file_and_the_manifest(
    s3_ini, s3_data, bucket, tmp_path, capsys
):
    s3_data.user("dev", role="developer")
    wheel = s3_data.release_file("Hello.World", "1.0", uploader="dev")
    sdist = s3_data.release_file("Hello.World", "1.0", kind="sdist", uploader="dev")
    other = s3_data.release_file("other", "2.0", kind="sdist")
    target = tmp_path / "backup"

    assert extrapypi(["export", s3_ini, str(target)]) == 0
    total = sum(len(built["content"]) for built in (wheel, sdist, other))
    assert (
        f"Exported 2 packages, 2 releases, 3 files ({total} bytes) and 1 user to {target}."
        in capsys.readouterr().out
    )
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["format"] == "extrapypi-export"
    assert manifest["problems"] == []
    assert [user["username"] for user in manifest["users"]] == ["dev"]
    files = {
        file["filename"]: file
        for package in manifest["packages"]
        for release in package["releases"]
        for file in release["files"]
    }
    assert set(files) == {wheel["filename"], sdist["filename"], other["filename"]}
    for built in (wheel, sdist, other):
        entry = files[built["filename"]]
        assert entry["sha256"] == _sha256(built["content"])
        assert _sha256((target / entry["path"]).read_bytes()) == entry["sha256"]
    wheel_entry = files[wheel["filename"]]
    metadata = (target / wheel_entry["metadata_path"]).read_bytes()
    assert metadata.decode() == wheel["metadata"]
    assert _sha256(metadata) == wheel_entry["metadata_sha256"]
    assert sorted(p.name for p in target.iterdir()) == ["files", "manifest.json"]


def test_export_from_s3_lists_a_missing_object_as_a_problem(
    s3_ini, s3_data, bucket, tmp_path, capsys
):
    kept = s3_data.release_file("kept", "1.0", kind="sdist")
    lost = s3_data.release_file("lost", "1.0", kind="sdist")
    bucket.delete(f"lost/{lost['filename']}")
    target = tmp_path / "backup"

    assert extrapypi(["export", s3_ini, str(target)]) == 1
    captured = capsys.readouterr()
    assert f"problem: lost/{lost['filename']}: missing from storage, not exported" in captured.err
    assert "Exported 2 packages, 2 releases, 1 file" in captured.out
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["problems"] == [f"lost/{lost['filename']}: missing from storage, not exported"]
    assert (target / "files" / "kept" / kept["filename"]).read_bytes() == kept["content"]
    assert not (target / "files" / "lost").exists()


# --- import ----------------------------------------------------------------------------------


def test_import_into_s3_stores_every_file_and_a_rerun_skips_them(
    s3_ini, s3_data, bucket, engine, tmp_path, capsys
):
    from dists import sdist_bytes, wheel_bytes, write

    s3_data.user("ops", "developer")
    dump = tmp_path / "dump"
    dump.mkdir()
    built = [
        wheel_bytes("Imported.Pkg", "1.0", summary="From a dump"),
        sdist_bytes("Imported.Pkg", "1.0"),
        wheel_bytes("second", "0.3"),
    ]
    for dist in built:
        write(dump, dist)

    assert extrapypi(["import", s3_ini, str(dump), "--user", "ops"]) == 0
    assert "3 imported, 0 skipped (already there), 0 refused" in capsys.readouterr().out
    expected = {
        "imported-pkg/imported_pkg-1.0-py3-none-any.whl",
        "imported-pkg/imported_pkg-1.0-py3-none-any.whl.metadata",
        "imported-pkg/imported_pkg-1.0.tar.gz",
        "second/second-0.3-py3-none-any.whl",
        "second/second-0.3-py3-none-any.whl.metadata",
    }
    assert set(bucket.keys()) == expected  # nothing left in staging
    for filename, content, metadata in built:
        directory = "second" if filename.startswith("second") else "imported-pkg"
        assert _sha256(bucket.get(f"{directory}/{filename}")) == _sha256(content)
        if filename.endswith(".whl"):
            assert bucket.get(f"{directory}/{filename}.metadata").decode() == metadata

    assert extrapypi(["import", s3_ini, str(dump), "--quiet"]) == 0
    assert "0 imported, 3 skipped (already there), 0 refused" in capsys.readouterr().out
    assert set(bucket.keys()) == expected
    assert bucket.pending_uploads() == []

    assert extrapypi(["check", s3_ini, "--min-staged-age", "0"]) == 0
    assert capsys.readouterr().out.strip() == (
        "3 distributions and 2 metadata files in the database, "
        "3 distributions and 2 metadata files in storage: consistent."
    )
