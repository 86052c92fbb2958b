"""An app's end: the background work it started (download-count flushes, webhook delivery,
upstream prefetches, the pages' catch-up) stops, its last counts are written, its engine is
disposed — at interpreter exit for every app still open, or earlier with ``close_app``.

Subsystems register what stops them with ``on_close(registry, callable)`` in their
``includeme``; closing runs those in reverse order, each once. A step that fails is logged in one
line and the others still run.
"""

import atexit
import logging
import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

REGISTRY_KEY = "extrapypi.lifecycle"


class Lifecycle:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.closed = False
        self._steps: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        _OPEN.add(self)

    def on_close(self, step: Callable[[], None]) -> None:
        self._steps.append(step)

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            _OPEN.discard(self)
        for step in reversed(self._steps):
            try:
                step()
            except Exception as error:
                log.warning("closing the app: %s failed: %s", _name(step), error)
        self.engine.dispose()


#: Apps not closed yet (held here so that even an app nobody refers to any more is closed,
#: its threads stopped, at exit at the latest).
_OPEN: "set[Lifecycle]" = set()


def one_line(error: BaseException) -> str:
    """A database error in the database's own words, first line only: not the statement and
    its parameters (for the warnings of background work whose database went away)."""
    cause = getattr(error, "orig", None) or error
    text = str(cause).strip()
    return f"{type(cause).__name__}: {text.splitlines()[0]}" if text else type(cause).__name__


def _name(step) -> str:
    return getattr(step, "__qualname__", None) or repr(step)


def _registry(app_or_registry):
    return getattr(app_or_registry, "registry", app_or_registry)


def on_close(registry, step: Callable[[], None]) -> None:
    """Run ``step`` when the app built on ``registry`` closes (at exit at the latest)."""
    registry[REGISTRY_KEY].on_close(step)


def close_app(app_or_registry) -> None:
    """Stop an app's background work, write what it still holds, dispose its engine."""
    lifecycle = _registry(app_or_registry).get(REGISTRY_KEY)
    if lifecycle is not None:
        lifecycle.close()


def close_apps(engine_matches: Callable[[Engine], bool]) -> int:
    """Close every open app whose engine ``engine_matches`` (e.g. before its database is
    dropped, or when a test disposes the engine it built); returns how many were closed."""
    closing = [lc for lc in list(_OPEN) if not lc.closed and engine_matches(lc.engine)]
    for lifecycle in closing:
        lifecycle.close()
    return len(closing)


@atexit.register
def _close_all_at_exit() -> None:
    close_apps(lambda engine: True)


def includeme(config) -> None:
    config.registry[REGISTRY_KEY] = Lifecycle(config.registry["db_engine"])
