"""Database access: engine and session factories, and ``request.dbsession``."""

import os
from typing import Any

import zope.sqlalchemy
from sqlalchemy import engine_from_config, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, configure_mappers, sessionmaker

from .journal import IndexState, JournalEntry
from .login import LoginFailure
from .meta import Base
from .package import File, FileTombstone, Package, Release, package_maintainers
from .user import User

__all__ = [
    "Base",
    "File",
    "FileTombstone",
    "IndexState",
    "JournalEntry",
    "LoginFailure",
    "Package",
    "Release",
    "User",
    "get_engine",
    "get_session_factory",
    "get_tm_session",
    "package_maintainers",
]

configure_mappers()


def _sqlite_on_connect(dbapi_connection, connection_record) -> None:
    """SQLite leaves foreign keys off and fails at once on a busy database unless told."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def get_engine(settings: dict[str, Any], prefix: str = "sqlalchemy.") -> Engine:
    options = {}
    url = settings[prefix + "url"]
    if url.startswith("mysql"):
        options["pool_recycle"] = 3600
    options["pool_pre_ping"] = True
    engine = engine_from_config(settings, prefix, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        if engine.url.database and engine.url.database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(engine.url.database)), exist_ok=True)
    return engine


def get_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine)


def get_tm_session(session_factory: sessionmaker, transaction_manager, request=None) -> Session:
    """A session joined to the transaction manager: pyramid_tm commits or aborts it."""
    dbsession = session_factory(info={"request": request})
    zope.sqlalchemy.register(dbsession, transaction_manager=transaction_manager)
    return dbsession


def includeme(config) -> None:
    settings = config.get_settings()
    settings["tm.manager_hook"] = "pyramid_tm.explicit_manager"
    config.include("pyramid_tm")
    config.include("pyramid_retry")

    engine = get_engine(settings)
    session_factory = get_session_factory(engine)
    config.registry["dbsession_factory"] = session_factory
    config.registry["db_engine"] = engine

    def dbsession(request):
        session = request.environ.get("app.dbsession")
        if session is None:
            session = get_tm_session(session_factory, request.tm, request=request)
        return session

    config.add_request_method(dbsession, reify=True)
