"""Files in an S3-compatible object store (AWS S3, MinIO, Ceph RGW, Cloudflare R2, ...).

Uploads stream into the store under ``<prefix>.staging/`` while they are hashed: one PUT for a
small file, a multipart upload for a large one, holding one part in memory at a time. Publishing
(after the database commit) is a server-side copy to ``<prefix><name>/<filename>`` followed by
the removal of the staged object; the bytes never pass through the app again. Credentials come
only from boto3's standard chain (environment, shared profile, instance or pod role).
"""

import logging
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from typing import BinaryIO

from pyramid.httpexceptions import (
    HTTPFound,
    HTTPNotFound,
    HTTPNotModified,
    HTTPPreconditionFailed,
    HTTPRequestRangeNotSatisfiable,
)
from pyramid.response import Response
from pyramid.settings import asbool

from .base import CHUNK_SIZE, Digests, StagedFile, Storage, check_key, copy_hashing
from .disposition import attachment

try:
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError("the s3 storage backend needs boto3: pip install 'extrapypi[s3]'") from error

STAGING = ".staging/"
PART_SIZE = 8 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's floor for every part but the last
MAX_COPY_OBJECT = 5 * 1024**3  # CopyObject's ceiling; larger objects need a multipart copy
MISSING = {"404", "NoSuchKey", "NotFound"}
#: S3 keys hold 1024 bytes: the prefix, a project name (200), "/", a filename with ".metadata" (255)
MAX_PREFIX_BYTES = 512

log = logging.getLogger(__name__)


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _age(moment: datetime) -> float:
    """Seconds since ``moment`` (S3 times are whole seconds, so never below zero)."""
    return max(0.0, (datetime.now(UTC) - moment).total_seconds())


def _seconds(value) -> int:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        seconds = 0
    if not 1 <= seconds <= 7 * 24 * 3600:
        raise ValueError(
            f"extrapypi.storage.url_expiry is {value!r}: give the seconds a download URL stays "
            "valid, from 1 to 604800 (7 days, the most S3 accepts)"
        )
    return seconds


class _ObjectWriter:
    """Writes one object: a single PUT when it fits in one part, else a multipart upload."""

    def __init__(self, client, bucket: str, key: str, part_size: int):
        self.client = client
        self.bucket = bucket
        self.key = key
        self.part_size = part_size
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict] = []

    def write(self, chunk: bytes) -> None:
        self.buffer += chunk
        if len(self.buffer) >= self.part_size:
            self._upload_part()

    def _upload_part(self) -> None:
        if self.upload_id is None:
            created = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key)
            self.upload_id = created["UploadId"]
        number = len(self.parts) + 1
        answer = self.client.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=self.buffer,
        )
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        self.buffer = bytearray()

    def finish(self) -> None:
        if self.upload_id is None:
            self.client.put_object(Bucket=self.bucket, Key=self.key, Body=self.buffer)
            return
        if self.buffer:
            self._upload_part()
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )

    def abort(self) -> None:
        if self.upload_id is not None:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )


class _BodyIterator:
    """A WSGI app_iter over an S3 body: chunks as they arrive, the connection freed on close."""

    def __init__(self, body, chunk_size: int = CHUNK_SIZE):
        self.body = body
        self.chunk_size = chunk_size

    def __iter__(self) -> Iterator[bytes]:
        return self.body.iter_chunks(self.chunk_size)

    def close(self) -> None:
        self.body.close()


