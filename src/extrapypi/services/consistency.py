"""``extrapypi check``: does storage hold exactly the files the database lists, byte for byte?

Problems found, and what ``repair`` does about each:

- ``missing``: a row whose file is not in storage. If a staged leftover has the row's sha256 (a
  crash between the commit and the publish), repair publishes it; otherwise it can only be flagged.
- ``missing-metadata``: a wheel's ``.metadata`` file (PEP 658) is gone; repair extracts it from the
  wheel again when the result matches the recorded hash.
- ``hash-mismatch``: the stored bytes differ from the recorded sha256/size. Repair publishes a
  matching staged leftover if there is one; otherwise flagged (the file is kept as evidence).
- ``orphan``: a stored file no row mentions (a crash after a deletion's commit, a copy by hand);
  repair deletes it.
- ``staged``: an upload's temporary copy older than ``min_staged_age``; repair publishes it when a
  row needs it (above), deletes it otherwise. Younger ones may belong to an upload in progress.
"""

import hashlib
import io
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import File, Package, Release
from ..storage import Digests, StagedFile, Storage
from ..storage.base import CHUNK_SIZE
from .archives import InvalidArchive, wheel_metadata
from .upstream import KEY_PREFIX as UPSTREAM_KEY_PREFIX

METADATA_SUFFIX = ".metadata"
#: Staged files younger than this may belong to an upload still in progress.
DEFAULT_MIN_STAGED_AGE = 3600


@dataclass
class Problem:
    kind: str
    key: str
    detail: str
    repaired: bool = False
    action: str = ""

    def describe(self) -> str:
        outcome = f" -> {self.action}" if self.action else ""
        return f"{self.kind}: {self.key}: {self.detail}{outcome}"


@dataclass
class CheckReport:
    #: Distribution rows (wheels, sdists) and the PEP 658 metadata files their rows expect.
    files_checked: int = 0
    metadata_checked: int = 0
    #: Keys in storage: all of them, and those that are ``.metadata`` files.
    keys_seen: int = 0
    metadata_keys_seen: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def distribution_keys_seen(self) -> int:
        return self.keys_seen - self.metadata_keys_seen

    @property
    def unresolved(self) -> list[Problem]:
        return [p for p in self.problems if not p.repaired]

    @property
    def consistent(self) -> bool:
        return not self.unresolved


@dataclass(frozen=True)
class ExpectedFile:
    key: str
    filename: str
    size: int
    sha256: str
    metadata_sha256: str | None


def expected_files(dbsession: Session) -> Iterator[ExpectedFile]:
    """Every file row with the storage key it should live under."""
    rows = dbsession.execute(
        select(
            Package.normalized_name,
            File.filename,
            File.size,
            File.sha256,
            File.metadata_sha256,
        )
        .join(Release, Release.package_id == Package.id)
        .join(File, File.release_id == Release.id)
        .order_by(Package.normalized_name, File.filename)
    )
    for normalized_name, filename, size, sha256, metadata_sha256 in rows:
        key = f"{normalized_name}/{filename}"
        yield ExpectedFile(key, filename, size, sha256, metadata_sha256)


def _wheel_metadata(storage: Storage, key: str) -> bytes | None:
    """The ``*.dist-info/METADATA`` inside a stored wheel (read as uploads read it), or None."""
    if not key.endswith(".whl"):
        return None
    try:
        with storage.open(key) as stream, _seekable(stream) as seekable:
            return wheel_metadata(key.rpartition("/")[2], seekable)
    except (OSError, InvalidArchive):
        return None


