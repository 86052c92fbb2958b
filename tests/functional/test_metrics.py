"""``/metrics`` (who may read it, what it counts) and the batched per-file download counts."""

import time

import pytest
import sqlalchemy as sa
import webtest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from test_dashboard import BROWSER, log_in

from extrapypi import main
from extrapypi.lifecycle import close_app
from extrapypi.models import DownloadCount
from extrapypi.permissions import Role
from extrapypi.services.metrics import COUNTER_KEY


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(response) -> dict[str, list]:
    assert response.content_type == "text/plain"
    families = text_string_to_metric_families(response.text)
    return {family.name: family.samples for family in families}


@pytest.fixture
def stored(app, data):
    # Earlier tests' unwritten downloads of a file with the same name (each test starts on an
    # empty database) are written now, while no such file exists: they are dropped.
    app.registry[COUNTER_KEY].flush()
    data.user("boss", Role.ADMIN)
    data.user("reader", Role.INSTALLER)
    return data.release_file("Demo", "1.0")


FILE_URL = "/packages/demo/1.0/{}"


def test_admins_read_metrics_others_do_not(testapp, stored, auth):
    testapp.get("/", headers=auth("boss"))
    response = testapp.get("/metrics", headers=auth("boss"))
    families = scrape(response)
    assert response.headers["Cache-Control"] == "no-store"
    for name in (
        "extrapypi_http_requests",
        "extrapypi_http_request_duration_seconds",
        "extrapypi_uploads",
        "extrapypi_upload_bytes",
        "extrapypi_downloads",
        "extrapypi_index_page_cache",
        "extrapypi_login_throttled",
        "extrapypi_storage_errors",
    ):
        assert name in families, name
    views = {s.labels["view"] for s in families["extrapypi_http_requests"]}
    assert "Root" in views
    testapp.get("/metrics", headers=auth("reader"), status=403)
    testapp.get("/metrics", status=401)
    testapp.get("/metrics", headers=BROWSER, status=401)  # a program's page: no login form


@pytest.fixture(scope="module")
def allow_app(app, base_settings):
    """The app with ``extrapypi.metrics.allow`` set to a private network."""
    return main({}, **base_settings, **{"extrapypi.metrics.allow": "10.0.0.0/8, 192.0.2.7"})


def test_configured_addresses_read_without_a_password(allow_app, clean):
    inside = webtest.TestApp(allow_app, extra_environ={"REMOTE_ADDR": "10.1.2.3"})
    assert "extrapypi_http_requests" in scrape(inside.get("/metrics"))
    single = webtest.TestApp(allow_app, extra_environ={"REMOTE_ADDR": "192.0.2.7"})
    single.get("/metrics", status=200)
    outside = webtest.TestApp(allow_app, extra_environ={"REMOTE_ADDR": "192.0.2.8"})
    outside.get("/metrics", status=401)
    # A client claiming an allowed address in a header is still where it is: waitress only
    # rewrites REMOTE_ADDR from X-Forwarded-For for its trusted_proxy.
    outside.get("/metrics", headers={"X-Forwarded-For": "10.1.2.3"}, status=401)
    outside.get("/metrics", headers={"X-Real-IP": "10.1.2.3"}, status=401)


def test_a_bad_allow_setting_refuses_to_start(app, base_settings):
    from extrapypi.settings import ConfigurationError

    with pytest.raises(ConfigurationError, match="not an IP address or network"):
        main({}, **base_settings, **{"extrapypi.metrics.allow": "10.0.0.0/8 intranet"})


