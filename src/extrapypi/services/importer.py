"""Import a directory of distributions (a pypiserver ``packages`` folder, a plain dump).

Each file goes through :func:`uploads.ingest` with its metadata read from the file itself, in a
transaction of its own: a refused or broken file leaves nothing behind, an identical file already
in the index is skipped, so running the import twice changes nothing the second time.
"""

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import transaction
from sqlalchemy.orm import sessionmaker

from ..models import get_tm_session
from ..storage import Storage, watch_publishing
from .accounts import get_user
from .consistency import METADATA_SUFFIX
from .uploads import ConcurrentUpload, Limits, UploadRefused, ingest


class ImportError_(Exception):
    """The import cannot start (unknown user, missing directory); the message says why."""


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    #: ``(path relative to the directory, reason)``
    refused: list[tuple[str, str]] = field(default_factory=list)
    #: ``<wheel>.metadata`` files beside their wheel (an export writes them): the wheel's own
    #: METADATA is extracted again on import, so they are passed over, not refused.
    metadata_files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{len(self.imported)} imported, {len(self.duplicates)} skipped (already there), "
            f"{len(self.refused)} refused"
        )
        if self.metadata_files:
            text += f", {len(self.metadata_files)} .metadata files passed over"
        return text


def iter_candidates(directory: str) -> Iterator[str]:
    """Every regular file under ``directory``, sorted, hidden files and directories left out."""
    for current, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = os.path.join(current, name)
            if not name.startswith(".") and os.path.isfile(path):
                yield path


def is_derived_metadata(path: str) -> bool:
    """``x.whl.metadata`` beside ``x.whl``: PEP 658 metadata, not a distribution."""
    return path.endswith(METADATA_SUFFIX) and os.path.isfile(path[: -len(METADATA_SUFFIX)])


def import_directory(
    session_factory: sessionmaker,
    storage: Storage,
    directory: str,
    *,
    limits: Limits,
    username: str | None = None,
    progress: Callable[[str | None], None] | None = None,
    candidates: list[str] | None = None,
) -> ImportReport:
    """Import every distribution under ``directory``; ``username`` becomes uploader/maintainer.

    ``progress(line)`` hears of each file imported or skipped, ``progress(None)`` of a refusal:
    refusals are in the report, for the caller to print once. ``candidates`` may list the files
    (``iter_candidates``).
    """
    if not os.path.isdir(directory):
        raise ImportError_(f"not a directory: {directory}")
    if username is not None:
        tm = transaction.TransactionManager(explicit=True)
        with tm:
            if get_user(get_tm_session(session_factory, tm), username) is None:
                raise ImportError_(f"unknown user {username!r}")
    report = ImportReport()
    for path in candidates if candidates is not None else iter_candidates(directory):
        relative = os.path.relpath(path, directory)
        if is_derived_metadata(path):
            report.metadata_files.append(relative)
            continue
        outcome = _import_file(session_factory, storage, path, limits, username)
        if outcome is True:
            report.imported.append(relative)
        elif outcome is False:
            report.duplicates.append(relative)
        else:
            report.refused.append((relative, outcome))
        if progress is not None:
            label = {True: "imported", False: "skipped, already there"}
            progress(f"{relative}: {label[outcome]}" if isinstance(outcome, bool) else None)
    return report


def _import_file(
    session_factory: sessionmaker,
    storage: Storage,
    path: str,
    limits: Limits,
    username: str | None,
    attempts: int = 3,
) -> bool | str:
    """True: imported; False: identical file already there; a string: why it was refused."""
    for _attempt in range(attempts):
        tm = transaction.TransactionManager(explicit=True)
        try:
            with tm, open(path, "rb") as stream:
                unpublished = watch_publishing(tm.get())
                dbsession = get_tm_session(session_factory, tm)
                user = get_user(dbsession, username) if username else None
                result = ingest(
                    dbsession,
                    storage,
                    tm.get(),
                    user,
                    os.path.basename(path),
                    stream,
                    None,
                    limits=limits,
                )
            if unpublished:
                return (
                    f"recorded, but storage failed ({', '.join(unpublished)}): "
                    "run 'extrapypi check --repair'"
                )
            return result.created or result.restored
        except UploadRefused as refusal:
            return str(refusal)
        except ConcurrentUpload:
            continue  # someone stored the same file meanwhile: look again
        except OSError as error:
            return f"cannot read the file ({error.strerror or error})"
    return "kept conflicting with concurrent writes; run the import again"
