"""Real pip and uv with ONLY this server as index, an upstream behind it (a local HTTP server):
public and private packages in one command, private names winning, the cooldown, a corrupted
upstream file, 50 concurrent downloads, S3 for cached files, and the upstream killed.

One database (SQLite) for the whole module: nothing here depends on the database but the
single-flight test, which is about one process (the multi-server case is in
test_upstream_cluster.py on PostgreSQL).
"""

import json
import sys
import threading
import time
import uuid
from datetime import timedelta

import pytest
from conftest import SECRET, Data, free_port, s3_settings, start_server, venv_tool, write_ini
from instances import basic, fetch
from test_pip_uv import pip, run, uv_install
from upstream_index import UpstreamIndex

from extrapypi import main, schema
from extrapypi.permissions import Role

pytestmark = pytest.mark.e2e

JSON = "application/vnd.pypi.simple.v1+json"


def proxy_settings(directory, upstream: UpstreamIndex, **extra) -> dict:
    return {
        "sqlalchemy.url": f"sqlite:///{directory}/db.sqlite",
        "extrapypi.secret": SECRET,
        "extrapypi.bcrypt_rounds": "4",
        "extrapypi.storage": "local",
        "extrapypi.storage.path": str(directory / "files"),
        "extrapypi.upstream.url": upstream.url,
        "extrapypi.upstream.cooldown": "7d",
        "extrapypi.upstream.ttl": "1s",  # pages revalidated at once: outages show immediately
        "extrapypi.upstream.read_timeout": "5",
        **extra,
    }


def start_proxy(directory, settings: dict):
    directory.mkdir(exist_ok=True)
    schema.upgrade(write_ini(directory / "migrate.ini", settings))
    local = main({}, **settings)
    data = Data(local)
    data.user("reader", Role.INSTALLER)
    port = free_port()
    server = start_server(
        write_ini(directory / "server.ini", settings, port=port), port, directory / "pserve.log"
    )
    return server, data, local


@pytest.fixture(scope="module")
def upstream():
    index = UpstreamIndex()
    index.add("pubdep", "1.0")
    index.add("publib", "2.0", requires_dist=("pubdep>=1.0",))
    index.add("pubextra", "1.0")
    index.add("shadowed", "9.0")
    index.add("fresh", "1.0", age=timedelta(days=200))
    index.add("fresh", "2.0", age=timedelta(hours=2))
    index.add("tampered", "1.0")
    index.add("popular", "1.0")
    index.corrupt = {"tampered-1.0-py3-none-any.whl"}
    index.start()
    yield index
    index.stop()


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    directory = tmp_path_factory.mktemp("upstream-proxy")
    server, data, local = start_proxy(directory, proxy_settings(directory, upstream))
    data.release_file("corp-private", "1.0")
    data.release_file("shadowed", "1.0")
    yield server, local
    server.process.terminate()
    server.process.wait(timeout=10)
    local.registry["db_engine"].dispose()


@pytest.fixture
def uv_python(tmp_path):
    run(
        [venv_tool("uv"), "venv", "-q", "--python", sys.executable, str(tmp_path / "venv")],
        tmp_path,
    )
    return tmp_path / "venv" / "bin" / "python"


def files_in(directory) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_pip_installs_public_with_dependencies_and_private_in_one_command(proxy, tmp_path):
    server, _ = proxy
    target = tmp_path / "target"
    pip(
        tmp_path,
        "install",
        "--target",
        str(target),
        "--index-url",
        server.index_url("reader"),
        "publib",
        "corp-private",
    )
    installed = {p.name for p in target.iterdir() if p.name.endswith(".dist-info")}
    assert installed == {
        "publib-2.0.dist-info",
        "pubdep-1.0.dist-info",
        "corp_private-1.0.dist-info",
    }


def test_uv_installs_public_with_dependencies_and_private_in_one_command(
    proxy, tmp_path, uv_python
):
    server, _ = proxy
    uv_install(tmp_path, uv_python, server.index_url("reader"), "publib", "corp-private")
    listed = run(
        [venv_tool("uv"), "pip", "list", "--format", "json", "--python", str(uv_python)], tmp_path
    ).stdout
    versions = {p["name"]: p["version"] for p in json.loads(listed)}
    assert {k: versions[k] for k in ("publib", "pubdep", "corp-private")} == {
        "publib": "2.0",
        "pubdep": "1.0",
        "corp-private": "1.0",
    }


def test_shadowed_name_resolves_to_the_local_version(proxy, upstream, tmp_path):
    server, _ = proxy
    out = tmp_path / "out"
    pip(
        tmp_path,
        "download",
        "--no-deps",
        "-d",
        str(out),
        "-i",
        server.index_url("reader"),
        "shadowed",
    )
    assert files_in(out) == {"shadowed-1.0-py3-none-any.whl"}
    assert upstream.count("/simple/shadowed/") == 0


def test_cooldown_hides_the_fresh_release(proxy, tmp_path):
    server, _ = proxy
    out = tmp_path / "out"
    pip(
        tmp_path, "download", "--no-deps", "-d", str(out), "-i", server.index_url("reader"), "fresh"
    )
    assert files_in(out) == {"fresh-1.0-py3-none-any.whl"}
    refused = pip(
        tmp_path,
        "download",
        "-d",
        str(out),
        "-i",
        server.index_url("reader"),
        "fresh==2.0",
        check=False,
    )
    assert refused.returncode != 0
    assert "No matching distribution found for fresh==2.0" in refused.stderr