def test_downloads_are_counted_in_batches_and_shown(app, testapp, stored, auth, engine):
    filename = stored["filename"]
    counter = app.registry[COUNTER_KEY]
    counter.flush()
    before = sample("extrapypi_downloads_total", project="demo")
    for _ in range(3):
        testapp.get(FILE_URL.format(filename), headers=auth("reader"), status=200)
    testapp.head(FILE_URL.format(filename), headers=auth("reader"), status=200)
    etag = testapp.get(FILE_URL.format(filename), headers=auth("reader")).etag
    testapp.get(
        FILE_URL.format(filename),
        headers={**auth("reader"), "If-None-Match": f'"{etag}"'},
        status=304,
    )
    testapp.get(
        FILE_URL.format(filename), headers={**auth("reader"), "Range": "bytes=0-9"}, status=206
    )
    assert sample("extrapypi_downloads_total", project="demo") - before == 4
    # Not written yet: one write per batch, not per download.
    with engine.connect() as connection:
        assert connection.execute(sa.select(DownloadCount.count)).all() == []
    page = testapp.get("/packages/demo/", headers=auth("reader"))
    assert "<strong>4</strong> in all" in page.text
    assert counter.flush() == 4
    with engine.connect() as connection:
        assert connection.execute(sa.select(DownloadCount.count)).scalar_one() == 4
    testapp.get(FILE_URL.format(filename), headers=auth("reader"))
    assert counter.flush() == 1
    with engine.connect() as connection:
        assert connection.execute(sa.select(DownloadCount.count)).scalar_one() == 5
    page = testapp.get("/packages/demo/", headers=auth("reader"))
    assert "<strong>5</strong> in all" in page.text and filename in page.text


def test_a_full_batch_is_written_after_the_response(app, base_settings, clean, data, auth, engine):
    batching = main(
        {},
        **base_settings,
        **{"extrapypi.downloads.flush_count": "2", "extrapypi.downloads.min_flush_seconds": "0"},
    )
    client = webtest.TestApp(batching)
    data.user("reader")
    filename = data.release_file("Demo", "1.0")["filename"]
    client.get(FILE_URL.format(filename), headers=auth("reader"))
    with engine.connect() as connection:
        assert connection.execute(sa.select(DownloadCount.count)).all() == []
    client.get(FILE_URL.format(filename), headers=auth("reader"))  # answered by fastpath.py
    deadline = time.monotonic() + 10  # written by a thread of its own, right after the response
    while True:
        with engine.connect() as connection:
            written = connection.execute(sa.select(DownloadCount.count)).scalar_one_or_none()
        if written == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert written == 2


def test_counts_of_a_deleted_file_are_dropped(app, testapp, stored, auth, data, engine):
    from extrapypi.services.packages import delete_release, get_package, get_release

    counter = app.registry[COUNTER_KEY]
    counter.flush()
    testapp.get(FILE_URL.format(stored["filename"]), headers=auth("reader"))
    tm, dbsession = data.session()
    with tm:
        release = get_release(dbsession, get_package(dbsession, "Demo"), "1.0")
        delete_release(dbsession, app.registry["extrapypi.storage"], tm.get(), release, None)
    # A new file may get the deleted one's row id (SQLite reuses the highest one): the
    # pending count must not move over to it.
    data.release_file("Demo", "2.0")
    counter.flush()  # the file is gone: its count goes with it, no error
    with engine.connect() as connection:
        assert connection.execute(sa.select(DownloadCount.count)).all() == []


def test_uploads_cache_hits_throttled_logins_storage_errors(app, testapp, stored, auth, data):
    uploads, upload_bytes = (
        sample("extrapypi_uploads_total"),
        sample("extrapypi_upload_bytes_total"),
    )
    built = data.release_file("Demo", "2.0")
    assert sample("extrapypi_uploads_total") - uploads == 1
    assert sample("extrapypi_upload_bytes_total") - upload_bytes == len(built["content"])

    hits = sample("extrapypi_index_page_cache_total", result="hit")
    testapp.get("/simple/demo/", headers=auth("reader"))
    testapp.get("/simple/demo/", headers=auth("reader"))
    assert sample("extrapypi_index_page_cache_total", result="hit") - hits >= 1

    throttled = sample("extrapypi_login_throttled_total")
    for _ in range(12):
        testapp.get("/simple/", headers=auth("reader", "wrong password"), expect_errors=True)
    assert sample("extrapypi_login_throttled_total") - throttled >= 1

    errors = sample("extrapypi_storage_errors_total", operation="download_response")
    app.registry["extrapypi.storage"].delete("demo/" + stored["filename"])
    testapp.get(FILE_URL.format(stored["filename"]), headers=auth("boss"), status=404)
    assert sample("extrapypi_storage_errors_total", operation="download_response") - errors == 1


