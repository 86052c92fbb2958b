"""A real browser (headless Debian chromium via Playwright) against a real ``pserve``.

Screenshots of the main pages, at desktop and phone widths, land in ``test-output/screenshots``
(git-ignored) for a person to look at.
"""

import os
import re
from pathlib import Path

import pytest

from extrapypi.permissions import Role
from extrapypi.services.accounts import get_user
from extrapypi.services.packages import get_package, get_release

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-output" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

README = """\
Browser demo
============

A package used by the browser test. It has **bold** text, a list and code:

* one
* two

.. code:: python

   import browser_demo
"""


@pytest.fixture(scope="module")
def browser():
    from playwright import sync_api

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (see NOTES.md)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def shoot(page, name: str, database: str) -> None:
    """A full-page screenshot at desktop and at phone width."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SHOTS / f"{database}-{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def stored(data, fn):
    tm, dbsession = data.session()
    with tm:
        return fn(dbsession)


@pytest.mark.e2e
@pytest.mark.browser
def test_dashboard_in_a_real_browser(browser, live_server, data, database_url):
    database = database_url.split(":", 1)[0].split("+", 1)[0]
    data.user("root", Role.ADMIN, email="root@example.com")
    data.user("dev", Role.DEVELOPER)
    data.release_file(
        "browser-demo", "1.0", summary="Demo package for the browser test", uploader="root"
    )
    data.release_file(
        "browser-demo",
        "1.1",
        summary="Demo package for the browser test",
        description=README,
        description_content_type="text/x-rst",
        requires_python=">=3.9",
        requires_dist=["requests>=2.0"],
        uploader="root",
    )
    data.release_file("browser-demo", "1.1", kind="sdist", uploader="root")
    data.release_file("unrelated", "0.1", summary="Something else entirely")

    context = browser.new_context(viewport=DESKTOP)
    errors: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.set_default_timeout(15_000)

    # Log in: the dashboard sends an anonymous browser to the login form.
    page.goto(live_server.url + "/packages/")
    assert "/login" in page.url
    shoot(page, "login", database)
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", "correct horse")
    page.click("button:has-text('Log in')")
    page.wait_for_url(re.compile(r"/packages/$"))
    assert "root · admin" in page.inner_text("header")
    shoot(page, "packages", database)

    # Find the package by searching its summary.
    page.fill("main input[name=q]", "demo package")
    page.press("main input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"q=demo"))
    results = page.inner_text("ul.packages")
    assert "browser-demo" in results and "unrelated" not in results
    shoot(page, "search", database)
    page.click("a.name:has-text('browser-demo')")
    page.wait_for_url(re.compile(r"/packages/browser-demo/$"))
    assert "pip install --extra-index-url" in page.inner_text("pre.install")
    assert page.locator(".description strong").inner_text() == "bold"
    shoot(page, "package", database)

    # Open the release and yank it.
    page.click("ul.releases a:has-text('1.1')")
    page.wait_for_url(re.compile(r"/packages/browser-demo/1\.1/$"))
    assert "requests>=2.0" in page.inner_text("ul.deps")
    assert page.locator("table.files tbody tr").count() == 2
    shoot(page, "release", database)
    page.fill("input[name=reason]", "broken build")
    page.click("button:has-text('Yank 1.1')")
    page.wait_for_selector("text=This release is yanked: broken build")
    shoot(page, "release-yanked", database)
    yanked = stored(
        data,
        lambda s: (lambda r: (r.yanked, r.yanked_reason))(
            get_release(s, get_package(s, "browser-demo"), "1.1")
        ),
    )
    assert yanked == (True, "broken build")

    # Deleting asks first; cancelling keeps the release.
    page.click("a:has-text('Delete release')")
    assert "Delete release 1.1 of browser-demo?" in page.inner_text("h1")
    shoot(page, "release-delete-confirm", database)
    page.click("a:has-text('Cancel')")
    page.wait_for_url(re.compile(r"/packages/browser-demo/1\.1/$"))
    assert stored(data, lambda s: get_release(s, get_package(s, "browser-demo"), "1.1").id)

    # Add a maintainer on the package page.
    page.click(".crumbs a:has-text('browser-demo')")
    page.fill("input[name=username][placeholder=username]", "dev")
    page.click("button:has-text('Add')")
    page.wait_for_selector("text=Added maintainer dev.")
    assert "dev" in page.inner_text("ul.maintainers")
    maintainers = stored(
        data, lambda s: [u.username for u in get_package(s, "browser-demo").maintainers]
    )
    assert maintainers == ["dev", "root"]

    # Create a user.
    page.click("header a:has-text('Users')")
    shoot(page, "users", database)
    page.click("a:has-text('New user')")
    page.fill("input[name=username]", "newcomer")
    page.fill("input[name=email]", "newcomer@example.com")
    page.select_option("select[name=role]", "maintainer")
    page.fill("input[name=password]", "s3cret-pass-newcomer")
    page.fill("input[name=confirmation]", "s3cret-pass-newcomer")
    shoot(page, "user-new", database)
    page.click("button:has-text('Create user')")
    page.wait_for_selector("text=Created user newcomer (maintainer).")
    created = stored(
        data,
        lambda s: (lambda u: (u.email, u.role, u.is_active))(get_user(s, "newcomer")),
    )
    assert created == ("newcomer@example.com", "maintainer", True)

    page.click("header a.who")
    assert "My account" in page.inner_text("main")
    shoot(page, "account", database)

    # Log out: the session is gone, pages need a login again.
    page.click("header button:text-is('Log out')")
    page.wait_for_url(re.compile(r"/login$"))
    page.goto(live_server.url + "/packages/browser-demo/")
    assert "/login" in page.url
    assert not errors, errors  # no CSP violations or script errors
    context.close()


@pytest.mark.e2e
@pytest.mark.browser
def test_log_out_everywhere_ends_the_other_browsers_session(browser, live_server, data):
    """Two browsers (contexts) logged in as one user; "Log out everywhere" in one ends both."""
    data.user("twice", Role.DEVELOPER)
    contexts = [browser.new_context(viewport=DESKTOP) for _ in range(2)]
    pages = [context.new_page() for context in contexts]
    for page in pages:
        page.set_default_timeout(15_000)
        page.goto(live_server.url + "/account")
        page.fill("input[name=username]", "twice")
        page.fill("input[name=password]", "correct horse")
        page.click("button:has-text('Log in')")
        page.wait_for_url(re.compile(r"/account$"))
        assert "twice · developer" in page.inner_text("header")

    pages[0].click("button:has-text('Log out everywhere')")
    pages[0].wait_for_url(re.compile(r"/login$"))
    assert "Logged out everywhere (2 session(s) ended)." in pages[0].inner_text("main")
    pages[1].reload()
    assert "/login" in pages[1].url
    assert "Log in" in pages[1].inner_text("h1")
    pages[0].goto(live_server.url + "/account")
    assert "/login" in pages[0].url
    for context in contexts:
        context.close()
