"""The storage interface: where distribution files live. Imports nothing of extrapypi's.

A backend stores bytes under keys of the form ``<normalized-name>/<filename>``, both validated
before they reach it. Writing is two-step so that the database decides: ``stage`` copies and
hashes an upload into a private temporary place, ``publish`` makes it visible under its key
(called after the database commit), ``discard`` drops it (called after an abort).
"""

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

CHUNK_SIZE = 1024 * 1024


class FileTooLarge(Exception):
    """The upload passed the size limit while streaming; nothing was kept."""

    def __init__(self, limit: int):
        super().__init__(f"larger than the limit of {limit} bytes")
        self.limit = limit


@dataclass
class Digests:
    size: int = 0
    sha256: str = ""
    blake2b_256: str = ""
    md5: str = ""


@dataclass
class StagedFile:
    """An upload copied into the backend but not yet visible; ``token`` is the backend's handle."""

    token: str
    digests: Digests
    extra: dict = field(default_factory=dict)


def copy_hashing(source: BinaryIO, write, limit: int | None = None) -> Digests:
    """Copy ``source`` to ``write`` in chunks, hashing in the same pass; stop past ``limit``."""
    sha256, blake2b = hashlib.sha256(), hashlib.blake2b(digest_size=32)
    md5 = hashlib.md5(usedforsecurity=False)  # only for legacy clients that still send it
    size = 0
    while chunk := source.read(CHUNK_SIZE):
        size += len(chunk)
        if limit is not None and size > limit:
            raise FileTooLarge(limit)
        sha256.update(chunk)
        blake2b.update(chunk)
        md5.update(chunk)
        write(chunk)
    return Digests(size, sha256.hexdigest(), blake2b.hexdigest(), md5.hexdigest())


class Storage(ABC):
    """What every backend implements; pick one with ``extrapypi.storage`` (a dotted name)."""

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: dict) -> "Storage":
        """Build the backend from the app settings (read ``extrapypi.storage.*``)."""

    @abstractmethod
    def stage(self, source: BinaryIO, limit: int | None = None) -> StagedFile:
        """Copy ``source`` into a private temporary place while hashing; raise FileTooLarge."""

    @abstractmethod
    def publish(self, staged: StagedFile, key: str) -> None:
        """Make a staged file visible under ``key`` (atomically: readers see all or nothing)."""

    @abstractmethod
    def discard(self, staged: StagedFile) -> None:
        """Drop a staged file; never fails if it is already gone."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the file; FileNotFoundError if missing."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove a published file; never fails if it is already gone."""

    @abstractmethod
    def iter_keys(self) -> Iterator[str]:
        """Every published key, for consistency checks and export."""

    @abstractmethod
    def iter_staged(self) -> Iterator[str]:
        """Tokens of staged files left behind (a crash between commit and publish)."""

    @abstractmethod
    def download_response(self, request, key: str, content_type: str):
        """A response that streams the file (or redirects to it), never reading it whole."""

    def hash_file(self, key: str) -> Digests:
        with self.open(key) as stream:
            return copy_hashing(stream, lambda chunk: None)

    def inspect_staged(self, token: str) -> tuple[Digests, float]:
        """Hash a staged leftover and give its age in seconds (``check`` finishes or drops it)."""
        raise NotImplementedError(f"{type(self).__name__} cannot inspect staged files")
