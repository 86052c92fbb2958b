"""Issue 15, target 6: an upload runs the same SQL statements in an index of 10 or
3,000 projects (nothing on its path reads every project), and the root page served after it
lists every project, gzipped."""

import gzip
import json

import pytest
import sqlalchemy as sa
import webtest
from bulk import bulk_projects
from dists import wheel_bytes
from test_front import fdata, front  # noqa: F401 - fixtures
from test_simple import raw_get
from test_upload import post

from extrapypi.front import build_mirror
from extrapypi.models import Package, Release
from extrapypi.permissions import Role


def projects(start: int, stop: int) -> list[str]:
    return [f"p-{i:05d}" for i in range(start, stop)]


#: Reads made at most once a second or once per access serial, whatever the index's size: the
#: serial clock's (``services/serials.py``) and a user's team names (``TeamCache``).
PERIODIC = ("FROM index_state WHERE id IN", "SELECT teams.name")


class Statements:
    """The SQL statements (first line) an action runs, periodic cache refills left out."""

    def __init__(self, engine):
        self.engine = engine
        self.seen: list[str] = []

    def __call__(self, conn, cursor, statement, *args) -> None:
        line = statement.split("\n")[0].strip()
        if not any(periodic in line for periodic in PERIODIC):
            self.seen.append(line)

    def during(self, action) -> list[str]:
        self.seen = []
        sa.event.listen(self.engine, "before_cursor_execute", self)
        try:
            action()
        finally:
            sa.event.remove(self.engine, "before_cursor_execute", self)
        return self.seen


@pytest.fixture
def dev(data):
    data.user("dev", Role.DEVELOPER)
    return "dev"


def test_upload_statements_do_not_grow_with_the_index(app, testapp, engine, dev, auth):
    statements = Statements(engine)

    def uploads(version: str, new_project: str) -> tuple[list[str], list[str]]:
        existing = statements.during(lambda: post(testapp, wheel_bytes("own", version), auth(dev)))
        created = statements.during(
            lambda: post(testapp, wheel_bytes(new_project, "1.0"), auth(dev))
        )
        return existing, created

    bulk_projects(engine, projects(0, 10))
    post(testapp, wheel_bytes("own", "1.0"), auth(dev))  # dev maintains it; the login is cached
    small = uploads("3.0", "fresh-one")
    bulk_projects(engine, projects(10, 3000))
    testapp.get("/simple/", headers=auth(dev))  # the root page is built by a read, not an upload
    big = uploads("4.0", "fresh-two")
    assert small == big  # the same statements, in the same order
    assert 10 < len(big[0]) < 30 and 10 < len(big[1]) < 30

    response = raw_get(app, "/simple/", {**auth(dev), "Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    html = gzip.decompress(response.body).decode()
    assert html.count("<a href=") == 3003
    assert '<a href="fresh-two/">fresh_two</a>' in html
    assert '<a href="p-02999/">p-02999</a>' in html
    plain = testapp.get("/simple/", headers=auth(dev))
    assert "Content-Encoding" not in plain.headers
    assert plain.body == html.encode()
    with engine.connect() as connection:
        versions = connection.scalars(
            sa.select(Release.version)
            .join(Package)
            .where(Package.normalized_name == "own")
            .order_by(Release.id)
        ).all()
    assert versions == ["1.0", "3.0", "4.0"]


def test_front_pages_follow_a_large_index_without_rewriting_its_root(front, fdata, auth):  # noqa: F811
    """The nginx front at 1,000 projects: a full build writes every page (streamed, not a query
    per project); projects inserted behind the app's back are found by their ids; an upload to
    an existing project leaves the root page alone, a new project rewrites it."""
    engine = front.registry["db_engine"]
    client = webtest.TestApp(front, extra_environ={"HTTP_HOST": "example.com"})
    fdata.user("dev", Role.DEVELOPER)
    bulk_projects(engine, projects(0, 1000))
    mirror = build_mirror(front.registry)
    report = mirror.sync(full=True)
    assert report.full and report.written == 6 * 1001  # three types, gzipped too; root included
    root = front.front_pages / "index.html"
    assert root.read_text().count("<a href=") == 1000
    assert json.loads((front.front_pages / "p-00999" / "index.v1json").read_text())["files"]

    post(client, wheel_bytes("own", "1.0"), auth("dev"))  # a new project: the root is rewritten
    bulk_projects(engine, projects(1000, 1003))  # no journal entry
    post(client, wheel_bytes("own", "2.0"), auth("dev"))  # the sync sees the new ids
    for name in ("own", "p-01000", "p-01002"):
        assert (front.front_pages / name / "index.html").exists()
    assert root.read_text().count("<a href=") == 1004
    before = root.stat().st_mtime_ns
    post(client, wheel_bytes("own", "3.0"), auth("dev"))
    assert root.stat().st_mtime_ns == before
    versions = json.loads((front.front_pages / "own" / "index.v1json").read_text())["versions"]
    assert versions == ["1.0", "2.0", "3.0"]