class S3Storage(Storage):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client=None,
        region: str | None = None,
        endpoint_url: str | None = None,
        addressing_style: str = "auto",
        redirect: bool = True,
        url_expiry: int = 300,
        part_size: int = PART_SIZE,
    ):
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"the multipart part size must be at least {MIN_PART_SIZE} bytes")
        prefix = prefix.strip("/")
        if len(prefix.encode()) >= MAX_PREFIX_BYTES:
            raise ValueError(
                f"extrapypi.storage.prefix is too long: less than {MAX_PREFIX_BYTES} bytes, so "
                "that every key stays within S3's 1024"
            )
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.redirect = redirect
        self.url_expiry = url_expiry
        self.part_size = part_size
        self.page_size = 1000  # objects per listing request (S3's maximum)
        self.copy_limit = MAX_COPY_OBJECT  # from this size on, publish copies part by part
        self.copy_part_size = 256 * 1024**2
        self.client = client or boto3.session.Session().client(
            "s3",
            region_name=region or None,
            endpoint_url=endpoint_url or None,
            config=Config(
                s3={"addressing_style": addressing_style},
                signature_version="s3v4",
                retries={"mode": "standard", "max_attempts": 5},
                # Checksums only where S3 requires them: many S3-compatible stores reject
                # the CRC headers boto3 adds by default since 1.36.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    @classmethod
    def from_settings(cls, settings: dict) -> "S3Storage":
        bucket = settings.get("extrapypi.storage.bucket", "").strip()
        if not bucket:
            raise ValueError("extrapypi.storage.bucket must name the bucket that holds the files")
        style = settings.get("extrapypi.storage.addressing_style", "auto").strip() or "auto"
        if style not in ("auto", "path", "virtual"):
            raise ValueError(
                f"extrapypi.storage.addressing_style is {style!r}: use auto, path or virtual"
            )
        return cls(
            bucket,
            settings.get("extrapypi.storage.prefix", ""),
            region=settings.get("extrapypi.storage.region", "").strip() or None,
            endpoint_url=settings.get("extrapypi.storage.endpoint_url", "").strip() or None,
            addressing_style=style,
            redirect=asbool(settings.get("extrapypi.storage.redirect", True)),
            url_expiry=_seconds(settings.get("extrapypi.storage.url_expiry", 300)),
        )

    def object_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _staged_key(self, token: str) -> str:
        if not token or "/" in token or token.startswith("."):
            raise ValueError(f"not a staging token: {token!r}")
        return f"{self.prefix}{STAGING}{token}"

    def stage(self, source: BinaryIO, limit: int | None = None) -> StagedFile:
        token = f"upload-{uuid.uuid4().hex}"
        writer = _ObjectWriter(self.client, self.bucket, self._staged_key(token), self.part_size)
        try:
            digests = copy_hashing(source, writer.write, limit)
            writer.finish()
        except BaseException:
            try:
                writer.abort()
            except Exception:  # keep the upload's own error; the orphan shows in iter_staged
                log.warning("could not abort the multipart upload of %s", token, exc_info=True)
            raise
        return StagedFile(token=token, digests=digests)

    def publish(self, staged: StagedFile, key: str) -> None:
        source = {"Bucket": self.bucket, "Key": self._staged_key(staged.token)}
        target = self.object_key(key)
        if staged.digests.size < self.copy_limit:
            self.client.copy_object(CopySource=source, Bucket=self.bucket, Key=target)
        else:
            part = self.copy_part_size
            config = TransferConfig(
                multipart_threshold=part, multipart_chunksize=part, use_threads=False
            )
            self.client.copy(source, self.bucket, target, Config=config)
        self.client.delete_object(**source)

    def discard(self, staged: StagedFile) -> None:
        """Drop the staged object, and any multipart upload a crash left under its key."""
        staged_key = self._staged_key(staged.token)
        self.client.delete_object(Bucket=self.bucket, Key=staged_key)
        pending = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=staged_key)
        for upload in pending.get("Uploads", ()):
            if upload["Key"] == staged_key:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=staged_key, UploadId=upload["UploadId"]
                )

    def open(self, key: str) -> BinaryIO:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as error:
            if _error_code(error) in MISSING:
                raise FileNotFoundError(key) from error
            raise
        return answer["Body"]

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as error:
            if _error_code(error) in MISSING:
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def _list(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": self.page_size}
        ):
            for item in page.get("Contents", ()):
                yield item["Key"][len(prefix) :]

    def iter_keys(self) -> Iterator[str]:
        for name in self._list(self.prefix):
            try:
                yield check_key(name)
            except ValueError:
                continue  # the staging area, or an object extrapypi did not write

    def iter_staged(self) -> Iterator[str]:
        """Staged objects, then multipart uploads a crashed process never finished."""
        staging = self.prefix + STAGING
        yield from self._list(staging)
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=staging):
            for upload in page.get("Uploads", ()):
                yield upload["Key"][len(staging) :]

    def inspect_staged(self, token: str) -> tuple[Digests, float]:
        """Hash a staged object as it streams by; age from its LastModified.

        An upload a crash left unfinished has no object, only parts: its digests stay empty (no
        row can match them), its size is the parts' total and its age counts from its start.
        """
        staged_key = self._staged_key(token)
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=staged_key)
        except ClientError as error:
            if _error_code(error) not in MISSING:
                raise
            return self._inspect_unfinished(token, staged_key)
        with closing(answer["Body"]) as body:
            digests = copy_hashing(body, lambda chunk: None)
        return digests, _age(answer["LastModified"])

    def _inspect_unfinished(self, token: str, staged_key: str) -> tuple[Digests, float]:
        pending = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=staged_key)
        uploads = [u for u in pending.get("Uploads", ()) if u["Key"] == staged_key]
        if not uploads:
            raise FileNotFoundError(token)  # published or discarded meanwhile
        size = 0
        paginator = self.client.get_paginator("list_parts")
        for upload in uploads:
            for page in paginator.paginate(
                Bucket=self.bucket, Key=staged_key, UploadId=upload["UploadId"]
            ):
                size += sum(part["Size"] for part in page.get("Parts", ()))
        return Digests(size=size), _age(min(u["Initiated"] for u in uploads))

    def download_response(self, request, key: str, content_type: str):
        filename = key.rpartition("/")[2]
        disposition = attachment(filename)
        if self.redirect:
            url = self.client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": self.object_key(key),
                    "ResponseContentType": content_type,
                    "ResponseContentDisposition": disposition,
                },
                ExpiresIn=self.url_expiry,
            )
            response = HTTPFound(location=url)
            response.cache_control = "no-store"  # the URL expires; never cache the redirect
            return response
        return self._stream(request, key, content_type, disposition)

    def _stream(self, request, key: str, content_type: str, disposition: str) -> Response:
        """Pass the object through, with conditional and Range requests answered by the store."""
        params = {"Bucket": self.bucket, "Key": self.object_key(key)}
        headers = request.headers
        if "Range" in headers and "If-Range" not in headers:
            params["Range"] = headers["Range"]
        if "If-None-Match" in headers:
            params["IfNoneMatch"] = headers["If-None-Match"]
        elif request.if_modified_since is not None:
            params["IfModifiedSince"] = request.if_modified_since
        head = request.method == "HEAD"
        try:
            answer = (self.client.head_object if head else self.client.get_object)(**params)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = _error_code(error)
            if status == 304 or code == "304":
                etag = error.response["ResponseMetadata"].get("HTTPHeaders", {}).get("etag")
                return HTTPNotModified(headers={"ETag": etag} if etag else {})
            if status == 416 or code == "InvalidRange":
                return HTTPRequestRangeNotSatisfiable()
            if status == 412:
                return HTTPPreconditionFailed()
            if code in MISSING:
                return HTTPNotFound()
            raise
        response = Response(
            status=206 if answer.get("ContentRange") else 200,
            content_type=content_type,
            charset=None,
            app_iter=[] if head else _BodyIterator(answer["Body"]),
        )
        response.content_length = answer["ContentLength"]
        if answer.get("ETag"):
            response.headers["ETag"] = answer["ETag"]
        response.headers["Accept-Ranges"] = "bytes"
        response.headers["Content-Disposition"] = disposition
        response.last_modified = answer.get("LastModified")
        if answer.get("ContentRange"):
            response.headers["Content-Range"] = answer["ContentRange"]
        return response
