"""The S3 backend against a real S3-compatible server process (moto, over HTTP with boto3)."""

import hashlib
import io
import os
import tracemalloc
import urllib.error
import urllib.request
import uuid

import pytest
import webtest
from conftest import s3_settings
from pyramid.request import Request
from sqlalchemy import select

from extrapypi.models import File
from extrapypi.services.packages import (
    add_file,
    delete_file,
    delete_package,
    get_file,
    get_package,
    get_release,
    metadata_key,
    storage_key,
)
from extrapypi.storage import FileTooLarge, StagedFile, build_storage
from extrapypi.storage.base import Digests
from extrapypi.storage.s3 import MIN_PART_SIZE, S3Storage

MiB = 1024 * 1024


def digests_of(content: bytes) -> Digests:
    return Digests(
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        blake2b_256=hashlib.blake2b(content, digest_size=32).hexdigest(),
        md5=hashlib.md5(content).hexdigest(),
    )


class Bucket:
    """What is really in the bucket under one prefix, read with a separate client."""

    def __init__(self, client, name: str, prefix: str):
        self.client = client
        self.name = name
        self.prefix = prefix

    def objects(self) -> list[str]:
        answer = self.client.list_objects_v2(Bucket=self.name, Prefix=self.prefix + "/")
        return sorted(o["Key"][len(self.prefix) + 1 :] for o in answer.get("Contents", ()))

    def pending_uploads(self) -> list[str]:
        answer = self.client.list_multipart_uploads(Bucket=self.name, Prefix=self.prefix + "/")
        return [u["Key"] for u in answer.get("Uploads", ())]

    def put(self, key: str, body: bytes = b"x") -> None:
        self.client.put_object(Bucket=self.name, Key=f"{self.prefix}/{key}", Body=body)

    def head(self, key: str) -> dict:
        return self.client.head_object(Bucket=self.name, Key=f"{self.prefix}/{key}")


@pytest.fixture
def prefix() -> str:
    return f"run/{uuid.uuid4().hex[:10]}"


@pytest.fixture
def bucket(moto_server, s3_bucket, prefix) -> Bucket:
    return Bucket(moto_server.client(), s3_bucket, prefix)


@pytest.fixture
def storage(moto_server, s3_bucket, prefix) -> S3Storage:
    return build_storage(s3_settings(moto_server, s3_bucket, prefix))


@pytest.fixture
def small_parts(moto_server, s3_bucket, prefix) -> S3Storage:
    """Multipart from 5 MiB on (S3's smallest part), so big-file tests stay quick."""
    storage = build_storage(s3_settings(moto_server, s3_bucket, prefix))
    storage.part_size = MIN_PART_SIZE
    return storage


class FailingSource(io.RawIOBase):
    """Yields ``good`` bytes, then breaks like a client hanging up mid-upload."""

    def __init__(self, good: int):
        self.remaining = good

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.remaining <= 0:
            raise OSError("client went away")
        n = min(len(buffer), self.remaining)
        buffer[:n] = b"z" * n
        self.remaining -= n
        return n


def test_build_storage_picks_s3_by_short_name_and_reads_settings(moto_server, s3_bucket):
    storage = build_storage(
        s3_settings(moto_server, s3_bucket, "/team/", **{"extrapypi.storage.url_expiry": "60"})
    )
    assert isinstance(storage, S3Storage)
    assert storage.prefix == "team/"
    assert storage.url_expiry == 60
    assert storage.redirect is True
    assert storage.client.meta.endpoint_url == moto_server.url
    assert storage.object_key("demo/demo-1.0.tar.gz") == "team/demo/demo-1.0.tar.gz"
    # moto does not enforce expiry; S3, MinIO and R2 do, from this signed parameter.
    redirect = storage.download_response(None, "demo/demo-1.0.tar.gz", "application/gzip")
    assert "X-Amz-Expires=60&" in redirect.location


