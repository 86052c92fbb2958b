"""Two ``pserve`` on one PostgreSQL database and one S3 bucket, twine through both at once.

Needs the upload view (``/legacy/``), the simple index (PEP 691 JSON) and the file downloads: until
those branches are merged its tests fail with a message saying so (they are never skipped).

Each server reads the change serials at most once a second (``extrapypi.serial_check_seconds``,
default 1): a change made through one is seen by the other within that delay, never later.
"""

import time
import uuid

import pytest
from conftest import SECRET, Data, _server_database, free_port, s3_settings, start_server, write_ini
from dists import sdist_bytes, wheel_bytes, write
from instances import (
    basic,
    download,
    fetch,
    pip_download,
    require_view,
    server_errors,
    sha256,
    simple_files,
    twine_upload,
)

from extrapypi import main, schema
from extrapypi.permissions import Role
from extrapypi.services.accounts import get_user

#: The servers' default serial check delay, and room for the checking requests' own time.
SERIAL_DELAY = 1.0
MARGIN = 1.0
UPLOADER = "ci-upload"  # one account uploading from many CI jobs, through any instance
READER = "reader"


@pytest.fixture(scope="module")
def cluster(moto_server, s3_bucket, tmp_path_factory):
    """Two app servers sharing a fresh PostgreSQL database and one bucket prefix."""
    url, drop = _server_database("postgresql")
    directory = tmp_path_factory.mktemp("cluster")
    settings = {
        "sqlalchemy.url": url,
        "retry.attempts": "5",
        "extrapypi.secret": SECRET,
        "extrapypi.bcrypt_rounds": "4",
        "extrapypi.upload_limit": "10M",
        **s3_settings(moto_server, s3_bucket, f"cluster-{uuid.uuid4().hex[:8]}"),
    }
    schema.upgrade(write_ini(directory / "migrate.ini", settings))  # once, like initialize_db
    local = main({}, **settings)
    data = Data(local)
    data.user(UPLOADER, Role.DEVELOPER)
    data.user(READER, Role.INSTALLER)

    servers = []
    try:
        for name in ("a", "b"):
            port = free_port()
            ini = write_ini(directory / f"{name}.ini", settings, port=port)
            servers.append(start_server(ini, port, directory / f"{name}.log"))
        for server in servers:
            require_view(server, "/legacy/", "the upload view", basic(UPLOADER), method="POST")
            require_view(server, "/simple/", "the simple index view", basic(READER))
        yield servers, local.registry["extrapypi.storage"], directory, data
    finally:
        for server in servers:
            server.process.terminate()
            server.process.wait(timeout=10)
        local.registry["db_engine"].dispose()
        drop()


def build(directory, name: str, version: str) -> list:
    return [
        write(directory, wheel_bytes(name, version)),
        write(directory, sdist_bytes(name, version)),
    ]


def run_all(processes) -> list[tuple[int, str]]:
    results = []
    for process in processes:
        out, _ = process.communicate(timeout=300)
        results.append((process.returncode, out))
    return results


def eventually(check):
    """Run ``check`` until it passes; fail when that takes longer than the serial delay allows
    (counted from the change's commit: callers call this right after it)."""
    started = time.monotonic()
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() - started > SERIAL_DELAY + MARGIN:
                raise
            time.sleep(0.05)


def check_index(servers, storage, expected: dict[str, dict[str, bytes]]) -> None:
    """Both instances list exactly the expected files, once each, and serve their bytes."""
    for server in servers:
        for project, files in expected.items():
            listed = simple_files(server, project, basic(READER))
            names = [f["filename"] for f in listed]
            assert len(names) == len(set(names)), f"duplicates on {server.url}: {names}"
            assert set(names) == set(files), server.url
            for entry in listed:
                content = files[entry["filename"]]
                assert entry["hashes"]["sha256"] == sha256(content)
                assert download(server, entry["url"], basic(READER)) == content
    stored = {key.rpartition("/")[2] for key in storage.iter_keys()}
    assert {f for files in expected.values() for f in files} <= stored
    assert list(storage.iter_staged()) == []