def test_corrupted_upstream_file_is_refused(proxy, tmp_path):
    server, local = proxy
    out = tmp_path / "out"
    refused = pip(
        tmp_path,
        "download",
        "--no-deps",
        "-d",
        str(out),
        "-i",
        server.index_url("reader"),
        "tampered",
        check=False,
    )
    assert refused.returncode != 0
    assert "502" in refused.stderr
    assert "refused: its sha256 is" in server.log()
    assert not out.exists() or files_in(out) == set()
    storage = local.registry["extrapypi.storage"]
    # only its (intact) PEP 658 metadata was kept, never the wheel
    assert not [k for k in storage.iter_keys() if k.endswith("tampered-1.0-py3-none-any.whl")]


def test_fifty_concurrent_downloads_make_one_upstream_request(proxy, upstream, capsys):
    server, _ = proxy
    answer = fetch(f"{server.url}/simple/popular/", {**basic("reader"), "Accept": JSON})
    entry = json.loads(answer.body)["files"][0]
    url = f"{server.url}/simple/popular/{entry['url']}"
    upstream.delay = 0.5  # the first fetch is still running while the others arrive
    results = []

    def download():
        got = fetch(url, basic("reader"))
        results.append((got.status, got.body))

    threads = [threading.Thread(target=download) for _ in range(50)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        upstream.delay = 0.0
    dist = upstream.projects["popular"][0]
    assert [status for status, _ in results] == [200] * 50
    assert all(body == dist.content for _, body in results)
    requests = upstream.count(f"/files/popular/{dist.filename}")
    with capsys.disabled():
        print(f"\n50 concurrent downloads of one uncached file: {requests} upstream request(s)")
    assert requests == 1


def test_s3_storage_holds_cached_upstream_files(upstream, moto_server, s3_bucket, tmp_path):
    directory = tmp_path / "s3-proxy"
    prefix = f"upstream-{uuid.uuid4().hex[:8]}"
    settings = proxy_settings(tmp_path, upstream) | s3_settings(moto_server, s3_bucket, prefix)
    server, _, local = start_proxy(directory, settings)
    try:
        out = tmp_path / "out"
        pip(
            tmp_path,
            "download",
            "--no-deps",
            "-d",
            str(out),
            "-i",
            server.index_url("reader"),
            "pubextra",
        )
        dist = upstream.projects["pubextra"][0]
        assert (out / dist.filename).read_bytes() == dist.content
        storage = local.registry["extrapypi.storage"]
        keys = [k for k in storage.iter_keys() if k.startswith("~upstream~pubextra/")]
        [key] = [k for k in keys if k.endswith(dist.filename)]
        assert storage.hash_file(key).sha256 == dist.sha256
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
        local.registry["db_engine"].dispose()


@pytest.fixture
def own_proxy(tmp_path):
    """An upstream and a proxy of this test's own: it kills the upstream, and under pytest-xdist
    the module's other tests may run before or after it, on either worker."""
    index = UpstreamIndex()
    index.add("pubdep", "1.0")
    index.add("publib", "2.0", requires_dist=("pubdep>=1.0",))
    index.add("pubextra", "1.0")
    index.start()
    directory = tmp_path / "own-proxy"
    server, data, local = start_proxy(directory, proxy_settings(directory, index))
    data.release_file("corp-private", "1.0")
    yield server, index
    server.process.terminate()
    server.process.wait(timeout=10)
    local.registry["db_engine"].dispose()
    index.stop()


def test_upstream_killed_cached_installs_work_uncached_fail_clearly(own_proxy, tmp_path):
    server, upstream = own_proxy
    # installed once while the upstream answers: pages and files are cached
    pip(
        tmp_path,
        "install",
        "--target",
        str(tmp_path / "first"),
        "-i",
        server.index_url("reader"),
        "publib",
        "corp-private",
    )
    cached = fetch(f"{server.url}/simple/pubextra/", {**basic("reader"), "Accept": JSON})
    assert cached.status == 200
    upstream.stop()
    target = tmp_path / "target"
    pip(
        tmp_path,
        "install",
        "--target",
        str(target),
        "-i",
        server.index_url("reader"),
        "publib",
        "corp-private",
    )
    time.sleep(1.1)  # past the ttl: the page is asked for again, and the upstream is gone
    stale = fetch(f"{server.url}/simple/publib/", {**basic("reader"), "Accept": JSON})
    assert stale.status == 200
    assert stale.headers["X-Extrapypi-Upstream"] == "stale"
    assert "serving the page cached at" in server.log()
    # a page cached, its file never downloaded: pip fails, showing why (502/504)
    failed = pip(
        tmp_path,
        "download",
        "-d",
        str(tmp_path / "out"),
        "-i",
        server.index_url("reader"),
        "pubextra",
        check=False,
    )
    assert failed.returncode != 0
    assert "Server Error: the upstream index failed and pubextra-1.0" in failed.stderr
    # a page never fetched: 502 with the reason in the status line and body
    failed = fetch(f"{server.url}/simple/never-fetched/", {**basic("reader"), "Accept": JSON})
    assert failed.status in (502, 504)
    assert "the upstream index failed and the page of never-fetched is not cached" in failed.text
