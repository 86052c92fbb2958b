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
    assert "pip install --index-url" in page.inner_text(".copyable.install code")
    assert page.locator(".description strong").inner_text() == "bold"
    shoot(page, "package", database)

    # Open the release and yank it.
    page.click("ul.releases a:has-text('1.1')")
    page.wait_for_url(re.compile(r"/packages/browser-demo/1\.1/$"))
    assert "requests>=2.0" in page.inner_text("ul.deps")
    assert page.locator("table.files tbody tr:not(.hash-row)").count() == 2
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


PYPI_README = """\
Internal tool
=============

|build| A tool with ``inline literals``, a table, a note and highlighted code.

.. |build| image:: https://img.shields.io/badge/build-passing-green.svg
   :alt: build passing

Usage
-----

.. code:: python

   import pretool
   pretool.run(level=3)

.. note::

   Configuration lives in ``~/.pretool.toml``.

.. warning::

   2.0 changes the configuration format.

=============  =====================================
Option         Meaning
=============  =====================================
``level``      How much work to do (1 to 5)
``verbose``    Print every configuration file read
=============  =====================================
"""


#: netrc separates tokens by white space: a password without any, as people pick for netrc.
CLIENT_PASSWORD = "maint-s3cret"


def snippet(page, key: str) -> str:
    return page.inner_text(f"#snippet-{key} code")


def run_client(args, env, cwd=None):
    import subprocess

    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.e2e
