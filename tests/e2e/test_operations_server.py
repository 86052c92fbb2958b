"""Operations on real servers: gunicorn multiprocess metrics scraped and parsed, download counts
written in batches and at exit, and webhooks delivered by pserve's own thread with retries."""

import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import basic_auth, free_port, venv_tool, write_ini
from prometheus_client.parser import text_string_to_metric_families
from receiver import Receiver
from test_deployment import Served, _get

from extrapypi.models import DownloadCount, WebhookDelivery
from extrapypi.permissions import Role
from extrapypi.services import webhooks

pytestmark = pytest.mark.e2e


@pytest.fixture
def serve(tmp_path):
    """``test_deployment``'s server starter: stops what it started."""
    started: list[Served] = []

    def start(command: list[str], port: int, env: dict | None = None) -> Served:
        served = Served(command, port, tmp_path / f"server-{len(started)}.log", env)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


def scrape(url: str, headers: dict) -> dict[str, list]:
    status, body = _get(url + "/metrics", headers)
    assert status == 200, body
    return {f.name: f.samples for f in text_string_to_metric_families(body.decode())}


def test_gunicorn_workers_metrics_add_up_and_counts_reach_the_database(
    base_settings, data, engine, tmp_path, serve
):
    data.user("boss", Role.ADMIN)
    data.user("reader")
    filename = data.release_file("Demo", "1.0")["filename"]
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    port = free_port()
    settings = base_settings | {
        "extrapypi.downloads.flush_count": "5",
        "extrapypi.downloads.min_flush_seconds": "0",  # every batch of 5, not once a second
    }
    ini = write_ini(tmp_path / "gunicorn.ini", settings, port=port)
    command = [venv_tool("gunicorn"), "--paste", ini, "-b", f"127.0.0.1:{port}", "-w", "2"]
    served = serve(command, port, env={"PROMETHEUS_MULTIPROC_DIR": str(multiproc)})

    downloads = 23
    for _ in range(downloads):
        status, _ = _get(f"{served.url}/packages/demo/1.0/{filename}", basic_auth("reader"))
        assert status == 200
    status, _ = _get(served.url + "/metrics", basic_auth("reader"))
    assert status == 403

    families = scrape(served.url, basic_auth("boss"))
    [demo] = [s for s in families["extrapypi_downloads"] if s.labels.get("project") == "demo"]
    assert demo.name == "extrapypi_downloads_total"
    assert demo.value == downloads
    requests = [
        s
        for s in families["extrapypi_http_requests"]
        if s.labels.get("view") == "FileResource" and s.labels.get("status") == "200"
    ]
    assert sum(s.value for s in requests) == downloads
    latency = [
        s
        for s in families["extrapypi_http_request_duration_seconds"]
        if s.name.endswith("_count") and s.labels.get("view") == "FileResource"
    ]
    assert sum(s.value for s in latency) == downloads
    assert list(multiproc.glob("counter_*.db"))  # each worker writes its own file

    # Batches of 5 are written while serving; what is left is written when the workers stop.
    # (each batch is written on a thread of its own: give the last ones a moment)
    deadline = time.monotonic() + 10
    while True:
        with engine.connect() as connection:
            written = connection.execute(sa.select(DownloadCount.count)).scalar() or 0
        if written > downloads - 2 * 5 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert downloads - 2 * 5 < written <= downloads
    served.stop()
    with engine.connect() as connection:
        assert connection.execute(sa.select(DownloadCount.count)).scalar_one() == downloads


def test_pserve_delivers_webhooks_itself_with_retries(base_settings, data, engine, tmp_path):
    from conftest import start_server

    receiver = Receiver()
    try:
        receiver.fail = 2
        tm, dbsession = data.session()
        with tm:
            endpoint_id = webhooks.create_endpoint(dbsession, receiver.url).id
        port = free_port()
        settings = base_settings | {
            "extrapypi.webhooks.background": "true",
            "extrapypi.webhooks.poll_interval": "0.2",
            "extrapypi.webhooks.backoff": "0.1",
            "extrapypi.webhooks.backoff_max": "0.2",
        }
        ini = write_ini(tmp_path / "hooks.ini", settings, port=port)
        server = start_server(ini, port, tmp_path / "pserve.log")
        try:
            data.user("newcomer")  # queued by another process; the server's thread polls
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with engine.connect() as connection:
                    rows = connection.execute(sa.select(WebhookDelivery)).all()
                if rows and rows[0].state != "pending":
                    break
                time.sleep(0.1)
        finally:
            server.process.terminate()
            server.process.wait(timeout=10)
        assert len(receiver.requests) == 3, server.log()
        assert [(r.state, r.attempts, r.endpoint_id) for r in rows] == [
            ("delivered", 3, endpoint_id)
        ]
        payload = json.loads(receiver.requests[-1]["body"])
        assert (payload["event"], payload["username"]) == ("new_user", "newcomer")
        assert "Traceback" not in Path(server.log_path).read_text()
    finally:
        receiver.close()
