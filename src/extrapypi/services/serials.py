"""The change serials as a process sees them: read from the database at most once a second.

Two counters live in ``index_state``: row 1 is the index serial (what the simple pages show:
uploads, yanks, deletions, statuses), row 2 the access serial (who may log in and with which
role: users, tokens, teams, maintainers; ``models/access.py`` bumps it). Pages are cached per
index serial, verified logins per access serial, so an upload never costs anyone a login check.

A cached read must cost no database round trip, so each process keeps the serials it read last
and reads them again only when they are older than ``extrapypi.serial_check_seconds`` (1 s):
another server's change is seen within that delay. A change this process commits is seen at once:
whatever bumps a serial marks its session, and the session's ``after_commit`` event makes every
clock of that database in this process read again on its next request.
"""

import math
import threading
import time
import weakref
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ..models.access import ACCESS_ID
from ..models.journal import SERIAL_BUMPED_KEY as BUMPED_KEY

INDEX_ID = 1
DEFAULT_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Serials:
    index: int
    access: int


def read_serials(connection) -> Serials:
    rows = dict(
        connection.exec_driver_sql(
            "SELECT id, serial FROM index_state WHERE id IN (1, 2)"  # INDEX_ID, ACCESS_ID
        ).all()
    )
    return Serials(rows.get(INDEX_ID) or 0, rows.get(ACCESS_ID) or 0)


class SerialClock:
    """The newest serials this process read, re-read when older than ``check_seconds``."""

    def __init__(self, engine: Engine, check_seconds: float = DEFAULT_CHECK_SECONDS):
        self.engine = engine
        self.check_seconds = check_seconds
        self._serials: Serials | None = None
        self._read_at = -math.inf
        self._generation = 0
        self._lock = threading.Lock()
        self.reads = 0  # database reads so far (tests and benchmarks look)
        _register(self)

    def current(self) -> Serials:
        serials = self._serials
        if serials is not None and time.monotonic() - self._read_at < self.check_seconds:
            return serials
        with self._lock:  # one reader at a time; the others then find it fresh
            if self._serials is not None and time.monotonic() - self._read_at < self.check_seconds:
                return self._serials
            generation = self._generation
            started = time.monotonic()
            with self.engine.connect() as connection:
                serials = read_serials(connection)
            self.reads += 1
            self._serials = serials
            # A commit noted while reading may not be in what was read: read again next time.
            self._read_at = started if generation == self._generation else -math.inf
            return serials

    def invalidate(self) -> None:
        """Read again on the next request (a change committed by this process)."""
        self._generation += 1
        self._read_at = -math.inf


_CLOCKS: dict[str, weakref.WeakSet] = {}
_CLOCKS_LOCK = threading.Lock()


def _database_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _register(clock: SerialClock) -> None:
    with _CLOCKS_LOCK:
        _CLOCKS.setdefault(_database_of(clock.engine), weakref.WeakSet()).add(clock)


def changed(engine: Engine) -> None:
    """A serial of this engine's database moved in a committed transaction: every clock of it in
    this process (several apps may share a process, as tests do) reads again."""
    with _CLOCKS_LOCK:
        clocks = list(_CLOCKS.get(_database_of(engine), ()))
    for clock in clocks:
        clock.invalidate()


def note_bump(dbsession: Session) -> None:
    """Called in the transaction that bumps a serial: its commit reaches this process's clocks."""
    dbsession.info[BUMPED_KEY] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(BUMPED_KEY, False):
        bind = session.get_bind()
        changed(bind if isinstance(bind, Engine) else bind.engine)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(BUMPED_KEY, None)


def serial_clock(registry) -> SerialClock:
    return registry["extrapypi.serial_clock"]


def includeme(config) -> None:
    settings = config.get_settings()
    seconds = float(settings.get("extrapypi.serial_check_seconds", DEFAULT_CHECK_SECONDS))
    clock = SerialClock(config.registry["db_engine"], seconds)
    config.registry["extrapypi.serial_clock"] = clock
    config.add_request_method(lambda request: clock.current(), "serials", reify=True)
    config.add_request_method(lambda request: request.serials.index, "index_serial", reify=True)
    config.add_request_method(lambda request: request.serials.access, "access_serial", reify=True)
