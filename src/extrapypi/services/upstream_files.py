"""Upstream files (and their PEP 658 ``.metadata``): fetched on first download, verified, stored.

The bytes are streamed from the upstream into the storage backend's staging area (hashed on the
way, never held in memory), compared with the sha256 the upstream's page announced, and
published through the same commit hook as uploads: a mismatch is discarded and never served.
Concurrent requests for one uncached file in one process wait for the first (single flight);
app servers sharing a database race on the ``upstream_files`` row, and the loser's copy is
dropped with its transaction. Keys hold the content's sha256, so two contents never share one.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

import transaction
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..models import UpstreamFile, get_tm_session
from ..models.meta import utcnow
from ..storage import Storage, publish_on_commit
from .upstream import (
    KEY_PREFIX,
    NotUpstream,
    Upstream,
    UpstreamUnavailable,
    fetch_project,
    hidden_reason,
    resolve,
)

log = logging.getLogger(__name__)

METADATA_SUFFIX = ".metadata"
#: ``last_used`` is written at most this often per file (prune needs days, not seconds).
TOUCH_EVERY = timedelta(hours=1)


class UpstreamFileRefused(Exception):
    """The upstream's bytes do not match what its page announced; nothing was kept (a 502)."""


@dataclass(frozen=True)
class CachedFile:
    key: str
    sha256: str
    filename: str


def file_key(normalized: str, sha256: str, filename: str) -> str:
    return f"{KEY_PREFIX}{normalized}/{sha256[:16]}-{filename}"


def _cached(session, normalized: str, filename: str) -> UpstreamFile | None:
    return session.scalars(
        select(UpstreamFile).where(
            UpstreamFile.normalized_name == normalized, UpstreamFile.filename == filename
        )
    ).one_or_none()


def _touch(upstream: Upstream, row: UpstreamFile) -> None:
    now = utcnow()
    if now - row.last_used < TOUCH_EVERY:
        return
    with upstream.session() as session:
        session.execute(update(UpstreamFile).where(UpstreamFile.id == row.id).values(last_used=now))


class Offered(NamedTuple):
    """A file the upstream's page offers here: its URL and the sha256 the page announced."""

    filename: str
    url: str
    sha256: str