@pytest.mark.browser
def test_dashboard_as_an_internal_pypi(browser, live_server, data, database_url, tmp_path):
    """Issue 13 in a real browser: pip's version first, styled 404, copy buttons, a setup page
    whose snippets really work with pip and uv, and the audit log."""
    import sys

    from conftest import PASSWORD, venv_tool
    from test_pip_uv import client_env

    database = database_url.split(":", 1)[0].split("+", 1)[0]
    data.user("root", Role.ADMIN)
    data.user("maint", Role.MAINTAINER, password=CLIENT_PASSWORD)
    data.release_file(
        "pretool",
        "1.5.0",
        summary="The internal tool",
        description=PYPI_README,  # rendered and stored now, as an upload would
        description_content_type="text/x-rst",
        uploader="root",
    )
    data.release_file(
        "pretool",
        "2.0.0rc1",
        summary="The internal tool",
        description=PYPI_README,
        description_content_type="text/x-rst",
        uploader="root",
    )

    def facts(s):
        release = get_release(s, get_package(s, "pretool"), "1.5.0")
        release.author_email = "Platform Team <platform@acme.example>"
        release.keywords = "cli,internal"
        release.requires_python = ">=3.9"
        release.project_urls = [["Source", "https://git.example/pretool"]]
        release.classifiers = ["Programming Language :: Python :: 3"]
        package = get_package(s, "pretool")
        package.maintainers.append(get_user(s, "maint"))

    stored(data, facts)

    context = browser.new_context(viewport=DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    errors: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.set_default_timeout(15_000)

    page.goto(live_server.url + "/login")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(live_server.url + "/")
    assert "Use this index" in page.inner_text("main")
    shoot(page, "pypi-home", database)

    # The list and the package page headline what pip installs, not the release candidate.
    page.goto(live_server.url + "/packages/")
    assert page.inner_text("ul.packages .version") == "1.5.0"
    page.click("a.name:has-text('pretool')")
    assert page.inner_text("h1 .version") == "1.5.0"
    assert page.inner_text(".columns h2:has-text('Files of')") == "Files of 1.5.0"
    rc = page.locator("ul.releases li", has_text="2.0.0rc1")
    assert "pre-release" in rc.inner_text()
    assert page.locator(".description h2").first.inner_text() == "Internal tool"
    assert page.locator(".description h1").count() == 0
    assert "build passing" in page.inner_text(".description .img-placeholder")
    assert page.locator(".description pre .kn").count() >= 1  # highlighted by Pygments' classes
    assert page.locator("a[href='mailto:platform@acme.example']").inner_text() == "Platform Team"
    shoot(page, "pypi-package", database)

    # The copy button puts the install command on the clipboard.
    command = page.inner_text(".copyable.install code")
    assert command == f"pip install --index-url {live_server.url}/simple/ pretool"
    page.click(".copyable.install button.copy")
    page.wait_for_selector(".copyable.install button.copy:has-text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == command
    page.locator("table.files button.copy").first.click()
    digest = page.locator("table.files code.hash").first.inner_text()
    assert len(digest) == 64 and page.evaluate("navigator.clipboard.readText()") == digest

    # A release page: other versions, and a newer version on an old release's page.
    page.click("ul.releases a:has-text('2.0.0rc1')")
    assert "1.5.0" in page.inner_text("ul.releases.compact")
    shoot(page, "pypi-release", database)

    # A styled 404 in the layout, with a way back.
    assert not errors, errors
    answer = page.goto(live_server.url + "/packages/no-such-package/")
    assert answer.status == 404
    assert page.inner_text("h1") == "Page not found"
    assert "no such page or package here" in page.inner_text("main")
    assert page.locator("header nav a:has-text('Packages')").count() == 1
    shoot(page, "pypi-404", database)
    assert all("404" in e for e in errors), errors  # chromium logs the page's own status
    errors.clear()
    page.click("a:has-text('Home')")
    page.wait_for_url(live_server.url + "/")

    # The setup page's snippets, with real pip and uv.
    page.click("header a:has-text('Use this index')")
    page.wait_for_url(live_server.url + "/setup/")
    shoot(page, "pypi-setup", database)
    home = tmp_path / "home"
    home.mkdir()
    env = client_env(home)
    del env["UV_NO_CONFIG"]  # the project's [[tool.uv.index]] is what this tests
    (home / "pip.conf").write_text(snippet(page, "pip-conf"))
    netrc = snippet(page, "netrc").replace("<username>", "maint")
    netrc = netrc.replace("<password>", CLIENT_PASSWORD)
    (home / ".netrc").write_text(netrc)
    (home / ".netrc").chmod(0o600)
    env["PIP_CONFIG_FILE"] = str(home / "pip.conf")
    dest = tmp_path / "pip-dest"
    run_client(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(dest), "pretool"],
        env,
    )
    assert [p.name for p in dest.iterdir()] == ["pretool-1.5.0-py3-none-any.whl"]

    uv_env = dict(env)
    (home / ".netrc").unlink()  # uv takes the credentials from the environment variables
    for line in snippet(page, "uv-credentials").splitlines():
        name, value = line.removeprefix("export ").split("=", 1)
        uv_env[name] = value.replace("<username>", "maint").replace("<password>", CLIENT_PASSWORD)
    assert {"UV_INDEX_EXTRAPYPI_USERNAME", "UV_INDEX_EXTRAPYPI_PASSWORD"} <= set(uv_env)
    for key in ("uv-index", "uv-explicit"):  # instead of PyPI; pinned beside PyPI
        project = tmp_path / key
        project.mkdir()
        (project / "pyproject.toml").write_text(
            '[project]\nname = "consumer"\nversion = "0.1"\nrequires-python = ">=3.9"\n'
            'dependencies = ["pretool"]\n\n' + snippet(page, key).replace("<package>", "pretool")
        )
        run_client([venv_tool("uv"), "lock"], uv_env, cwd=project)
        lock = (project / "uv.lock").read_text()
        assert 'name = "pretool"\nversion = "1.5.0"' in lock, key
        assert f'source = {{ registry = "{live_server.url}/simple/" }}' in lock, key

    # Yank the release candidate, then find the upload and the yank in the audit log.
    page.goto(live_server.url + "/packages/pretool/2.0.0rc1/")
    page.fill("input[name=reason]", "wrong config format")
    page.click("button:has-text('Yank 2.0.0rc1')")
    page.wait_for_selector("text=Yanked pretool 2.0.0rc1.")
    page.click("header a:has-text('Audit log')")
    page.wait_for_url(re.compile(r"/audit/$"))
    rows = page.inner_text("table.journal tbody")
    assert "yank release" in rows and "wrong config format" in rows
    assert "add file" in rows and "pretool-1.5.0-py3-none-any.whl" in rows
    page.select_option("select[name=action]", "yank release")
    page.click("button:has-text('Filter')")
    page.wait_for_url(re.compile(r"action=yank"))
    assert page.locator("table.journal tbody tr").count() == 1
    shoot(page, "pypi-audit", database)

    # The package page shows its own history; the yanked candidate carries its reason.
    page.goto(live_server.url + "/packages/pretool/")
    assert "Yanked: wrong config format" in page.inner_text("ul.releases")
    assert "yank release" in page.inner_text("table.journal")
    assert not errors, errors  # no CSP violations (external images stay placeholders)
    context.close()


@pytest.mark.e2e
@pytest.mark.browser
def test_expired_session_keeps_the_form_in_a_real_browser(browser, live_server, data, database_url):
    """A CSRF failure shows the form again with what was typed (never the password)."""
    database = database_url.split(":", 1)[0].split("+", 1)[0]
    data.user("root", Role.ADMIN)
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(live_server.url + "/login")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", "correct horse")
    page.click("button:has-text('Log in')")
    page.wait_for_url(live_server.url + "/")
    page.goto(live_server.url + "/users/new")
    page.fill("input[name=username]", "latecomer")
    page.fill("input[name=email]", "late@example.com")
    page.fill("input[name=password]", "s3cret pass phrase")
    page.fill("input[name=confirmation]", "s3cret pass phrase")
    page.evaluate("document.querySelector('main input[name=csrf_token]').value = 'expired'")
    page.click("button:has-text('Create user')")
    page.wait_for_selector("text=Your session expired, submit again")
    assert "s3cret pass phrase" not in page.content()
    assert "late@example.com" in page.inner_text("main")
    shoot(page, "pypi-csrf-expired", database)
    page.fill("input[name=password]", "s3cret pass phrase")
    page.fill("input[name=confirmation]", "s3cret pass phrase")
    page.click("button:has-text('Submit again')")
    page.wait_for_selector("text=Created user latecomer (installer).")
    created = stored(data, lambda s: get_user(s, "latecomer").email)
    assert created == "late@example.com"
    context.close()
