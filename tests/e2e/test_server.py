"""A real ``pserve`` process: /ping without login, 401 challenge on the index."""

import urllib.error
import urllib.request

import pytest


@pytest.mark.e2e
def test_pserve_answers_ping_and_challenges_anonymous_index(live_server):
    with urllib.request.urlopen(live_server.url + "/ping", timeout=5) as response:
        assert response.status == 200
        assert response.read() == b"pong"
        assert response.headers["Content-Type"].startswith("text/plain")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(live_server.url + "/simple/", timeout=5)
    assert refused.value.code == 401
    assert refused.value.headers["WWW-Authenticate"] == 'Basic realm="extrapypi"'
