"""Teams, namespaces and project status in a real chromium: the admin's and a maintainer's flows."""

import re

import pytest
from test_browser import DESKTOP, browser, shoot  # noqa: F401 (fixture)

from extrapypi.permissions import Role
from extrapypi.services import namespaces as ns
from extrapypi.services.packages import get_package
from extrapypi.services.status import set_status

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def log_in(page, live_server, username):
    page.goto(live_server.url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "correct horse")
    page.click("button:has-text('Log in')")
    page.wait_for_load_state()


def test_teams_namespaces_and_status_in_a_real_browser(
    browser,  # noqa: F811 (the fixture imported above)
    live_server,
    data,
    database_url,
):
    database = database_url.split(":", 1)[0].split("+", 1)[0]
    data.user("root", Role.ADMIN)
    data.user("alice", Role.MAINTAINER)
    data.release_file("acme-billing", "1.0", uploader="alice", summary="Billing")
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    log_in(page, live_server, "root")
    page.click("header nav a:has-text('Teams')")
    page.wait_for_url(re.compile(r"/teams/$"))
    page.fill("input[name=name]", "platform")
    page.click("button:has-text('Create team')")
    page.click("a:has-text('platform')")
    page.fill("input[name=username]", "alice")
    page.click("button:has-text('Add')")
    assert "alice" in page.inner_text("ul.members")
    page.click("a:has-text('All teams')")
    page.fill("input[name=namespace]", "Acme")
    page.fill("input[name=owner]", "team:platform")
    page.click("button:has-text('Grant')")
    assert "team:platform" in page.inner_text("table.namespaces")
    shoot(page, "teams", database)

    # the admin quarantines the package from its page
    page.goto(live_server.url + "/packages/acme-billing/")
    page.select_option("section.project-status select[name=status]", "quarantined")
    page.fill("section.project-status input[name=reason]", "under review")
    page.click("button:has-text('Set status')")
    assert "quarantined" in page.inner_text("h1")
    assert "under review" in page.inner_text("section.project-status")
    shoot(page, "package-quarantined", database)

    # a new session as the maintainer: no form to lift it; once an admin did, they archive it
    context.clear_cookies()
    log_in(page, live_server, "alice")
    page.goto(live_server.url + "/packages/acme-billing/")
    assert page.locator("section.project-status form").count() == 0
    tm, dbsession = data.session()
    with tm:
        set_status(
            dbsession,
            get_package(dbsession, "acme-billing"),
            "active",
            "",
            None,
            may_quarantine=True,
        )
    page.reload()
    page.select_option("section.project-status select[name=status]", "archived")
    page.fill("section.project-status input[name=reason]", "replaced by acme-pay")
    page.click("button:has-text('Set status')")
    page.goto(live_server.url + "/packages/")
    assert "archived: replaced by acme-pay" in page.inner_text("ul.packages")
    shoot(page, "packages-archived", database)
    tm, dbsession = data.session()
    with tm:
        assert get_package(dbsession, "acme-billing").status == "archived"
        assert [g.owner for g in ns.list_namespaces(dbsession)] == ["team:platform"]
    assert errors == []
