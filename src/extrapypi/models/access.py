"""Changes to who may do what bump the access serial, whichever code path makes them.

Servers cache verified Basic logins, tokens and team memberships per access serial (row 2 of
``index_state``, ``services/serials.py``), apart from the index serial that uploads move: a
password, role, active-flag or username change, a new or deleted user, a token change, a team
membership and a maintainer added or removed must therefore move it in the same transaction, so
this process sees it at once and every other within ``serial_check_seconds``.
A ``before_flush`` listener on every ORM session does it, once per transaction.
"""

from sqlalchemy import event, inspect, update
from sqlalchemy.orm import Session

from .journal import SERIAL_BUMPED_KEY, IndexState
from .package import Package
from .team import Team
from .token import ApiToken
from .user import User

#: The user columns authentication and authorization read.
ACCESS_COLUMNS = ("username", "password_hash", "role", "is_active")
#: Who maintains a package (users and teams): the package's ACL reads them.
MAINTAINER_COLUMNS = ("maintainers", "team_maintainers")
#: The token columns token checks read (``last_used`` is not one: it moves without a bump).
TOKEN_COLUMNS = ("scope", "projects", "expires", "revoked", "secret_hash")
#: The access serial's row (``services/serials.ACCESS_ID``; row 1 is the index serial).
ACCESS_ID = 2
_BUMPED_IN = "extrapypi.access_serial_bumped_in"


def _changed(obj, attributes: tuple[str, ...]) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in attributes)


def changes_access(session: Session) -> bool:
    """Whether this flush changes authentication or authorization."""
    if any(isinstance(obj, User) for obj in session.new):
        return True
    if any(isinstance(obj, (User, Package, ApiToken, Team)) for obj in session.deleted):
        return True
    for obj in session.dirty:
        if isinstance(obj, ApiToken) and _changed(obj, TOKEN_COLUMNS):
            return True
        if isinstance(obj, User) and _changed(obj, ACCESS_COLUMNS):
            return True
        if isinstance(obj, Package) and _changed(obj, MAINTAINER_COLUMNS):
            return True
        if isinstance(obj, Team) and _changed(obj, ("members",)):
            return True
    return any(
        isinstance(obj, Package) and _changed(obj, MAINTAINER_COLUMNS) for obj in session.new
    )


@event.listens_for(Session, "before_flush")
def bump_serial_on_access_change(session: Session, flush_context, instances) -> None:
    transaction = session.get_transaction()
    if session.info.get(_BUMPED_IN) is transaction or not changes_access(session):
        return
    # Core UPDATE on the one-row table: the row lock orders writers as ``bump_serial`` does.
    table = IndexState.__table__
    result = session.connection().execute(
        update(table).where(table.c.id == ACCESS_ID).values(serial=table.c.serial + 1)
    )
    if result.rowcount == 0:  # a database created without the migration's seed row
        session.add(IndexState(id=ACCESS_ID, serial=1))
    session.info[_BUMPED_IN] = transaction
    session.info[SERIAL_BUMPED_KEY] = True  # seen at once here (services/serials.py)