def test_settings_errors_say_what_to_fix(moto_server):
    with pytest.raises(ValueError, match="extrapypi.storage.bucket must name the bucket"):
        build_storage({"extrapypi.storage": "s3"})
    with pytest.raises(ValueError, match="url_expiry is 'soon'"):
        build_storage(
            {"extrapypi.storage": "s3", "extrapypi.storage.bucket": "b"}
            | {"extrapypi.storage.url_expiry": "soon"}
        )
    with pytest.raises(ValueError, match="use auto, path or virtual"):
        build_storage(
            {"extrapypi.storage": "s3", "extrapypi.storage.bucket": "b"}
            | {"extrapypi.storage.addressing_style": "sideways"}
        )


def test_stage_hashes_and_hides_the_file_until_publish(storage, bucket):
    content = b"wheel bytes " * 1000
    staged = storage.stage(io.BytesIO(content))

    assert staged.digests == digests_of(content)
    assert list(storage.iter_staged()) == [staged.token]
    assert bucket.objects() == [f".staging/{staged.token}"]
    assert not storage.exists("demo/demo-1.0.tar.gz")
    assert list(storage.iter_keys()) == []

    storage.publish(staged, "demo/demo-1.0.tar.gz")

    assert bucket.objects() == ["demo/demo-1.0.tar.gz"]
    assert list(storage.iter_staged()) == []
    assert list(storage.iter_keys()) == ["demo/demo-1.0.tar.gz"]
    assert storage.exists("demo/demo-1.0.tar.gz")
    with storage.open("demo/demo-1.0.tar.gz") as stream:
        assert stream.read() == content
    assert storage.hash_file("demo/demo-1.0.tar.gz") == staged.digests


def test_discard_leaves_nothing_and_may_repeat(storage, bucket):
    staged = storage.stage(io.BytesIO(b"abc"))
    storage.discard(staged)
    storage.discard(staged)
    assert bucket.objects() == []
    assert list(storage.iter_staged()) == []


def test_file_too_large_leaves_nothing(storage, bucket):
    with pytest.raises(FileTooLarge):
        storage.stage(io.BytesIO(b"x" * (2 * MiB + 1)), limit=2 * MiB)
    assert bucket.objects() == []
    assert bucket.pending_uploads() == []


def test_file_too_large_past_the_first_part_aborts_the_multipart_upload(small_parts, bucket):
    with pytest.raises(FileTooLarge):
        small_parts.stage(io.BytesIO(b"x" * (12 * MiB)), limit=11 * MiB)
    assert bucket.objects() == []
    assert bucket.pending_uploads() == []


def test_a_broken_upload_stream_aborts_the_multipart_upload(small_parts, bucket):
    with pytest.raises(OSError, match="client went away"):
        small_parts.stage(io.BufferedReader(FailingSource(7 * MiB)))
    assert bucket.objects() == []
    assert bucket.pending_uploads() == []


