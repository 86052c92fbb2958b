"""Database access: engine and session factories, and ``request.dbsession``."""

import os
from typing import Any

from sqlalchemy import engine_from_config, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, configure_mappers, sessionmaker
from transaction._transaction import Status as ZopeStatus

from . import access  # noqa: F401  (bumps the serial on access changes)
from .description import RenderedDescription
from .journal import IndexState, JournalEntry
from .login import LoginAddress, LoginFailure
from .meta import Base
from .operations import DownloadCount, RetentionRule, WebhookDelivery, WebhookEndpoint
from .package import File, FileTombstone, Package, Release, package_maintainers
from .publisher import TrustedPublisher, UsedJwt
from .retryable import datamanager, learn_conflict_errors
from .session import LoginSession
from .team import Namespace, Team, package_team_maintainers, team_members
from .token import ApiToken
from .upstream import UpstreamFile, UpstreamPage, UpstreamRule
from .user import User

STATUS_ACTIVE = datamanager.STATUS_ACTIVE
join_transaction = datamanager.join_transaction
mark_changed = datamanager.mark_changed

__all__ = [
    "ApiToken",
    "Base",
    "DownloadCount",
    "File",
    "FileTombstone",
    "IndexState",
    "JournalEntry",
    "LoginAddress",
    "LoginFailure",
    "LoginSession",
    "Namespace",
    "Package",
    "Release",
    "RenderedDescription",
    "RetentionRule",
    "Team",
    "TrustedPublisher",
    "UpstreamFile",
    "UpstreamPage",
    "UpstreamRule",
    "UsedJwt",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "get_engine",
    "get_session_factory",
    "get_tm_session",
    "package_maintainers",
    "package_team_maintainers",
    "team_members",
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
    learn_conflict_errors()  # the engine imported its driver
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        if engine.url.database and engine.url.database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(engine.url.database)), exist_ok=True)
    return engine


def get_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine)


#: Where a session names the transaction manager it joins (see ``get_tm_session``).
TM_KEY = "extrapypi.transaction_manager"


class _JoinNamedTransaction:
    """zope.sqlalchemy's listeners, registered once on the ``Session`` class, not per session.

    ``zope.sqlalchemy.register(session)`` makes seven ``event.listen`` calls for every session,
    a fifth of the time of a cached index request. These listeners do the same for any session
    whose ``info`` names a transaction manager, and nothing for other sessions.
    """

    @staticmethod
    def after_begin(session, transaction, connection) -> None:
        manager = session.info.get(TM_KEY)
        if manager is not None:
            join_transaction(session, STATUS_ACTIVE, manager, False)

    @staticmethod
    def after_attach(session, instance) -> None:
        manager = session.info.get(TM_KEY)
        if manager is not None:
            join_transaction(session, STATUS_ACTIVE, manager, False)

    @staticmethod
    def after_flush(session, flush_context) -> None:
        manager = session.info.get(TM_KEY)
        if manager is not None:
            mark_changed(session, manager, False)

    @staticmethod
    def after_bulk(context) -> None:
        manager = context.session.info.get(TM_KEY)
        if manager is not None:
            mark_changed(context.session, manager, False)

    @staticmethod
    def before_commit(session) -> None:
        manager = session.info.get(TM_KEY)
        if manager is not None and not session.in_nested_transaction():
            assert manager.get().status == ZopeStatus.COMMITTING, (
                "Transaction must be committed using the transaction manager"
            )

    @staticmethod
    def do_orm_execute(execute_state) -> None:
        manager = execute_state.session.info.get(TM_KEY)
        if manager is None or not execute_state.is_orm_statement:
            return
        if execute_state.is_update or execute_state.is_insert or execute_state.is_delete:
            mark_changed(execute_state.session, manager, False)


event.listen(Session, "after_begin", _JoinNamedTransaction.after_begin)
event.listen(Session, "after_attach", _JoinNamedTransaction.after_attach)
event.listen(Session, "after_flush", _JoinNamedTransaction.after_flush)
event.listen(Session, "after_bulk_update", _JoinNamedTransaction.after_bulk)
event.listen(Session, "after_bulk_delete", _JoinNamedTransaction.after_bulk)
event.listen(Session, "before_commit", _JoinNamedTransaction.before_commit)
event.listen(Session, "do_orm_execute", _JoinNamedTransaction.do_orm_execute)


def get_tm_session(session_factory: sessionmaker, transaction_manager, request=None) -> Session:
    """A session joined to the transaction manager: pyramid_tm commits or aborts it."""
    return session_factory(info={"request": request, TM_KEY: transaction_manager})


def includeme(config) -> None:
    settings = config.get_settings()
    settings["tm.manager_hook"] = "pyramid_tm.explicit_manager"
    # No retry (so no copy of the body) for a state change another site's page sent: refused.
    settings.setdefault("retry.activate_hook", "extrapypi.cross_site.retry_attempts")
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