@pytest.mark.e2e
def test_concurrent_uploads_through_two_instances(cluster):
    servers, storage, directory, _ = cluster
    batch = directory / f"batch-{uuid.uuid4().hex[:6]}"
    batch.mkdir()
    plan = {  # (server index, project) → files; both instances create each project at once
        (0, "alpha"): build(batch, "alpha", "1.0") + build(batch, "alpha", "1.2"),
        (1, "alpha"): build(batch, "alpha", "1.1") + build(batch, "alpha", "1.3"),
        (0, "beta"): build(batch, "beta", "1.0") + build(batch, "beta", "1.2"),
        (1, "beta"): build(batch, "beta", "1.1") + build(batch, "beta", "1.3"),
    }
    started = time.monotonic()
    processes = [
        twine_upload(servers[index], UPLOADER, paths) for (index, _), paths in plan.items()
    ]
    results = run_all(processes)
    elapsed = time.monotonic() - started

    for (returncode, out), key in zip(results, plan, strict=True):
        assert returncode == 0, f"{key}: {out}"
        assert " 500 " not in out and "Internal Server Error" not in out
    for server in servers:
        assert server_errors(server) == [], server.log()
    expected = {
        project: {
            p.name: p.read_bytes()
            for (_, name), paths in plan.items()
            for p in paths
            if name == project
        }
        for project in ("alpha", "beta")
    }
    eventually(lambda: check_index(servers, storage, expected))
    print(f"16 files through 2 instances in {elapsed:.1f} s")


@pytest.mark.e2e
def test_the_same_file_through_both_instances_at_once_is_stored_once(cluster):
    servers, storage, directory, _ = cluster
    batch = directory / f"same-{uuid.uuid4().hex[:6]}"
    batch.mkdir()
    paths = build(batch, "gamma", "1.0")
    results = run_all(
        [twine_upload(servers[0], UPLOADER, paths), twine_upload(servers[1], UPLOADER, paths)]
    )

    assert any(code == 0 for code, _ in results), results
    print("same file through both instances: exit codes", [code for code, _ in results])
    for code, out in results:
        assert " 500 " not in out and "Internal Server Error" not in out, out
        if code != 0:  # the loser is told in plain words, with a 4xx
            assert any(f" {status} " in out for status in (400, 403, 409)), out
    for server in servers:
        assert server_errors(server) == [], server.log()
    eventually(
        lambda: check_index(servers, storage, {"gamma": {p.name: p.read_bytes() for p in paths}})
    )


@pytest.mark.e2e
def test_a_page_cached_by_one_instance_shows_an_upload_through_the_other(cluster, tmp_path):
    servers, _, directory, _ = cluster
    batch = directory / f"cache-{uuid.uuid4().hex[:6]}"
    batch.mkdir()
    first = build(batch, "delta", "1.0")
    assert run_all([twine_upload(servers[0], UPLOADER, first)])[0][0] == 0
    for _ in range(3):  # let instance A render (and cache) the project page
        listed = {f["filename"] for f in simple_files(servers[0], "delta", basic(READER))}
        assert listed == {p.name for p in first}
        page = fetch(f"{servers[0].url}/simple/delta/", {**basic(READER), "Accept": "text/html"})
        assert page.status == 200 and "delta-1.1" not in page.text

    second = build(batch, "delta", "1.1")
    code, out = run_all([twine_upload(servers[1], UPLOADER, second)])[0]
    assert code == 0, out

    def shows_the_upload():
        listed = {f["filename"] for f in simple_files(servers[0], "delta", basic(READER))}
        assert listed == {p.name for p in first + second}
        page = fetch(f"{servers[0].url}/simple/delta/", {**basic(READER), "Accept": "text/html"})
        assert page.status == 200
        for path in second:
            assert path.name in page.text

    eventually(shows_the_upload)  # instance A re-reads the serial within a second

    host = servers[0].url.split("://", 1)[1]
    result = pip_download(f"http://{READER}:correct%20horse@{host}/simple/", "delta==1.1", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    wheel = next(p for p in second if p.suffix == ".whl")
    assert (tmp_path / wheel.name).read_bytes() == wheel.read_bytes()


@pytest.mark.e2e
def test_user_changes_reach_every_instance_within_a_second(cluster):
    """Deactivation and a new role, made by another process (the CLI, a third server), end the
    cached logins of both servers within the serial delay; an upload in between ends none."""
    servers, _, directory, data = cluster
    name = f"temp-{uuid.uuid4().hex[:6]}"
    data.user(name, Role.ADMIN)
    for server in servers:
        for _ in range(2):  # verified, then from each server's login cache
            assert fetch(f"{server.url}/users/", basic(name)).status == 200

    batch = directory / f"users-{uuid.uuid4().hex[:6]}"
    batch.mkdir()
    code, out = run_all([twine_upload(servers[1], UPLOADER, build(batch, "epsilon", "1.0"))])[0]
    assert code == 0, out
    for server in servers:  # the upload moved the index serial only: the login still stands
        assert fetch(f"{server.url}/users/", basic(name)).status == 200

    tm, dbsession = data.session()
    with tm:
        get_user(dbsession, name).role = Role.INSTALLER.value

    def refused(path: str, status: int):
        def check():
            for server in servers:
                assert fetch(f"{server.url}{path}", basic(name)).status == status, server.url

        return check

    eventually(refused("/users/", 403))
    with tm:
        get_user(dbsession, name).is_active = False
    eventually(refused("/simple/", 401))