def test_large_file_goes_multipart_with_memory_bounded_by_one_part(small_parts, bucket, tmp_path):
    size = 20 * MiB
    path = tmp_path / "big.whl"
    sha256 = hashlib.sha256()
    with open(path, "wb") as out:
        for _ in range(size // MiB):
            block = os.urandom(MiB)
            sha256.update(block)
            out.write(block)

    tracemalloc.start()
    try:
        with open(path, "rb") as source:
            staged = small_parts.stage(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert staged.digests.size == size
    assert staged.digests.sha256 == sha256.hexdigest()
    # One 5 MiB part buffer plus one 1 MiB read: far below the 20 MiB file.
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB"
    # A multipart object's ETag ends in -<number of parts>.
    assert bucket.head(f".staging/{staged.token}")["ETag"].strip('"').endswith("-4")

    small_parts.publish(staged, "big/big-1.0-py3-none-any.whl")
    assert bucket.objects() == ["big/big-1.0-py3-none-any.whl"]
    assert small_parts.hash_file("big/big-1.0-py3-none-any.whl") == staged.digests


def test_files_past_the_copy_limit_are_published_by_multipart_copy(small_parts, bucket):
    small_parts.copy_limit = 1  # stands in for CopyObject's 5 GB ceiling
    small_parts.copy_part_size = MIN_PART_SIZE
    content = os.urandom(12 * MiB)
    staged = small_parts.stage(io.BytesIO(content))

    small_parts.publish(staged, "big/big-1.0.tar.gz")

    assert bucket.objects() == ["big/big-1.0.tar.gz"]
    assert bucket.head("big/big-1.0.tar.gz")["ETag"].strip('"').endswith("-3")
    assert small_parts.hash_file("big/big-1.0.tar.gz") == digests_of(content)


def test_delete_removes_the_object_and_ignores_a_missing_one(storage, bucket):
    storage.publish(storage.stage(io.BytesIO(b"1")), "demo/demo-1.0.tar.gz")
    storage.delete("demo/demo-1.0.tar.gz")
    storage.delete("demo/demo-1.0.tar.gz")
    assert bucket.objects() == []
    assert not storage.exists("demo/demo-1.0.tar.gz")
    with pytest.raises(FileNotFoundError):
        storage.open("demo/demo-1.0.tar.gz")


def test_iter_keys_pages_through_the_listing_and_skips_foreign_objects(storage, bucket):
    storage.page_size = 2
    keys = [f"pkg{i}/pkg{i}-1.0.tar.gz" for i in range(5)]
    for key in keys:
        bucket.put(key)
    bucket.put("README")  # not <name>/<filename>
    bucket.put("pkg0/.hidden")
    storage.stage(io.BytesIO(b"staged"))
    assert list(storage.iter_keys()) == keys


def test_iter_staged_finds_an_upload_a_crash_left_unfinished(storage, bucket):
    token = "upload-crashed"
    storage.client.create_multipart_upload(
        Bucket=storage.bucket, Key=f"{storage.prefix}.staging/{token}"
    )
    assert list(storage.iter_staged()) == [token]

    storage.discard(StagedFile(token=token, digests=Digests()))

    assert list(storage.iter_staged()) == []
    assert bucket.pending_uploads() == []


def test_keys_that_could_escape_the_layout_are_refused(storage):
    staged = storage.stage(io.BytesIO(b"1"))
    for key in ("../etc/passwd", "demo", ".staging/x", "demo/.x", "a/b/c"):
        with pytest.raises(ValueError, match="not a storage key"):
            storage.publish(staged, key)
    with pytest.raises(ValueError, match="not a staging token"):
        storage.discard(StagedFile(token="../x", digests=Digests()))


# --- downloads -----------------------------------------------------------------------------------


def wsgi(storage: S3Storage, key: str, content_type: str):
    """A WSGI app answering every request with the backend's download response."""

    def app(environ, start_response):
        request = Request(environ)
        return storage.download_response(request, key, content_type)(environ, start_response)

    return webtest.TestApp(app)


def fetch(url: str):
    """GET with urllib; (status, headers looked up case-insensitively, body)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_download_redirects_to_a_presigned_url_that_serves_the_file(storage, moto_server):
    content = os.urandom(300_000)
    storage.publish(storage.stage(io.BytesIO(content)), "demo/demo-1.0-py3-none-any.whl")

    response = wsgi(storage, "demo/demo-1.0-py3-none-any.whl", "application/zip").get(
        "/packages/demo/1.0/demo-1.0-py3-none-any.whl", status=302
    )

    location = response.headers["Location"]
    assert location.startswith(moto_server.url + "/")
    assert "X-Amz-Signature=" in location
    assert "X-Amz-Expires=300" in location
    assert response.headers["Cache-Control"] == "no-store"
    status, headers, body = fetch(location)
    assert status == 200
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(content).hexdigest()
    assert headers["Content-Type"] == "application/zip"
    assert headers["Content-Disposition"] == 'attachment; filename="demo-1.0-py3-none-any.whl"'


def test_a_tampered_presigned_url_is_refused_by_the_store(storage):
    storage.publish(storage.stage(io.BytesIO(b"secret")), "demo/demo-1.0.tar.gz")
    location = storage.download_response(None, "demo/demo-1.0.tar.gz", "application/gzip")
    tampered = location.location.replace("demo-1.0.tar.gz", "demo-2.0.tar.gz")
    status, _, body = fetch(tampered)
    assert status == 403
    assert b"secret" not in body


@pytest.fixture
def streaming(moto_server, s3_bucket, prefix) -> S3Storage:
    settings = s3_settings(moto_server, s3_bucket, prefix, **{"extrapypi.storage.redirect": "no"})
    return build_storage(settings)


def test_streaming_download_passes_the_bytes_through_the_app(streaming):
    content = os.urandom(3 * MiB + 17)
    streaming.publish(streaming.stage(io.BytesIO(content)), "demo/demo-1.0.tar.gz")
    app = wsgi(streaming, "demo/demo-1.0.tar.gz", "application/gzip")

    full = app.get("/f", status=200)
    assert full.body == content
    assert full.headers["Content-Length"] == str(len(content))
    assert full.headers["Content-Type"] == "application/gzip"
    assert full.headers["Accept-Ranges"] == "bytes"
    assert full.headers["Content-Disposition"] == 'attachment; filename="demo-1.0.tar.gz"'
    etag = full.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')

    part = app.get("/f", headers={"Range": "bytes=100-199"}, status=206)
    assert part.body == content[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(content)}"
    assert part.headers["Content-Length"] == "100"

    not_modified = app.get("/f", headers={"If-None-Match": etag}, status=304)
    assert not_modified.headers["ETag"] == etag
    changed = app.get("/f", headers={"If-None-Match": '"other"'}, status=200)
    assert changed.body == content

    head = app.head("/f", status=200)
    assert head.headers["Content-Length"] == str(len(content))
    assert head.body == b""

    app.get("/f", headers={"Range": f"bytes={len(content) + 10}-"}, status=416)


def test_streaming_download_of_a_missing_object_is_a_404(streaming):
    wsgi(streaming, "demo/gone-1.0.tar.gz", "application/gzip").get("/f", status=404)


def test_streaming_download_holds_one_chunk_at_a_time(streaming, tmp_path):
    size = 16 * MiB
    source = tmp_path / "big.tar.gz"
    with open(source, "wb") as out:
        for _ in range(size // MiB):
            out.write(os.urandom(MiB))
    with open(source, "rb") as stream:
        staged = streaming.stage(stream)
    streaming.publish(staged, "big/big-1.0.tar.gz")

    environ = Request.blank("/f").environ
    statuses = []
    tracemalloc.start()
    try:
        response = streaming.download_response(
            Request(environ), "big/big-1.0.tar.gz", "application/gzip"
        )
        body = response(environ, lambda status, headers: statuses.append(status))
        sha256, received = hashlib.sha256(), 0
        for chunk in body:
            sha256.update(chunk)
            received += len(chunk)
        body.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert statuses == ["200 OK"]
    assert received == size
    assert sha256.hexdigest() == staged.digests.sha256
    assert peak < 4 * MiB, f"peak {peak / MiB:.1f} MiB"


# --- the app on the S3 backend: publishing follows the transaction --------------------------------


@pytest.fixture
def app_bucket(s3_data, moto_server, s3_bucket) -> Bucket:
    return Bucket(moto_server.client(), s3_bucket, s3_data.storage.prefix.rstrip("/"))


def test_a_committed_upload_is_published_with_its_metadata(s3_data, app_bucket):
    stored = s3_data.release_file("demo", "1.0")
    filename = stored["filename"]

    assert app_bucket.objects() == [f"demo/{filename}", f"demo/{filename}.metadata"]
    tm, dbsession = s3_data.session()
    with tm:
        file = get_file(dbsession, filename)
        assert s3_data.storage.hash_file(storage_key(file.release.package, filename)).sha256 == (
            file.sha256
        )
        metadata = s3_data.storage.open(metadata_key(file.release.package, filename)).read()
        assert hashlib.sha256(metadata).hexdigest() == file.metadata_sha256


def test_an_aborted_upload_leaves_no_object(s3_data, app_bucket):
    s3_data.release_file("demo", "1.0")
    before = app_bucket.objects()
    tm, dbsession = s3_data.session()
    tm.begin()
    release = get_release(dbsession, get_package(dbsession, "demo"), "1.0")
    add_file(
        dbsession,
        s3_data.storage,
        tm.get(),
        release,
        filename="demo-1.0.tar.gz",
        filetype="sdist",
        python_version="source",
        staged=s3_data.storage.stage(io.BytesIO(b"sdist bytes")),
        core_metadata=None,
        uploader=None,
    )
    tm.abort()

    assert app_bucket.objects() == before
    assert list(s3_data.storage.iter_staged()) == []


def test_a_commit_that_fails_leaves_no_object(s3_data, app_bucket):
    first = s3_data.release_file("demo", "1.0")
    before = app_bucket.objects()
    tm, dbsession = s3_data.session()
    tm.begin()
    release = get_release(dbsession, get_package(dbsession, "demo"), "1.0")
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        add_file(
            dbsession,
            s3_data.storage,
            tm.get(),
            release,
            filename=first["filename"],  # already taken: the flush fails
            filetype="bdist_wheel",
            python_version="py3",
            staged=s3_data.storage.stage(io.BytesIO(b"impostor")),
            core_metadata=b"Metadata-Version: 2.1\n",
            uploader=None,
        )
    tm.abort()

    assert app_bucket.objects() == before
    assert list(s3_data.storage.iter_staged()) == []
    assert s3_data.storage.open(f"demo/{first['filename']}").read() == first["content"]


def test_deleting_a_file_removes_its_objects_only_after_commit(s3_data, app_bucket):
    filename = s3_data.release_file("demo", "1.0")["filename"]

    tm, dbsession = s3_data.session()
    tm.begin()
    delete_file(dbsession, s3_data.storage, tm.get(), get_file(dbsession, filename), None)
    tm.abort()
    assert app_bucket.objects() == [f"demo/{filename}", f"demo/{filename}.metadata"]

    tm, dbsession = s3_data.session()
    with tm:
        delete_file(dbsession, s3_data.storage, tm.get(), get_file(dbsession, filename), None)
    assert app_bucket.objects() == []
    tm, dbsession = s3_data.session()
    with tm:
        assert dbsession.scalars(select(File)).all() == []


def test_deleting_a_package_removes_every_object_after_commit(s3_data, app_bucket):
    s3_data.release_file("demo", "1.0")
    s3_data.release_file("demo", "2.0", kind="sdist")
    s3_data.release_file("other", "1.0")
    assert len(app_bucket.objects()) == 5  # two wheels with their METADATA, one sdist

    tm, dbsession = s3_data.session()
    with tm:
        delete_package(dbsession, s3_data.storage, tm.get(), get_package(dbsession, "demo"), None)

    assert app_bucket.objects() == [
        "other/other-1.0-py3-none-any.whl",
        "other/other-1.0-py3-none-any.whl.metadata",
    ]


def test_the_download_response_of_a_stored_file_redirects_to_its_bytes(s3_data, s3_app):
    stored = s3_data.release_file("demo", "1.0")
    filename = stored["filename"]
    request = Request.blank(f"/packages/demo/1.0/{filename}")
    request.registry = s3_app.registry

    response = s3_data.storage.download_response(
        request, f"demo/{filename}", "application/octet-stream"
    )

    assert response.status_code == 302
    status, _, body = fetch(response.location)
    assert status == 200
    tm, dbsession = s3_data.session()
    with tm:
        assert hashlib.sha256(body).hexdigest() == get_file(dbsession, filename).sha256
