"""Talking to running ``pserve`` instances over real HTTP, as pip and twine do."""

import base64
import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import pytest
from conftest import PASSWORD, venv_tool

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass
class Answer:
    status: int
    headers: object
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def fetch(url: str, headers: dict | None = None, method: str = "GET", data=None) -> Answer:
    """One request; redirects are returned, not followed."""
    request = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    try:
        with _OPENER.open(request, timeout=60) as answer:
            return Answer(answer.status, answer.headers, answer.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read())


def require_view(server, path: str, what: str, headers: dict, method: str = "GET") -> Answer:
    """Fail loudly (never skip) when a view this test needs is not in this build."""
    answer = fetch(
        server.url + path, headers, method=method, data=b"" if method == "POST" else None
    )
    if answer.status == 404:
        pytest.fail(
            f"{what} is missing from this build ({method} {path} answered 404): this test needs "
            "the index/upload/files views from the other issue-7 branches; run it after merging."
        )
    return answer


def download(server, url: str, headers: dict) -> bytes:
    """Fetch a file URL from the index; follow a redirect to the object store without credentials,
    the way pip does when the host changes."""
    answer = fetch(urllib.parse.urljoin(server.url + "/", url), headers)
    if answer.status in (301, 302, 303, 307):
        answer = fetch(answer.headers["Location"])
    assert answer.status == 200, (url, answer.status, answer.text[:300])
    return answer.body


def simple_files(server, project: str, headers: dict) -> list[dict]:
    """The files of ``/simple/<project>/`` (PEP 691 JSON): ``filename``, ``url``, ``hashes``."""
    answer = fetch(f"{server.url}/simple/{project}/", {**headers, "Accept": SIMPLE_JSON})
    assert answer.status == 200, (project, answer.status, answer.text[:300])
    assert answer.headers["Content-Type"].startswith(SIMPLE_JSON), answer.headers["Content-Type"]
    return json.loads(answer.body)["files"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def twine_upload(server, username: str, paths, password: str = PASSWORD) -> subprocess.Popen:
    """Start ``twine upload`` of ``paths`` to the server's ``/legacy/`` (returns the process)."""
    return subprocess.Popen(
        [
            venv_tool("twine"),
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
            f"{server.url}/legacy/",
            "-u",
            username,
            "-p",
            password,
            *map(str, paths),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"},
    )


def pip_download(index_url: str, requirement: str, directory) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--isolated",
            "--no-deps",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--index-url",
            index_url,
            "--dest",
            str(directory),
            requirement,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def server_errors(server) -> list[str]:
    """Unhandled exceptions (each a 500 to some client) in a pserve log."""
    return [
        line
        for line in server.log().splitlines()
        if "Traceback" in line or "Exception while serving" in line
    ]
