"""Where the pages directory of the nginx front (``materialize.py``) learns of index changes.

Kept apart from ``materialize.py`` (which renders pages) so the journal can call it without an
import cycle: one :class:`~extrapypi.services.materialize.PageMirror` per database engine, found
from any session bound to that engine (requests, commands, and test factories alike).
"""

import weakref

from sqlalchemy.orm import Session

from ..models import TM_KEY

_MIRRORS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_HOOKED = object()  # the transaction data key: one rewrite per transaction


def register(engine, mirror) -> None:
    """``mirror`` follows the changes committed through ``engine`` (weakly held)."""
    _MIRRORS[id(engine)] = mirror


def mirror_for(dbsession: Session):
    if not _MIRRORS:
        return None
    return _MIRRORS.get(id(dbsession.bind))


def rewrite_after_commit(dbsession: Session) -> None:
    """Called where the serial is bumped: the pages follow right after the commit."""
    mirror = mirror_for(dbsession)
    if mirror is None:
        return
    manager = dbsession.info.get(TM_KEY)
    if manager is None:
        return  # not under a transaction manager: the background catch-up follows
    transaction = manager.get()
    try:
        transaction.data(_HOOKED)
        return
    except KeyError:
        transaction.set_data(_HOOKED, True)
    transaction.addAfterCommitHook(lambda success: success and mirror.catch_up())
