"""The alembic migrations build exactly the models' schema, and come apart again."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from extrapypi import schema
from extrapypi.models import Base


def _diff(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_models_match_migrations(app, engine):
    assert _diff(engine) == []


def test_downgrade_to_base_then_upgrade_again(app, engine, ini_file, clean):
    schema.downgrade(ini_file, "base")
    tables = set(sa.inspect(engine).get_table_names())
    assert tables <= {"alembic_version"}
    schema.upgrade(ini_file, "head")
    assert {"users", "packages", "releases", "files", "journal", "index_state"} <= set(
        sa.inspect(engine).get_table_names()
    )
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT serial FROM index_state")).scalar() == 0
    assert _diff(engine) == []
    # The serial went back to 0 under a running app (as after a restore, where servers restart):
    # its page cache, holding a higher serial, would never store a page again this session.
    if "extrapypi.index_cache" in app.registry:
        app.registry["extrapypi.index_cache"].clear()


def test_teams_status_namespaces_migration_down_up_keeps_packages(app, engine, ini_file, data):
    """0005 comes apart and back: its tables and columns only; packages come back ``active``."""
    data.user("dev")
    data.release_file("kept", "1.0", uploader="dev")  # its creator maintains it
    teams_tables = {"teams", "team_members", "package_team_maintainers", "namespaces"}
    schema.downgrade(ini_file, "5c1f0d2a9b7e")
    inspector = sa.inspect(engine)
    assert not teams_tables & set(inspector.get_table_names())
    assert {"status", "status_reason"}.isdisjoint(
        c["name"] for c in inspector.get_columns("packages")
    )
    schema.upgrade(ini_file, "head")
    assert teams_tables <= set(sa.inspect(engine).get_table_names())
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT name, status, status_reason FROM packages")).all()
        maintainers = connection.execute(
            sa.text("SELECT count(*) FROM package_maintainers")
        ).scalar()
        files = connection.execute(sa.text("SELECT count(*) FROM files")).scalar()
    assert [tuple(r) for r in rows] == [("kept", "active", "")]
    assert maintainers == 1 and files == 1  # nothing cascaded away (SQLite batch mode would)
    assert _diff(engine) == []
    schema.downgrade(ini_file, "5c1f0d2a9b7e")
    schema.upgrade(ini_file, "head")
    assert _diff(engine) == []
