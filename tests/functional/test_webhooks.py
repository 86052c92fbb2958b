"""Webhooks: queued with the change, signed, delivered to a real local receiver with retries.

The receiver is ``http.server`` on 127.0.0.1 that fails its first requests; delivery runs
``deliver_due`` (what the app's thread and ``extrapypi webhook deliver`` run), and the
two-process test starts two real ``extrapypi webhook deliver`` processes on one database.
"""

import hashlib
import hmac
import json
import subprocess

import pytest
import sqlalchemy as sa
from conftest import venv_tool
from receiver import Receiver
from test_dashboard import BROWSER, log_in

from extrapypi.models import WebhookDelivery
from extrapypi.permissions import Role
from extrapypi.scripts.cli import main as extrapypi
from extrapypi.services import webhooks
from extrapypi.services.accounts import NewUser, create_user
from extrapypi.services.packages import get_package, get_release, set_yanked

FAST = webhooks.WebhookSettings(timeout=5, max_attempts=4, backoff=0, backoff_max=0, batch=5)


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def add_endpoint(data, url: str, package: str = "", events=None) -> tuple[int, str]:
    tm, dbsession = data.session()
    with tm:
        endpoint = webhooks.create_endpoint(dbsession, url, package, events)
        return endpoint.id, endpoint.secret


def deliveries(data) -> list[WebhookDelivery]:
    tm, dbsession = data.session()
    with tm:
        rows = dbsession.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
        dbsession.expunge_all()
        return rows


def deliver(app, settings=FAST) -> webhooks.DeliveryReport:
    return webhooks.deliver_due(app.registry["dbsession_factory"], settings)