@contextmanager
def _seekable(stream) -> Iterator[BinaryIO]:
    """A zip needs seeking: spool a stream that cannot (an S3 body) to a temporary file."""
    if stream.seekable():
        yield stream
        return
    with tempfile.SpooledTemporaryFile(max_size=CHUNK_SIZE) as spool:
        shutil.copyfileobj(stream, spool, CHUNK_SIZE)
        spool.seek(0)
        yield spool


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def check_storage(
    dbsession: Session,
    storage: Storage,
    *,
    repair: bool = False,
    verify_hashes: bool = True,
    min_staged_age: float = DEFAULT_MIN_STAGED_AGE,
    progress: Callable[[], None] | None = None,
) -> CheckReport:
    """Compare the file rows with what storage holds; with ``repair``, fix what can be fixed.

    ``progress()`` is called once per distribution row checked (for a progress bar).
    """
    report = CheckReport()
    # Storage first, rows second: a file is published only after its row commits, so any key
    # listed here whose row is absent below really has no row (no race with uploads).
    stored_keys = sorted(storage.iter_keys())
    report.keys_seen = len(stored_keys)
    report.metadata_keys_seen = sum(1 for key in stored_keys if key.endswith(METADATA_SUFFIX))
    staged = _old_staged_files(storage, min_staged_age, report)
    staged_by_sha = {digests.sha256: (token, digests) for token, digests in staged.items()}
    used_tokens: set[str] = set()

    def publish_staged(expected_sha: str, key: str, problem: Problem) -> None:
        match = staged_by_sha.get(expected_sha)
        if match is None or match[0] in used_tokens:
            problem.action = "cannot repair: no copy of these bytes anywhere; restore from a backup"
            return
        token, digests = match
        used_tokens.add(token)  # reported with this row, not again as a leftover
        problem.action = f"a staged leftover ({token}) has these bytes; --repair publishes it"
        if repair:
            storage.publish(StagedFile(token, digests), key)
            problem.repaired = True
            problem.action = f"published the staged leftover {token}"

    expected_keys: set[str] = set()
    for expected in expected_files(dbsession):
        report.files_checked += 1
        if progress is not None:
            progress()
        expected_keys.add(expected.key)
        if not storage.exists(expected.key):
            problem = Problem("missing", expected.key, "the database lists it, storage lacks it")
            report.problems.append(problem)
            publish_staged(expected.sha256, expected.key, problem)
        elif verify_hashes:
            digests = storage.hash_file(expected.key)
            if digests.sha256 != expected.sha256 or digests.size != expected.size:
                problem = Problem(
                    "hash-mismatch",
                    expected.key,
                    f"stored {digests.size} bytes sha256 {digests.sha256}, the database says "
                    f"{expected.size} bytes sha256 {expected.sha256}",
                )
                report.problems.append(problem)
                publish_staged(expected.sha256, expected.key, problem)
        if expected.metadata_sha256:
            report.metadata_checked += 1
            metadata_key = expected.key + METADATA_SUFFIX
            expected_keys.add(metadata_key)
            if not storage.exists(metadata_key):
                problem = Problem("missing-metadata", metadata_key, "the wheel's METADATA is gone")
                report.problems.append(problem)
                _restore_metadata(storage, expected, metadata_key, problem, repair)

    for key in stored_keys:
        if key in expected_keys or key.startswith(UPSTREAM_KEY_PREFIX):
            continue  # cached upstream files are the upstream cache's (``upstream prune``)
        problem = Problem("orphan", key, "in storage, but no database row mentions it")
        report.problems.append(problem)
        if repair:
            storage.delete(key)
            problem.repaired = True
            problem.action = "deleted"
        else:
            problem.action = "--repair deletes it"

    for token, digests in staged.items():
        if token in used_tokens:
            continue
        problem = Problem("staged", token, f"a leftover upload of {digests.size} bytes, unused")
        report.problems.append(problem)
        if repair:
            storage.discard(StagedFile(token, digests))
            problem.repaired = True
            problem.action = "deleted"
        else:
            problem.action = "--repair deletes it"
    return report


def _old_staged_files(storage: Storage, min_age: float, report: CheckReport) -> dict[str, Digests]:
    staged: dict[str, Digests] = {}
    for token in storage.iter_staged():
        try:
            digests, age = storage.inspect_staged(token)
        except FileNotFoundError:
            continue  # published or discarded meanwhile
        except NotImplementedError as error:
            report.problems.append(Problem("staged", token, str(error), action="not examined"))
            continue
        if age >= min_age:
            staged[token] = digests
    return staged


def _restore_metadata(
    storage: Storage, expected: ExpectedFile, metadata_key: str, problem: Problem, repair: bool
) -> None:
    content = _wheel_metadata(storage, expected.key)
    if content is None or _sha256(content) != expected.metadata_sha256:
        problem.action = "cannot repair: the wheel's METADATA does not match the recorded hash"
        return
    problem.action = "--repair extracts it from the wheel again"
    if repair:
        storage.publish(storage.stage(io.BytesIO(content)), metadata_key)
        problem.repaired = True
        problem.action = "extracted again from the wheel"
