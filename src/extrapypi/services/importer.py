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
from .uploads import ConcurrentUpload, Limits, UploadRefused, ingest


class ImportError_(Exception):
    """The import cannot start (unknown user, missing directory); the message says why."""


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    #: ``(path relative to the directory, reason)``
    refused: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.imported)} imported, {len(self.duplicates)} skipped (already there), "
            f"{len(self.refused)} refused"
        )


def iter_candidates(directory: str) -> Iterator[str]:
    """Every regular file under ``directory``, sorted, hidden files and directories left out."""
    for current, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = os.path.join(current, name)
            if not name.startswith(".") and os.path.isfile(path):
                yield path


def import_directory(
    session_factory: sessionmaker,
    storage: Storage,
    directory: str,
    *,
    limits: Limits,
    username: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ImportReport:
    """Import every distribution under ``directory``; ``username`` becomes uploader/maintainer."""
    if not os.path.isdir(directory):
        raise ImportError_(f"not a directory: {directory}")
    if username is not None:
        tm = transaction.TransactionManager(explicit=True)
        with tm:
            if get_user(get_tm_session(session_factory, tm), username) is None:
                raise ImportError_(f"unknown user {username!r}")
    report = ImportReport()
    for path in iter_candidates(directory):
        relative = os.path.relpath(path, directory)
        outcome = _import_file(session_factory, storage, path, limits, username)
        if outcome is True:
            report.imported.append(relative)
        elif outcome is False:
            report.duplicates.append(relative)
        else:
            report.refused.append((relative, outcome))
        if progress is not None:
            label = {True: "imported", False: "skipped, already there"}.get(outcome, outcome)
            progress(f"{relative}: {label}")
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
