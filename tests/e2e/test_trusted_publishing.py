"""``uv publish --trusted-publishing always`` end to end, in a simulated GitHub Actions job.

A test OIDC issuer runs as its own process (its own key, ``/.well-known/openid-configuration``,
a JWKS, and the ``ACTIONS_ID_TOKEN_REQUEST_URL`` endpoint with the bearer check). uv builds
``https://<host>/_/oidc/...`` from the upload URL's host, so extrapypi is served over HTTPS by
gunicorn with a certificate from a throw-away CA (``trustme``), and uv trusts that CA through
``SSL_CERT_FILE``. The issuer itself is plain http on loopback (PEP 807 allows it).

One database, its own SQLite file (not the suite's per-backend parametrization): the exchange
runs the same SQL on all three, which the functional tests (tests/functional/test_oidc.py)
cover. The publisher is registered *pending*: the first upload creates the project.
"""

import json
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
import trustme
from conftest import SECRET, free_port, venv_tool, write_ini
from dists import wheel_bytes, write
from sqlalchemy.orm import Session
from test_twine import client_env

from extrapypi import schema
from extrapypi.models import ApiToken, File, JournalEntry, Package, TrustedPublisher
from extrapypi.permissions import Role
from extrapypi.services import oidc as oidc_service
from extrapypi.services.accounts import NewUser, create_user
from extrapypi.services.passwords import NO_POLICY

pytestmark = pytest.mark.e2e

REQUEST_TOKEN = "gh-request-token-for-this-job"
ISSUER_SCRIPT = str(Path(__file__).parent.parent / "oidc_issuer.py")


