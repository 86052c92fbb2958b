"""A real ``pserve`` on the S3 backend (a real moto server process), driven by pip."""

import hashlib

import pytest
from conftest import free_port, start_server, write_ini
from instances import basic, fetch, pip_download, require_view, server_errors

from extrapypi.permissions import Role


@pytest.fixture(scope="module", params=["redirect", "stream"])
def s3_server(request, s3_app, s3_app_settings, tmp_path_factory):
    """pserve on the same database and bucket prefix as ``s3_app`` (so ``s3_data`` shows)."""
    directory = tmp_path_factory.mktemp("s3-server")
    port = free_port()
    settings = s3_app_settings | {
        "extrapypi.storage.redirect": "true" if request.param == "redirect" else "false"
    }
    ini = write_ini(directory / "server.ini", settings, port=port)
    server = start_server(ini, port, directory / "pserve.log")
    server.mode = request.param
    server.ini_text = open(ini).read()
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.mark.e2e
def test_pserve_runs_on_s3_with_credentials_only_from_the_environment(s3_server, moto_server):
    assert "extrapypi.storage = s3" in s3_server.ini_text
    assert f"extrapypi.storage.endpoint_url = {moto_server.url}" in s3_server.ini_text
    for credential in ("testing", "aws_access_key_id", "aws_secret_access_key"):
        assert credential not in s3_server.ini_text.lower()
    assert fetch(s3_server.url + "/ping").body == b"pong"
    assert server_errors(s3_server) == []


@pytest.mark.e2e
def test_pip_downloads_a_file_stored_in_s3(s3_server, s3_data, moto_server, tmp_path):
    s3_data.user("ci", Role.INSTALLER)
    stored = s3_data.release_file("demo-s3", "1.0")
    filename = stored["filename"]
    require_view(s3_server, "/simple/demo-s3/", "the simple index view", basic("ci"))
    answer = require_view(
        s3_server, f"/packages/demo-s3/1.0/{filename}", "the file download view", basic("ci")
    )
    if s3_server.mode == "redirect":
        assert answer.status == 302
        assert answer.headers["Location"].startswith(moto_server.url + "/")
        assert hashlib.sha256(fetch(answer.headers["Location"]).body).hexdigest() == (
            hashlib.sha256(stored["content"]).hexdigest()
        )
    else:
        assert answer.status == 200
        assert answer.body == stored["content"]

    host = s3_server.url.split("://", 1)[1]
    result = pip_download(f"http://ci:correct%20horse@{host}/simple/", "demo-s3==1.0", tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / filename).read_bytes() == stored["content"]
    assert server_errors(s3_server) == []