def test_request_metrics_by_view_and_status(testapp, stored, auth):
    ok = sample("extrapypi_http_requests_total", view="SimpleIndex", method="GET", status="200")
    missing = sample(
        "extrapypi_http_requests_total", view="SimpleProject", method="GET", status="404"
    )
    latency = sample("extrapypi_http_request_duration_seconds_count", view="SimpleIndex")
    testapp.get("/simple/", headers=auth("reader"))
    testapp.get("/simple/no-such-thing/", headers=auth("reader"), status=404)
    assert (
        sample("extrapypi_http_requests_total", view="SimpleIndex", method="GET", status="200") - ok
        == 1
    )
    assert (
        sample("extrapypi_http_requests_total", view="SimpleProject", method="GET", status="404")
        - missing
        == 1
    )
    assert (
        sample("extrapypi_http_request_duration_seconds_count", view="SimpleIndex") - latency == 1
    )


@pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD")  # WebTest's lint, on purpose
def test_typed_names_never_become_request_labels(testapp, stored, auth):
    # An anonymous browser sent to the login page (a 302) from any path it makes up: each label
    # is a series kept for the process's life, so the typed name must not be one.
    for path in ("/packages/made-up-1", "/teams/made-up-2", "/users/made-up-3"):
        testapp.get(path, headers=BROWSER, status=302)
    for method in ("MADEUP1", "MADEUP2"):  # nor a method it makes up
        testapp.request("/simple/", method=method, headers=auth("reader"), status=405)
    views = {
        s.labels["view"]
        for s in scrape(testapp.get("/metrics", headers=auth("boss")))["extrapypi_http_requests"]
    }
    assert not [v for v in views if "made-up" in v], views
    samples = scrape(testapp.get("/metrics", headers=auth("boss")))["extrapypi_http_requests"]
    assert not [s for s in samples if "MADEUP" in s.labels["method"]]
    assert sample("extrapypi_http_requests_total", view="SimpleIndex", method="other", status="405")
    assert {"PackageBrowser", "TeamResource"} <= views
    # A page that answers still names its view.
    testapp.get("/packages/demo/retention", headers=auth("boss"))
    assert sample(
        "extrapypi_http_requests_total",
        view="PackageResource:retention",
        method="GET",
        status="200",
    )


def test_dashboard_package_page_shows_downloads(testapp, stored):
    token = log_in(testapp, "reader")
    assert token
    page = testapp.get("/packages/demo/", headers=BROWSER)
    assert "Downloads" in page.text
    assert "Retention rule" not in page.text  # admins only


def test_closing_an_app_writes_its_last_counts_and_stops_its_threads(
    app, base_settings, clean, data, auth, engine
):
    closing = main({}, **{**base_settings, "extrapypi.webhooks.background": "true"})
    client = webtest.TestApp(closing)
    data.user("reader")
    filename = data.release_file("Demo", "1.0")["filename"]
    client.get(FILE_URL.format(filename), headers=auth("reader"))
    client.get(FILE_URL.format(filename), headers=auth("reader"))
    client.get("/simple/demo/", headers=auth("reader"))
    deliverer = closing.registry["extrapypi.webhooks"]
    assert deliverer.running  # started by a request
    with engine.connect() as connection:
        assert connection.execute(sa.select(DownloadCount.count)).all() == []
    close_app(closing)
    with engine.connect() as connection:
        assert connection.execute(sa.select(DownloadCount.count)).scalar_one() == 2
    assert not deliverer.running
    counter = closing.registry[COUNTER_KEY]
    assert counter.closed
    close_app(closing)  # once is enough: a second close does nothing


def test_a_flush_whose_database_is_gone_logs_one_line(tmp_path, caplog):
    from extrapypi.models import get_engine, get_session_factory
    from extrapypi.services.metrics import DownloadCounter

    gone = get_engine({"sqlalchemy.url": f"sqlite:///{tmp_path / 'no-tables.sqlite'}"})
    counter = DownloadCounter(get_session_factory(gone), 100, 30)
    counter.add("demo-1.0.tar.gz")
    with caplog.at_level("WARNING", logger="extrapypi.services.metrics"):
        assert counter.flush() == 0
    [record] = caplog.records
    assert record.levelname == "WARNING" and record.exc_info is None
    assert record.getMessage() == (
        "could not write 1 download counts: OperationalError: no such table: files"
    )
    assert counter.pending("demo-1.0.tar.gz") == 1  # kept for the next flush
    gone.dispose()
