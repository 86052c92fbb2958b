"""zope.sqlalchemy's datamanager, and which database errors pyramid_tm may retry.

The datamanager decides whether a failed transaction is tried again (``retry.attempts``): a
serialization failure or a deadlock, recognised by the driver's own error types.
"""

import sys

#: The drivers whose "try the transaction again" errors zope.sqlalchemy lists.
CONFLICT_DRIVERS = ("psycopg2", "psycopg", "cx_Oracle", "pymysql")


def _import_datamanager():
    """zope.sqlalchemy's datamanager, without the database drivers this process may not use.

    At import it imports every driver it knows, to learn which of their errors mean "another
    transaction won, try again": psycopg and pymysql (with cryptography) cost a SQLite server
    20 MB and a fifth of a second. They are hidden while it loads; ``get_engine`` then adds the
    same entries for the driver an engine does use (``learn_conflict_errors``).
    """
    hidden = [name for name in CONFLICT_DRIVERS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  (an import of it fails)
    try:
        from zope.sqlalchemy import datamanager
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
    return datamanager


datamanager = _import_datamanager()


def learn_conflict_errors() -> None:
    """Give zope.sqlalchemy the retryable errors of the drivers imported since it loaded.

    The same entries its datamanager makes when a driver is importable (``retry.attempts``
    retries them): serialization failures and deadlocks, for the drivers imported by now.
    """
    known = {error_type for error_type, _ in datamanager._retryable_errors}
    found = []
    if "psycopg2" in sys.modules:
        import psycopg2.extensions

        found.append((psycopg2.extensions.TransactionRollbackError, None))
    if "psycopg" in sys.modules:
        import psycopg.errors

        found.append(
            (
                psycopg.errors.OperationalError,
                lambda e: e.sqlstate and e.sqlstate.startswith("40"),
            )
        )
    if "cx_Oracle" in sys.modules:
        import cx_Oracle

        found.append((cx_Oracle.DatabaseError, lambda e: e.args[0].code == 8177))
    if "pymysql" in sys.modules:
        import pymysql

        found.append((pymysql.err.OperationalError, lambda e: e.args[0] == 1213))
    datamanager._retryable_errors.extend(entry for entry in found if entry[0] not in known)
