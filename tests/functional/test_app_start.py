"""Starting an app server never changes the schema: migrations run once, with initialize_db."""

import pytest
import sqlalchemy as sa
import webtest
from conftest import BACKENDS, SECRET, _server_database

from extrapypi import main


@pytest.fixture(params=BACKENDS)
def empty_database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite'}"
        return
    url, drop = _server_database(request.param)
    yield url
    drop()


def test_app_start_on_an_empty_database_creates_no_tables(empty_database_url, tmp_path):
    app = main(
        {},
        **{
            "sqlalchemy.url": empty_database_url,
            "extrapypi.secret": SECRET,
            "extrapypi.storage.path": str(tmp_path / "packages"),
        },
    )
    client = webtest.TestApp(app)
    assert client.get("/ping").text == "pong"
    # A request that reaches the database fails on the missing schema instead of creating it
    # (a Basic login reads the change serial first, then the user).
    with pytest.raises(sa.exc.DBAPIError, match="(?i)index_state|users"):
        client.get("/simple/", headers={"Authorization": "Basic YTpi"})

    engine = sa.create_engine(empty_database_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
        app.registry["db_engine"].dispose()
