"""Two ``pserve`` on one PostgreSQL database and one storage directory, behind them one
upstream: the same uncached file asked through both at once is stored once, with one content.
"""

import json
import threading

import pytest
from conftest import SECRET, Data, _server_database, free_port, start_server, write_ini
from instances import basic, fetch
from upstream_index import UpstreamIndex

from extrapypi import main, schema
from extrapypi.models import UpstreamFile
from extrapypi.permissions import Role

pytestmark = pytest.mark.e2e
JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    upstream = UpstreamIndex()
    upstream.add("shared", "1.0")
    upstream.start()
    url, drop = _server_database("postgresql")
    directory = tmp_path_factory.mktemp("upstream-cluster")
    settings = {
        "sqlalchemy.url": url,
        "retry.attempts": "5",
        "extrapypi.secret": SECRET,
        "extrapypi.bcrypt_rounds": "4",
        "extrapypi.storage": "local",
        "extrapypi.storage.path": str(directory / "files"),
        "extrapypi.upstream.url": upstream.url,
    }
    schema.upgrade(write_ini(directory / "migrate.ini", settings))
    local = main({}, **settings)
    Data(local).user("reader", Role.INSTALLER)
    servers = []
    try:
        for name in ("a", "b"):
            port = free_port()
            ini = write_ini(directory / f"{name}.ini", settings, port=port)
            servers.append(start_server(ini, port, directory / f"{name}.log"))
        yield servers, local, upstream
    finally:
        for server in servers:
            server.process.terminate()
            server.process.wait(timeout=10)
        local.registry["db_engine"].dispose()
        upstream.stop()
        drop()


def test_one_file_through_two_servers_at_once_is_stored_once(cluster, capsys):
    servers, local, upstream = cluster
    answer = fetch(f"{servers[0].url}/simple/shared/", {**basic("reader"), "Accept": JSON})
    entry = json.loads(answer.body)["files"][0]
    dist = upstream.projects["shared"][0]
    upstream.delay = 0.5
    results = []

    def download(server):
        got = fetch(f"{server.url}/simple/shared/{entry['url']}", basic("reader"))
        results.append((got.status, got.body))

    threads = [threading.Thread(target=download, args=(servers[i % 2],)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    upstream.delay = 0.0
    assert [status for status, _ in results] == [200] * 20
    assert all(body == dist.content for _, body in results)
    # one fetch per app server at most (single flight is per process)
    fetched = upstream.count(f"/files/shared/{dist.filename}")
    with capsys.disabled():
        print(f"\n20 downloads through two servers: {fetched} upstream request(s)")
    assert 1 <= fetched <= 2
    session = local.registry["dbsession_factory"]()
    rows = session.query(UpstreamFile).all()
    session.close()
    assert [(r.filename, r.sha256) for r in rows] == [(dist.filename, dist.sha256)]
    storage = local.registry["extrapypi.storage"]
    assert [k for k in storage.iter_keys() if k.startswith("~upstream~")] == [rows[0].key]
    assert storage.hash_file(rows[0].key).sha256 == dist.sha256
    assert not [k for k in storage.iter_staged()]  # the loser's staged copy was dropped
