"""Trusted publishers in the dashboard: the package card (maintainers, admins) and the pending
publishers page (developers), as a browser uses them: forms with CSRF tokens."""

import re

import pytest
import sqlalchemy as sa
import webtest
from conftest import basic_auth
from test_security import BROWSER, login
from test_tokens import make_token

from extrapypi import main
from extrapypi.models import JournalEntry, TrustedPublisher
from extrapypi.permissions import Role

GITHUB = "https://token.actions.githubusercontent.com"


@pytest.fixture(scope="module")
def oidc_app(app, base_settings):
    return main({}, **base_settings, **{"extrapypi.oidc.issuers": GITHUB})


@pytest.fixture
def client(oidc_app, clean):
    return webtest.TestApp(oidc_app, extra_environ={"HTTP_HOST": "example.com"})


@pytest.fixture
def world(data):
    data.user("admin", Role.ADMIN)
    data.user("maint", Role.MAINTAINER)
    data.user("dev", Role.DEVELOPER)
    data.user("reader", Role.INSTALLER)
    data.release_file("widget", "1.0", uploader="maint")


def csrf(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def publishers(engine) -> list:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(TrustedPublisher.__table__).order_by(TrustedPublisher.id)
        ).all()


def add_form(client, page, claims="repository=acme/widget", **extra):
    return client.post(
        "/packages/widget/publishers",
        {"csrf_token": csrf(page), "action": "add", "issuer": GITHUB, "claims": claims, **extra},
        headers=BROWSER,
        expect_errors=True,
    )


@pytest.mark.parametrize("username", ["maint", "admin"])
def test_maintainer_or_admin_adds_and_removes_a_publisher(client, world, engine, username):
    login(client, username)
    page = client.get("/packages/widget/", headers=BROWSER)
    assert "Trusted publishers" in page.text and GITHUB in page.text
    added = add_form(client, page, "repository=acme/widget\r\nenvironment=release\r\n")
    assert added.status_int == 303, added.text
    (row,) = publishers(engine)
    assert row.claims == {"repository": "acme/widget", "environment": "release"}
    page = client.get("/packages/widget/", headers=BROWSER)
    assert "environment=release, repository=acme/widget; by " + username in page.text
    removed = client.post(
        "/packages/widget/publishers",
        {"csrf_token": csrf(page), "action": "remove", "publisher_id": str(row.id)},
        headers=BROWSER,
    )
    assert removed.status_int == 303 and publishers(engine) == []
    with engine.connect() as connection:
        actions = connection.execute(sa.select(JournalEntry.action)).scalars().all()
    assert "add publisher" in actions and "remove publisher" in actions


def test_form_refusals_say_why(client, world, engine):
    login(client, "maint")
    page = client.get("/packages/widget/", headers=BROWSER)
    bad_claim = add_form(client, page, "repository")
    assert bad_claim.status_int == 400 and "is not a claim: write KEY=VALUE" in bad_claim.text
    bad_issuer = add_form(client, page, issuer="https://evil.example")
    assert bad_issuer.status_int == 400 and "is not a trusted issuer" in bad_issuer.text
    no_csrf = client.post(
        "/packages/widget/publishers",
        {"action": "add", "issuer": GITHUB, "claims": "repository=a/b"},
        headers=BROWSER,
        status=400,
    )
    assert "CSRF token" in no_csrf.text
    assert publishers(engine) == []


@pytest.mark.parametrize("username", ["dev", "reader"])
def test_others_neither_see_nor_change_the_publishers(client, world, engine, username):
    login(client, "maint")
    add_form(client, client.get("/packages/widget/", headers=BROWSER))
    client.reset()
    login(client, username)
    page = client.get("/packages/widget/", headers=BROWSER)
    assert "Trusted publishers" not in page.text
    refused = add_form(client, page)
    assert refused.status_int == 403
    assert "may not manage the trusted publishers of 'widget'" in refused.status
    assert len(publishers(engine)) == 1


def test_an_api_token_cannot_manage_publishers(client, world, data, engine):
    token = make_token(data, "maint")
    response = client.post(
        "/packages/widget/publishers",
        {"action": "add", "issuer": GITHUB, "claims": "repository=a/b"},
        headers=basic_auth("__token__", token),
        expect_errors=True,
    )
    assert response.status_int in (400, 403) and publishers(engine) == []


def test_developer_registers_and_removes_a_pending_publisher(client, world, engine):
    login(client, "dev")
    page = client.get("/publishers", headers=BROWSER)
    assert "Pending trusted publishers" in page.text
    added = client.post(
        "/publishers",
        {
            "csrf_token": csrf(page),
            "action": "add",
            "project": "Brand_New",
            "issuer": GITHUB,
            "claims": "repository=acme/brand-new",
        },
        headers=BROWSER,
    )
    assert added.status_int == 303
    (row,) = publishers(engine)
    assert (row.package_id, row.pending_name) == (None, "brand-new")
    page = client.get("/publishers", headers=BROWSER)
    assert "brand-new" in page.text and "repository=acme/brand-new" in page.text
    taken = client.post(
        "/publishers",
        {
            "csrf_token": csrf(page),
            "action": "add",
            "project": "widget",
            "issuer": GITHUB,
            "claims": "repository=a/b",
        },
        headers=BROWSER,
        status=400,
    )
    assert "widget exists: register a normal publisher for it" in taken.text
    removed = client.post(
        "/publishers",
        {"csrf_token": csrf(page), "action": "remove", "publisher_id": str(row.id)},
        headers=BROWSER,
    )
    assert removed.status_int == 303 and publishers(engine) == []


def test_pending_page_needs_a_developer(client, world):
    login(client, "maint")
    assert client.get("/publishers", headers=BROWSER, status=403).status_int == 403


def test_someone_elses_pending_publisher_is_unknown(client, world, engine):
    login(client, "admin")
    page = client.get("/publishers", headers=BROWSER)
    client.post(
        "/publishers",
        {
            "csrf_token": csrf(page),
            "action": "add",
            "project": "fresh",
            "issuer": GITHUB,
            "claims": "repository=a/b",
        },
        headers=BROWSER,
    )
    (row,) = publishers(engine)
    client.reset()
    login(client, "dev")
    page = client.get("/publishers", headers=BROWSER)
    assert "fresh" not in page.text
    refused = client.post(
        "/publishers",
        {"csrf_token": csrf(page), "action": "remove", "publisher_id": str(row.id)},
        headers=BROWSER,
        status=400,
    )
    assert "No such pending publisher." in refused.text and len(publishers(engine)) == 1
