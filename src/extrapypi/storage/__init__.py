"""Pick the storage backend from settings and tie its writes to the transaction."""

import logging

from pyramid.path import DottedNameResolver

from .base import Digests, FileTooLarge, StagedFile, Storage

__all__ = [
    "Digests",
    "FileTooLarge",
    "StagedFile",
    "Storage",
    "delete_after_commit",
    "get_storage",
    "publish_on_commit",
    "watch_publishing",
]

log = logging.getLogger(__name__)
#: The ``transaction.set_data`` key of the list that :func:`watch_publishing` hands out.
_UNPUBLISHED = object()

BACKENDS = {
    "local": "extrapypi.storage.local.LocalStorage",
    "s3": "extrapypi.storage.s3.S3Storage",
}


def build_storage(settings: dict) -> Storage:
    name = settings.get("extrapypi.storage", "local")
    backend = DottedNameResolver().maybe_resolve(BACKENDS.get(name, name))
    return backend.from_settings(settings)


def watch_publishing(transaction) -> list[str]:
    """A list that will name every key whose publishing fails after ``transaction`` commits.

    The database has then committed a file that storage lacks: the caller must not answer as if
    all went well (an upload answers 5xx), and ``extrapypi check --repair`` publishes the staged
    copy that stays behind.
    """
    unpublished: list[str] = []
    transaction.set_data(_UNPUBLISHED, unpublished)
    return unpublished


def publish_on_commit(transaction, storage: Storage, staged: StagedFile, key: str) -> None:
    """The staged file becomes visible only if the transaction commits; else it is dropped."""

    def after_commit(success: bool) -> None:
        if not success:
            storage.discard(staged)
            return
        try:
            storage.publish(staged, key)
        except Exception:
            # Never swallowed: logged loudly here, and reported to whoever watches.
            log.error(
                "publishing %s failed after its commit: the database lists it, storage lacks "
                "it; its staged copy %s stays, 'extrapypi check --repair' publishes it",
                key,
                staged.token,
                exc_info=True,
            )
            try:
                transaction.data(_UNPUBLISHED).append(key)
            except KeyError:
                pass  # nobody watches (a script): the log is the report

    transaction.addAfterCommitHook(after_commit)
    transaction.addAfterAbortHook(lambda: storage.discard(staged))


def delete_after_commit(transaction, storage: Storage, key: str) -> None:
    def after_commit(success: bool) -> None:
        if success:
            storage.delete(key)

    transaction.addAfterCommitHook(after_commit)


def get_storage(request) -> Storage:
    return request.registry["extrapypi.storage"]


def includeme(config) -> None:
    config.registry["extrapypi.storage"] = build_storage(config.get_settings())
    config.add_request_method(get_storage, "storage", reify=True)
