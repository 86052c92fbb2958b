"""Local storage handing the bytes to the front server: X-Accel-Redirect (nginx), X-Sendfile."""

import io

import pytest
from pyramid.request import Request

from extrapypi.storage import build_storage
from extrapypi.storage.local import LocalStorage

CONTENT = b"wheel bytes " * 1000


def _store(tmp_path, **settings) -> LocalStorage:
    storage = build_storage({"extrapypi.storage.path": str(tmp_path), **settings})
    storage.publish(storage.stage(io.BytesIO(CONTENT)), "my-pkg/my_pkg-1.0+local-py3-none-any.whl")
    return storage


def _download(storage: LocalStorage, key: str = "my-pkg/my_pkg-1.0+local-py3-none-any.whl"):
    request = Request.blank("/packages/my-pkg/1.0/file")
    return storage.download_response(request, key, "application/octet-stream")


def test_default_streams_the_file_itself(tmp_path):
    response = _download(_store(tmp_path))
    assert "X-Accel-Redirect" not in response.headers
    assert "X-Sendfile" not in response.headers
    assert b"".join(response.app_iter) == CONTENT
    assert response.content_length == len(CONTENT)


def test_accel_redirect_names_the_internal_location(tmp_path):
    storage = _store(tmp_path, **{"extrapypi.storage.accel_redirect": "/_extrapypi_files"})
    response = _download(storage)
    assert response.status_int == 200
    assert response.headers["X-Accel-Redirect"] == (
        "/_extrapypi_files/my-pkg/my_pkg-1.0%2Blocal-py3-none-any.whl"
    )
    assert response.content_type == "application/octet-stream"
    assert response.body == b""  # nginx sends the bytes


def test_sendfile_names_the_path_on_disk(tmp_path):
    storage = _store(tmp_path, **{"extrapypi.storage.sendfile": "true"})
    response = _download(storage)
    path = tmp_path / "my-pkg" / "my_pkg-1.0+local-py3-none-any.whl"
    assert response.headers["X-Sendfile"] == str(path)
    assert response.body == b""


@pytest.mark.parametrize(
    "settings",
    [{}, {"extrapypi.storage.accel_redirect": "/x/"}, {"extrapypi.storage.sendfile": "1"}],
)
def test_a_missing_file_is_not_offloaded(tmp_path, settings):
    storage = _store(tmp_path, **settings)
    with pytest.raises(FileNotFoundError):
        _download(storage, "my-pkg/absent-1.0.tar.gz")
