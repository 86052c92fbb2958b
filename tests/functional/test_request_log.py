"""A log line per request (user, method, path, status, duration); uploads, deletions at INFO."""

import logging
import re

import pytest
from conftest import basic_auth

from extrapypi.services.accounts import get_user
from extrapypi.services.packages import delete_file, get_file

LINE = re.compile(r"^(?P<user>\S+) (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) [\d.]+ms$")


@pytest.fixture
def request_log(caplog):
    caplog.set_level(logging.INFO, logger="extrapypi")

    def lines() -> list[dict]:
        return [
            LINE.match(record.getMessage()).groupdict()
            for record in caplog.records
            if record.name == "extrapypi.requests"
        ]

    return lines


def test_request_lines_name_the_user_method_path_status(testapp, data, request_log):
    data.user("bob")
    testapp.get("/ping")
    testapp.get("/simple/", status=401)
    testapp.get("/?page=2", headers=basic_auth("bob"))
    testapp.post("/", headers=basic_auth("bob"), status=400)  # no :action: not an upload
    testapp.get("/", headers=basic_auth("bob", "wrong"), status=401)
    assert request_log() == [
        {"user": "-", "method": "GET", "path": "/ping", "status": "200"},
        {"user": "-", "method": "GET", "path": "/simple/", "status": "401"},
        {"user": "bob", "method": "GET", "path": "/?page=2", "status": "200"},
        {"user": "bob", "method": "POST", "path": "/", "status": "400"},
        {"user": "-", "method": "GET", "path": "/", "status": "401"},
    ]


def test_uploads_and_deletions_are_logged_once_committed(app, data, caplog):
    caplog.set_level(logging.INFO, logger="extrapypi")
    data.user("dev", role="developer")
    built = data.release_file("logged", "1.0", kind="sdist", uploader="dev")
    uploads = [r.getMessage() for r in caplog.records if r.getMessage().startswith("upload ")]
    assert len(uploads) == 1
    assert uploads[0].startswith(f"upload {built['filename']} (logged 1.0, ")
    assert uploads[0].endswith(") by dev")

    storage = app.registry["extrapypi.storage"]
    tm, dbsession = data.session()
    tm.begin()
    delete_file(dbsession, storage, tm.get(), get_file(dbsession, built["filename"]), None)
    tm.abort()  # an aborted deletion never happened: no line
    assert not [r for r in caplog.records if r.getMessage().startswith("delete file")]
    with tm:
        actor = get_user(dbsession, "dev")
        delete_file(dbsession, storage, tm.get(), get_file(dbsession, built["filename"]), actor)
    deletions = [r.getMessage() for r in caplog.records if r.getMessage().startswith("delete ")]
    assert deletions == [f"delete file {built['filename']} by dev"]
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name.startswith("extrapypi"))
