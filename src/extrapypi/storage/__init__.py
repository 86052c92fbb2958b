"""Pick the storage backend from settings and tie its writes to the transaction."""

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
]

BACKENDS = {
    "local": "extrapypi.storage.local.LocalStorage",
    "s3": "extrapypi.storage.s3.S3Storage",
}


def build_storage(settings: dict) -> Storage:
    name = settings.get("extrapypi.storage", "local")
    backend = DottedNameResolver().maybe_resolve(BACKENDS.get(name, name))
    return backend.from_settings(settings)


def publish_on_commit(transaction, storage: Storage, staged: StagedFile, key: str) -> None:
    """The staged file becomes visible only if the transaction commits; else it is dropped."""

    def after_commit(success: bool) -> None:
        if success:
            storage.publish(staged, key)
        else:
            storage.discard(staged)

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