def test_upload_is_delivered_signed_after_the_receiver_comes_back(app, data, receiver):
    endpoint_id, secret = add_endpoint(data, receiver.url)
    receiver.fail = 2
    built = data.release_file("Demo", "1.0")
    [queued] = deliveries(data)
    assert (queued.event, queued.state, queued.attempts) == ("upload", "pending", 0)

    assert deliver(app).retrying == 1
    row = deliveries(data)[0]
    assert (row.state, row.attempts, row.last_status) == ("pending", 1, 503)
    assert row.last_error == "HTTP 503 Service Unavailable"
    assert deliver(app).retrying == 1
    assert deliver(app).delivered == 1
    assert deliver(app).attempted == 0  # nothing left

    row = deliveries(data)[0]
    assert (row.state, row.attempts, row.last_status, row.last_error) == ("delivered", 3, 200, "")
    assert row.finished is not None
    assert len(receiver.requests) == 3
    bodies = {r["body"] for r in receiver.requests}
    assert len(bodies) == 1  # the same event every time
    request = receiver.requests[-1]
    body = request["body"]
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert request["headers"]["X-Extrapypi-Signature"] == expected
    assert request["headers"]["X-Extrapypi-Event"] == "upload"
    assert request["headers"]["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert payload["event"] == "upload"
    assert payload["package"] == "Demo"
    assert payload["version"] == "1.0"
    assert payload["filename"] == built["filename"]
    assert endpoint_id == row.endpoint_id


def test_nothing_is_queued_when_the_change_rolls_back(app, data, receiver):
    add_endpoint(data, receiver.url)
    tm, dbsession = data.session()
    tm.begin()
    create_user(dbsession, NewUser("ghost", "correct horse", Role.INSTALLER, "", True), rounds=4)
    dbsession.flush()
    assert dbsession.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 1
    tm.abort()
    assert deliveries(data) == []
    assert deliver(app).attempted == 0
    assert receiver.requests == []


def test_endpoints_get_only_their_package_and_events(app, data, receiver):
    data.release_file("Alpha", "1.0")
    data.release_file("Beta", "1.0")
    yanks_of_alpha, _ = add_endpoint(data, receiver.url, "ALPHA", "yank,unyank")
    everything, _ = add_endpoint(data, receiver.url)
    tm, dbsession = data.session()
    with tm:
        for name in ("Alpha", "Beta"):
            release = get_release(dbsession, get_package(dbsession, name), "1.0")
            set_yanked(dbsession, release, True, "broken", None)
        create_user(dbsession, NewUser("newbie", "correct horse", "installer", "", True), rounds=4)
    sent = [(d.endpoint_id, d.event, json.loads(d.payload)) for d in deliveries(data)]
    assert [(e, ev, p["package"]) for e, ev, p in sent] == [
        (yanks_of_alpha, "yank", "Alpha"),
        (everything, "yank", "Alpha"),
        (everything, "yank", "Beta"),
        (everything, "new_user", ""),
    ]
    assert sent[0][2]["detail"] == "broken"
    assert sent[-1][2]["username"] == "newbie"
    assert deliver(app).delivered == 4
    assert len(receiver.requests) == 4


def test_deleting_a_release_is_an_event(app, data, receiver):
    from extrapypi.services.packages import delete_release

    data.release_file("Gone", "1.0")
    add_endpoint(data, receiver.url, events=["delete"])
    tm, dbsession = data.session()
    with tm:
        release = get_release(dbsession, get_package(dbsession, "Gone"), "1.0")
        delete_release(dbsession, app.registry["extrapypi.storage"], tm.get(), release, None)
    [row] = deliveries(data)
    assert row.event == "delete"
    assert json.loads(row.payload)["action"] == "delete release"


def test_a_redirect_is_not_followed(app, data, receiver):
    add_endpoint(data, receiver.url)
    receiver.fail, receiver.status = 1, 302
    receiver.location = receiver.url.replace("/hook", "/elsewhere")
    data.user("someone")
    assert deliver(app).retrying == 1
    assert [r["path"] for r in receiver.requests] == ["/hook"]
    row = deliveries(data)[0]
    assert row.last_status == 302
    assert "redirect not followed" in row.last_error


def test_gives_up_after_max_attempts_and_backs_off(app, data, receiver):
    add_endpoint(data, receiver.url)
    receiver.fail = 100
    data.user("someone")
    settings = webhooks.WebhookSettings(timeout=5, max_attempts=2, backoff=0, backoff_max=0)
    assert deliver(app, settings).retrying == 1
    assert deliver(app, settings).failed == 1
    assert deliver(app, settings).attempted == 0
    row = deliveries(data)[0]
    assert (row.state, row.attempts) == ("failed", 2)
    # The backoff doubles and is capped.
    backoff = webhooks.WebhookSettings(backoff=10, backoff_max=60)
    assert [backoff.delay(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]


def test_a_receiver_that_is_down_loses_nothing(app, data, receiver):
    add_endpoint(data, "http://127.0.0.1:9/nothing-listens-here")
    data.user("someone")
    assert deliver(app).retrying == 1
    row = deliveries(data)[0]
    assert row.state == "pending" and row.last_status is None
    assert "refused" in row.last_error.lower()


def test_a_claimed_delivery_is_invisible_to_other_workers(app, data, receiver):
    add_endpoint(data, receiver.url)
    data.user("someone")
    factory = app.registry["dbsession_factory"]
    first = webhooks.claim_due(factory, FAST)
    assert len(first) == 1
    assert webhooks.claim_due(factory, FAST) == []  # leased until the timeout has passed


def test_refused_endpoint_urls(app, data):
    tm, dbsession = data.session()
    with tm:
        for url, reason in (
            ("ftp://example.com/x", "http:// or https://"),
            ("file:///etc/passwd", "http:// or https://"),
            ("javascript:alert(1)", "http:// or https://"),
            ("http://user:pw@example.com/", "no credentials"),
            ("http://example.com/a b", "spaces"),
        ):
            with pytest.raises(webhooks.WebhookError, match=reason):
                webhooks.create_endpoint(dbsession, url)
        with pytest.raises(webhooks.WebhookError, match="Unknown event bogus"):
            webhooks.create_endpoint(dbsession, "https://example.com/", events="upload,bogus")
        with pytest.raises(webhooks.WebhookError, match="No package"):
            webhooks.create_endpoint(dbsession, "https://example.com/", "nope")


@pytest.mark.parametrize(
    ("name", "value"),
    [("timeout", "soon"), ("max_attempts", "0"), ("backoff", "-1"), ("batch", "1.5")],
)
def test_bad_webhook_settings_refuse_to_start(app, base_settings, name, value):
    from extrapypi import main
    from extrapypi.settings import ConfigurationError

    with pytest.raises(ConfigurationError, match=f"extrapypi.webhooks.{name}: '{value}'"):
        main({}, **base_settings, **{f"extrapypi.webhooks.{name}": value})


def test_the_event_list_is_extensible(app, data, receiver):
    from extrapypi.services.journal import record

    add_endpoint(data, receiver.url)
    webhooks.register_event("archive package", "archive")
    try:
        tm, dbsession = data.session()
        with tm:
            record(dbsession, "archive package", package_name="X")
        assert [d.event for d in deliveries(data)] == ["archive"]
    finally:
        del webhooks.EVENT_FOR_ACTION["archive package"]


# --- the dashboard ----------------------------------------------------------------------------


def test_dashboard_add_shows_the_secret_once_then_the_log(app, testapp, data, receiver):
    data.user("boss", Role.ADMIN)
    data.release_file("Demo", "1.0")
    token = log_in(testapp, "boss")
    page = testapp.get("/webhooks/", headers=BROWSER)
    assert "No webhooks yet." in page.text
    assert 'href="http://example.com/webhooks/">Webhooks</a>' in page.text  # in the nav
    created = testapp.post(
        "/webhooks/",
        {"csrf_token": token, "url": receiver.url, "package": "demo", "events": "upload"},
        status=201,
    )
    [(endpoint_id, secret)] = [(e.id, e.secret) for e in _endpoints(data)]
    assert secret in created.text
    assert created.headers["Cache-Control"] == "no-store"
    assert "shown only this once" in created.text
    listing = testapp.get("/webhooks/", headers=BROWSER)
    assert secret not in listing.text
    assert receiver.url in listing.text

    data.release_file("Demo", "2.0")
    deliver(app)
    detail = testapp.get(f"/webhooks/{endpoint_id}/", headers=BROWSER)
    assert "delivered" in detail.text and "upload" in detail.text
    assert secret not in detail.text

    bad = testapp.post("/webhooks/", {"csrf_token": token, "url": "gopher://x/"}, status=400)
    assert "must start with http:// or https://" in bad.text
    testapp.post(f"/webhooks/{endpoint_id}/delete", {}, status=400)  # no CSRF token
    testapp.post(f"/webhooks/{endpoint_id}/delete", {"csrf_token": token}, status=303)
    assert _endpoints(data) == []
    assert deliveries(data) == []
    testapp.get(f"/webhooks/{endpoint_id}/", headers=BROWSER, status=404)


def _endpoints(data):
    tm, dbsession = data.session()
    with tm:
        rows = webhooks.list_endpoints(dbsession)
        dbsession.expunge_all()
        return rows


@pytest.mark.parametrize("role", [Role.INSTALLER, Role.MAINTAINER, Role.DEVELOPER])
def test_only_admins_reach_webhooks(testapp, data, role, auth):
    data.user("someone", role)
    token = log_in(testapp, "someone")
    testapp.get("/webhooks/", headers=BROWSER, status=403)
    assert "/webhooks/" not in testapp.get("/", headers=BROWSER).text
    testapp.post("/webhooks/", {"csrf_token": token, "url": "http://127.0.0.1:1/"}, status=403)
    assert _endpoints(data) == []


# --- the CLI and two delivering processes -----------------------------------------------------


def test_cli_add_list_deliveries_deliver_remove(app, data, ini_file, receiver, capsys):
    data.release_file("Demo", "1.0")
    assert extrapypi(["webhook", "add", ini_file, receiver.url, "--package", "demo"]) == 0
    out = capsys.readouterr().out
    [endpoint] = _endpoints(data)
    assert f"Added webhook {endpoint.id} to {receiver.url} (demo)." in out
    assert endpoint.secret in out
    assert extrapypi(["webhook", "list", ini_file]) == 0
    out = capsys.readouterr().out
    assert receiver.url in out and endpoint.secret not in out
    assert extrapypi(["webhook", "add", ini_file, "ftp://x/"]) == 1
    assert "http:// or https://" in capsys.readouterr().err

    data.release_file("Demo", "2.0")
    receiver.fail = 1
    assert extrapypi(["webhook", "deliver", ini_file]) == 0
    assert "Sent 0 deliveries; 1 to retry later" in capsys.readouterr().out
    assert extrapypi(["webhook", "deliveries", ini_file, "--webhook", str(endpoint.id)]) == 0
    out = capsys.readouterr().out
    assert "upload" in out and "pending" in out and "HTTP 503" in out
    assert extrapypi(["webhook", "remove", ini_file, str(endpoint.id)]) == 0
    assert extrapypi(["webhook", "remove", ini_file, str(endpoint.id)]) == 1
    assert "no webhook" in capsys.readouterr().err
    assert deliveries(data) == []


def test_two_processes_never_deliver_one_event_twice(app, data, ini_file, receiver):
    add_endpoint(data, receiver.url)
    tm, dbsession = data.session()
    with tm:
        for n in range(24):
            create_user(dbsession, NewUser(f"u{n}", "correct horse", "installer", "", True), 4)
    receiver.delay = 0.02  # both processes are sending at the same time
    command = [venv_tool("extrapypi"), "webhook", "deliver", ini_file]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    ids = [r["headers"]["X-Extrapypi-Delivery"] for r in receiver.requests]
    assert len(ids) == 24
    assert len(set(ids)) == 24
    assert {d.state for d in deliveries(data)} == {"delivered"}
    sent = sorted(int(out.split()[1]) for out, _ in outputs)
    assert sum(sent) == 24


def test_lock_conflicts_are_run_again_other_errors_are_not():
    """MariaDB may abort one of two concurrent claims with a deadlock (1213): the claim is run
    again whole; any other database error still surfaces."""
    import pymysql
    from sqlalchemy.exc import OperationalError

    from extrapypi.services import webhooks

    calls = []

    def deadlocks_once():
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("SELECT", {}, pymysql.err.OperationalError(1213, "Deadlock"))
        return "claimed"

    assert webhooks._again_on_conflict(deadlocks_once) == "claimed"
    assert len(calls) == 2

    def unreachable():
        raise OperationalError("SELECT", {}, pymysql.err.OperationalError(2003, "Can't connect"))

    with pytest.raises(OperationalError):
        webhooks._again_on_conflict(unreachable)


def test_logs_name_the_receiver_host_but_never_its_secret_path(app, data, receiver, caplog):
    secret_path = "/services/T000/B000/s3cr3t-path-token"
    add_endpoint(data, receiver.url.rstrip("/") + secret_path + "?key=hidden")
    receiver.fail = 1
    data.release_file("Demo", "1.0")
    with caplog.at_level("INFO", logger="extrapypi.services.webhooks"):
        assert deliver(app).retrying == 1
        assert deliver(app).delivered == 1
    logged = "\n".join(record.getMessage() for record in caplog.records)
    host = receiver.url.split("//", 1)[1].split("/", 1)[0]
    assert f"delivered to http://{host}/…" in logged
    assert "will retry" in logged
    assert "s3cr3t" not in logged and "hidden" not in logged
    paths = [r["path"] for r in receiver.requests]
    assert len(paths) == 2 and all(p.endswith(secret_path + "?key=hidden") for p in paths)
