"""Conflicts are retried as before though the drivers load only with the engine that uses them.

zope.sqlalchemy learns each driver's "try again" errors when it is imported; extrapypi imports it
with the drivers hidden (``models/retryable.py``) and adds the entries for the driver an engine
uses. Each check runs in a fresh interpreter: what matters is the import order.
"""

import json
import subprocess
import sys
import textwrap

#: Errors of each driver and whether zope.sqlalchemy retries them, by its own rules.
PROBES = textwrap.dedent(
    """
    import json, sys
    import psycopg.errors, pymysql
    from sqlalchemy.exc import OperationalError
    from zope.sqlalchemy import datamanager

    errors = {
        "psycopg serialization failure": psycopg.errors.SerializationFailure("conflict"),
        "psycopg deadlock": psycopg.errors.DeadlockDetected("deadlock"),
        "psycopg lost connection": psycopg.errors.OperationalError("server closed"),
        "psycopg unique violation": psycopg.errors.UniqueViolation("duplicate"),
        "pymysql deadlock": pymysql.err.OperationalError(1213, "Deadlock found"),
        "pymysql lock wait timeout": pymysql.err.OperationalError(1205, "Lock wait timeout"),
        "pymysql lost connection": pymysql.err.OperationalError(2013, "Lost connection"),
    }
    answers = {
        what: bool(
            datamanager.SessionDataManager.should_retry(None, OperationalError("", {}, error))
        )
        for what, error in errors.items()
    }
    kinds = sorted(
        f"{kind.__module__}.{kind.__qualname__}" for kind, _ in datamanager._retryable_errors
    )
    print(json.dumps({"answers": answers, "kinds": kinds}))
    """
)


def run(script: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_engines_teach_zope_sqlalchemy_the_same_retryable_errors_as_a_plain_import():
    plain = run("import psycopg, pymysql\n" + PROBES)
    ours = run(
        textwrap.dedent(
            """
            import sys
            from extrapypi.models import get_engine
            assert "psycopg" not in sys.modules and "pymysql" not in sys.modules
            get_engine({"sqlalchemy.url": "postgresql+psycopg://nobody@127.0.0.1:9/none"})
            get_engine({"sqlalchemy.url": "mysql+pymysql://nobody@127.0.0.1:9/none"})
            """
        )
        + PROBES
    )
    assert ours == plain
    assert plain["answers"] == {
        "psycopg serialization failure": True,
        "psycopg deadlock": True,
        "psycopg lost connection": False,
        "psycopg unique violation": False,
        "pymysql deadlock": True,
        "pymysql lock wait timeout": False,
        "pymysql lost connection": False,
    }


def test_a_sqlite_server_loads_no_other_driver():
    loaded = run(
        textwrap.dedent(
            """
            import json, sys
            from extrapypi.models import get_engine
            get_engine({"sqlalchemy.url": "sqlite://"})
            print(json.dumps(sorted(
                name for name in ("psycopg", "psycopg2", "pymysql", "cryptography")
                if name in sys.modules
            )))
            """
        )
    )
    assert loaded == []