def _wait(url: str, context=None, expect=b"pong", process=None, log=None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"exited: {log.read_text() if log else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                if expect in response.read():
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


class IssuerProcess:
    def __init__(self, directory: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.overrides = directory / f"overrides-{self.port}.json"
        self.overrides.write_text("{}")
        self.log = directory / f"issuer-{self.port}.log"
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, ISSUER_SCRIPT, str(self.port), REQUEST_TOKEN, str(self.overrides)],
                stdout=out,
                stderr=out,
            )
        _wait(self.url + "/requests", expect=b"requests", process=self.process, log=self.log)

    def requests(self) -> list[str]:
        with urllib.request.urlopen(self.url + "/requests", timeout=5) as response:
            return json.load(response)["requests"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tp")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_file, cert_file, key_file = (
        directory / "ca.pem",
        directory / "cert.pem",
        directory / "key.pem",
    )
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for blob in cert.cert_chain_pems[1:]:
        blob.write_to_path(str(cert_file), append=True)
    cert.private_key_pem.write_to_path(str(key_file))
    issuer = IssuerProcess(directory)
    unlisted = IssuerProcess(directory)
    port = free_port()
    (directory / "packages").mkdir()
    settings = {
        "sqlalchemy.url": f"sqlite:///{directory}/tp.sqlite",
        "extrapypi.secret": SECRET,
        "extrapypi.storage": "local",
        "extrapypi.storage.path": str(directory / "packages"),
        "extrapypi.bcrypt_rounds": "4",
        "extrapypi.webhooks.background": "false",
        "extrapypi.oidc.issuers": issuer.url,
    }
    ini = write_ini(directory / "tp.ini", settings, port=port)
    schema.upgrade(ini)
    engine = sa.create_engine(settings["sqlalchemy.url"])
    with Session(engine) as dbsession, dbsession.begin():
        alice = create_user(
            dbsession, NewUser("alice", "correct horse", Role.DEVELOPER), rounds=4, policy=NO_POLICY
        )
        oidc_service.add_publisher(
            dbsession,
            oidc_service.OidcSettings((issuer.url,)),
            "widget",
            issuer.url,
            {"repository": "acme/widget"},
            alice,
        )
    log = directory / "gunicorn.log"
    command = [
        venv_tool("gunicorn"),
        "--paste",
        ini,
        "-b",
        f"127.0.0.1:{port}",
        "--certfile",
        str(cert_file),
        "--keyfile",
        str(key_file),
    ]
    with open(log, "w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=out)
    url = f"https://localhost:{port}"
    try:
        _wait(
            url + "/ping", ssl.create_default_context(cafile=str(ca_file)), process=server, log=log
        )
        yield {"url": url, "ca": ca_file, "issuer": issuer, "unlisted": unlisted, "db": engine}
    finally:
        engine.dispose()
        server.terminate()
        server.wait(timeout=20)
        issuer.stop()
        unlisted.stop()


@pytest.fixture
def publisher(world):
    world["issuer"].overrides.write_text("{}")
    return world


def uv_publish(world, tmp_path, version: str, issuer=None):
    issuer = issuer or world["issuer"]
    dist = write(tmp_path, wheel_bytes("widget", version))
    env = client_env(tmp_path)
    env.update(
        GITHUB_ACTIONS="true",
        ACTIONS_ID_TOKEN_REQUEST_URL=issuer.url + "/token",
        ACTIONS_ID_TOKEN_REQUEST_TOKEN=REQUEST_TOKEN,
        SSL_CERT_FILE=str(world["ca"]),
    )
    return subprocess.run(
        [
            venv_tool("uv"),
            "publish",
            "--trusted-publishing",
            "always",
            "--publish-url",
            world["url"] + "/legacy/",
            str(dist),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def output(result) -> str:
    return result.stdout + result.stderr


def test_uv_publish_with_trusted_publishing(publisher, tmp_path):
    """The pending publisher's first upload creates the project, and becomes its publisher."""
    result = uv_publish(publisher, tmp_path, "2.0")
    assert result.returncode == 0, output(result)
    with publisher["db"].connect() as connection:
        file = connection.execute(
            sa.select(File.upload_publisher).where(File.filename == "widget-2.0-py3-none-any.whl")
        ).one()
        token = connection.execute(sa.select(ApiToken.__table__)).one()
        actions = connection.execute(sa.select(JournalEntry.action)).scalars().all()
        package = connection.execute(sa.select(Package.id, Package.name)).one()
        publisher_row = connection.execute(sa.select(TrustedPublisher.__table__)).one()
    assert file.upload_publisher == "acme/widget"
    assert (token.publisher, token.projects, token.scope) == ("acme/widget", "widget", "upload")
    # uv burnt the token after its upload: revoked at once, not left to expire
    assert token.revoked is not None
    assert actions.count("mint token") == 1 and actions.count("revoke token") == 1
    assert package.name == "widget"
    assert (publisher_row.package_id, publisher_row.pending_name) == (package.id, None)
    requests = publisher["issuer"].requests()
    assert "/token" in requests and "/.well-known/openid-configuration" in requests


def test_wrong_repository_claim(publisher, tmp_path):
    publisher["issuer"].overrides.write_text(json.dumps({"repository": "evil/widget"}))
    result = uv_publish(publisher, tmp_path, "2.1")
    assert result.returncode != 0
    assert "invalid-publisher" in output(result)
    assert "repository=evil/widget" in output(result)


def test_expired_jwt(publisher, tmp_path):
    publisher["issuer"].overrides.write_text(json.dumps({"_offset": -1000}))
    result = uv_publish(publisher, tmp_path, "2.2")
    assert result.returncode != 0 and "the token has expired" in output(result)


def test_wrong_audience(publisher, tmp_path):
    publisher["issuer"].overrides.write_text(json.dumps({"aud": "pypi"}))
    result = uv_publish(publisher, tmp_path, "2.3")
    assert result.returncode != 0
    assert "audience is 'pypi'; this index expects 'localhost:" in output(result)


def test_replayed_jti(publisher, tmp_path):
    publisher["issuer"].overrides.write_text(json.dumps({"jti": "the-same-every-time"}))
    first = uv_publish(publisher, tmp_path, "2.4")
    assert first.returncode == 0, output(first)
    again = uv_publish(publisher, tmp_path, "2.5")
    assert again.returncode != 0
    assert "jti 'the-same-every-time') was used already" in output(again)


def test_unlisted_issuer_is_never_asked(publisher, tmp_path):
    unlisted = publisher["unlisted"]
    before = unlisted.requests()
    result = uv_publish(publisher, tmp_path, "2.6", issuer=unlisted)
    assert result.returncode != 0
    assert f"issuer '{unlisted.url}' is not one this index trusts" in output(result)
    # the job asked it for a JWT; the index asked it nothing (no configuration, no keys)
    assert unlisted.requests()[len(before) :] == ["/token"]
