"""Alembic environment: the database URL comes from the app's ``sqlalchemy.url`` setting."""

from pyramid.paster import get_appsettings, setup_logging

from alembic import context
from extrapypi.models import get_engine
from extrapypi.models.meta import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    setup_logging(config.config_file_name)
    settings = get_appsettings(config.config_file_name)
    engine = get_engine(settings)


def run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs via batch mode
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=settings["sqlalchemy.url"], target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
elif connection is not None:
    run_migrations(connection)
else:
    with engine.connect() as connection:
        run_migrations(connection)