def _expected(
    upstream: Upstream, dbsession, normalized: str, filename: str, serial: int | None
) -> tuple[Offered, Offered | None]:
    """The file asked for, as the page offers it, and for a ``.metadata`` the distribution it
    describes (what the client downloads next); NotUpstream if the page does not offer it."""
    is_metadata = filename.endswith(METADATA_SUFFIX)
    distribution = filename[: -len(METADATA_SUFFIX)] if is_metadata else filename
    page = fetch_project(upstream, dbsession, normalized, serial)
    now = utcnow()
    for entry in page.data["files"]:
        if entry["filename"] != distribution:
            continue
        reason = hidden_reason(entry, upstream.config, page.rules, now)
        if reason is not None:
            raise NotUpstream(f"{distribution} is not offered here: {reason}")
        offered = Offered(distribution, entry["url"], entry["hashes"]["sha256"])
        if not is_metadata:
            return offered, None
        metadata = entry.get("core-metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("sha256"), str):
            return Offered(filename, entry["url"] + METADATA_SUFFIX, metadata["sha256"]), offered
        break
    raise NotUpstream(f"the upstream offers no {filename} for {normalized}")


def _fetch_and_store(
    upstream: Upstream, storage: Storage, normalized: str, offered: Offered
) -> CachedFile:
    import urllib3  # loaded with the upstream's client

    filename, url, sha256 = offered
    answer = upstream.client.open_file(url)
    try:
        staged = storage.stage(answer)
    except urllib3.exceptions.TimeoutError:
        answer.close()
        raise UpstreamUnavailable(f"reading {filename} from the upstream timed out", True) from None
    except (OSError, urllib3.exceptions.HTTPError):
        answer.close()
        raise UpstreamUnavailable(f"reading {filename} from the upstream failed") from None
    finally:
        answer.release_conn()
    if staged.digests.sha256 != sha256:
        storage.discard(staged)
        log.error(
            "upstream file %s/%s refused: its sha256 is %s, the upstream's page announced %s",
            normalized,
            filename,
            staged.digests.sha256,
            sha256,
        )
        raise UpstreamFileRefused(
            f"the upstream's {filename} does not match the sha256 its page announced "
            f"(announced {sha256}, received {staged.digests.sha256}): not stored, not served"
        )
    key = file_key(normalized, sha256, filename)
    manager = transaction.TransactionManager(explicit=True)
    try:
        with manager:
            # Hooked first: if the row loses the race, the abort drops the staged copy.
            publish_on_commit(manager.get(), storage, staged, key)
            session = get_tm_session(upstream.session_factory, manager)
            session.add(
                UpstreamFile(
                    normalized_name=normalized,
                    filename=filename,
                    sha256=sha256,
                    size=staged.digests.size,
                    key=key,
                )
            )
            session.flush()
    except IntegrityError:
        # Another app server stored it first (its abort hook dropped our staged copy).
        with upstream.session() as session:
            winner = _cached(session, normalized, filename)
            if winner is None:
                raise UpstreamUnavailable(f"storing {filename} failed, try again") from None
            if winner.sha256 != sha256:
                raise UpstreamFileRefused(
                    f"{filename} is already stored with another content (sha256 "
                    f"{winner.sha256}); the upstream now announces {sha256}"
                ) from None
            return CachedFile(winner.key, winner.sha256, filename)
    log.info("cached upstream file %s/%s (%d bytes)", normalized, filename, staged.digests.size)
    return CachedFile(key, sha256, filename)


def cached_file(
    upstream: Upstream,
    storage: Storage,
    dbsession,
    normalized: str,
    filename: str,
    serial: int | None = None,
) -> CachedFile:
    """The stored copy of an upstream file, fetching it first if nobody has yet.

    Raises NotUpstream (404), UpstreamUnavailable (502/504) or UpstreamFileRefused (502).
    """
    rules = resolve(upstream, dbsession, normalized, serial)
    _check_still_offered(rules, filename)
    memo_key = (normalized, filename)
    found = upstream.files.get(memo_key)
    if found is not None:
        return found
    row = _cached(dbsession, normalized, filename)
    if row is not None:
        # Committed by a fetch of this process that may still be publishing the file (a
        # prefetch): its flight ends once the file is in storage.
        upstream.flights.wait(("file", normalized, filename))
        _touch(upstream, row)
        found = CachedFile(row.key, row.sha256, filename)
        upstream.files.put(memo_key, found)
        return found
    offered, distribution = _expected(upstream, dbsession, normalized, filename, serial)
    if distribution is not None:
        _prefetch(upstream, storage, normalized, distribution)
    with upstream.flights.hold(("file", normalized, filename)):
        found = _stored(upstream, normalized, filename)
        if found is not None:  # the first in the flight stored it
            return found
        return _fetch_and_store(upstream, storage, normalized, offered)


def _stored(upstream: Upstream, normalized: str, filename: str) -> CachedFile | None:
    """A fresh read of the cache (not the request's snapshot): another thread may have filled it."""
    with upstream.session() as session:
        row = _cached(session, normalized, filename)
        return None if row is None else CachedFile(row.key, row.sha256, filename)


class _Prefetch:
    """Fetches and stores one distribution in the background, holding its single flight from
    the moment it is offered: a download that arrives meanwhile waits for it."""

    def __init__(self, upstream, storage, normalized: str, offered: Offered, release):
        self.upstream, self.storage = upstream, storage
        self.normalized, self.offered, self.release = normalized, offered, release

    def __call__(self) -> None:
        try:
            if _stored(self.upstream, self.normalized, self.offered.filename) is None:
                _fetch_and_store(self.upstream, self.storage, self.normalized, self.offered)
        except (UpstreamUnavailable, UpstreamFileRefused) as error:
            # The download will ask again and answer the client with the reason.
            log.warning(
                "prefetching %s/%s failed: %s", self.normalized, self.offered.filename, error
            )
        finally:
            self.release()

    def cancel(self) -> None:
        """Dropped before it ran (shutdown): the flight ends, nothing was fetched."""
        self.release()


def _prefetch(upstream: Upstream, storage: Storage, normalized: str, offered: Offered) -> None:
    """Start fetching a distribution whose ``.metadata`` a client asked for: it downloads the
    file next, once resolved, and finds it stored or on its way. Only a file the page offers
    here (the caller got it from ``_expected``, past blocks and the cooldown), only once."""
    if upstream.config.prefetch == 0 or upstream.files.get((normalized, offered.filename)):
        return
    release = upstream.flights.claim(("file", normalized, offered.filename))
    if release is None:
        return  # somebody is fetching it already
    if not upstream.background.submit(_Prefetch(upstream, storage, normalized, offered, release)):
        release()


def _check_still_offered(rules: list, filename: str) -> None:
    """A cached file of a version blocked since is not served (no upstream request needed)."""
    from .upstream import BLOCK, canonical, file_version

    blocked = {canonical(r.version) for r in rules if r.kind == BLOCK and r.version}
    if blocked:
        version = file_version(filename.removesuffix(METADATA_SUFFIX))
        if version is not None and canonical(version) in blocked:
            raise NotUpstream(f"an administrator blocked version {version}")
