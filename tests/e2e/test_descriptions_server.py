"""The review's description repros against a real ``pserve``: refused or harmless, in time."""

import hashlib
import time

import pytest
import requests
import sqlalchemy as sa
from bs4 import BeautifulSoup
from dists import sdist_bytes

from extrapypi.models import RenderedDescription
from extrapypi.permissions import Role

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse"
DEEP_RST = "".join(" " * i + "x\n\n" for i in range(200))
PARAGRAPH = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 16 + "*Sed* ``do``.\n\n"
BIG_RST = "Big\n===\n\n" + PARAGRAPH * (4_000_000 // len(PARAGRAPH))


def form(name: str, content: bytes, description: str) -> dict[str, str]:
    """What twine sends for an sdist."""
    return {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": name,
        "version": "1.0",
        "filetype": "sdist",
        "pyversion": "source",
        "sha256_digest": hashlib.sha256(content).hexdigest(),
        "description": description,
        "description_content_type": "text/x-rst",
    }


def test_hostile_descriptions_at_a_real_server(live_server, data, engine):
    data.user("dev", Role.ADMIN)
    client = requests.Session()
    client.auth = ("dev", PASSWORD)

    def upload(name: str, description: str) -> float:
        built = sdist_bytes(name, "1.0")
        fields = form(name, built[1], description)
        started = time.monotonic()
        answer = client.post(
            live_server.url + "/legacy/",
            data=fields,
            files={"content": (built[0], built[1])},
            timeout=60,
        )
        assert answer.status_code == 200, answer.reason
        return time.monotonic() - started

    upload("warm", "*warm*")  # the server starts its renderer process
    assert upload("big", BIG_RST) < 5.0
    upload("deep", DEEP_RST)
    for path in ("/packages/deep/", "/packages/deep/1.0/", "/packages/big/"):
        answer = client.get(live_server.url + path, timeout=10)
        assert answer.status_code == 200, path
        note = BeautifulSoup(answer.text, "html.parser").select_one(".description-note")
        assert note is not None and "shown" in note.text, path

    with engine.begin() as connection:  # as if uploaded before the table existed
        connection.execute(sa.delete(RenderedDescription))
    answer = client.get(live_server.url + "/packages/warm/1.0/", timeout=10)
    assert answer.status_code == 200
    assert "<em>warm</em>" in answer.text
    with engine.connect() as connection:
        assert connection.execute(sa.select(RenderedDescription.failure)).scalars().all() == [""]
    assert "Traceback" not in live_server.log()
