"""The dashboard as an internal PyPI (issue 13): headline versions, error pages, project facts,
search, the setup page, the audit log, the home page, descriptions and accessibility basics."""

import html
import re
from datetime import UTC, datetime

import pytest
import webtest
from markupsafe import escape
from test_dashboard import BROWSER, csrf_token, log_in, with_package

from extrapypi import main
from extrapypi.permissions import Role
from extrapypi.services.accounts import get_user
from extrapypi.services.packages import get_package, get_release

PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)


def set_release(data, name: str, version: str, **fields) -> None:
    def change(s):
        release = get_release(s, get_package(s, name), version)
        for key, value in fields.items():
            setattr(release, key, value)

    with_package(data, change)


def headline(text: str) -> str:
    return re.search(r'<h1>[^<]*<span class="version">([^<]+)</span></h1>', text).group(1)


@pytest.fixture
def user(data):
    data.user("u")
    return data


# --- item 1: the headline version is what pip would install ----------------------------------


def test_pre_release_is_not_the_headline_version(testapp, user):
    user.release_file("tool", "1.5.0", summary="stable")
    user.release_file("tool", "2.0.0rc1", summary="next")
    log_in(testapp, "u")
    listing = testapp.get("/packages/").text
    assert '<span class="version">1.5.0</span>' in listing
    assert "2.0.0rc1" not in listing
    page = testapp.get("/packages/tool/").text
    assert headline(page) == "1.5.0"
    files = page.split("Files of 1.5.0", 1)[1].split("</table>", 1)[0]
    assert "tool-1.5.0-py3-none-any.whl" in files and "tool-2.0.0rc1" not in files
    row = re.search(r'<li>\s*<a href="[^"]+/tool/2.0.0rc1/">.*?</li>', page, re.S).group(0)
    assert "pre-release" in row and "installed by default" not in row
    row = re.search(r'<li>\s*<a href="[^"]+/tool/1.5.0/">.*?</li>', page, re.S).group(0)
    assert "installed by default" in row and "pre-release" not in row


def test_only_pre_releases_show_the_newest_with_a_note(testapp, user):
    user.release_file("early", "0.1a1")
    user.release_file("early", "0.1b2")
    user.release_file("early", "0.1.dev3")
    log_in(testapp, "u")
    page = testapp.get("/packages/early/").text
    assert headline(page) == "0.1b2"
    assert "is a pre-release and there is no final release yet" in page


def test_yanked_final_release_gives_way_to_the_previous_final(testapp, user):
    user.release_file("y", "1.0")
    user.release_file("y", "1.1")
    user.release_file("y", "2.0rc1")
    set_release(user, "y", "1.1", yanked=True, yanked_reason="broke imports")
    log_in(testapp, "u")
    page = testapp.get("/packages/y/").text
    assert headline(page) == "1.0"
    assert "Yanked: broke imports" in page  # the reason in the releases list
    assert '<span class="version">1.0</span>' in testapp.get("/packages/").text
    set_release(user, "y", "1.0", yanked=True)
    assert headline(testapp.get("/packages/y/").text) == "2.0rc1"  # a live pre-release
    set_release(user, "y", "2.0rc1", yanked=True)
    page = testapp.get("/packages/y/").text
    assert headline(page) == "2.0rc1" and "Every release of y is yanked" in page


# --- item 2: error pages for people, plain text for programs ---------------------------------


def test_browser_gets_a_styled_404_in_the_layout(testapp, user):
    log_in(testapp, "u")
    page = testapp.get(
        "/packages/nope/",
        headers={**BROWSER, "Referer": "http://example.com/packages/"},
        status=404,
    )
    reason = page.status.split(" ", 1)[1]  # errors.py's words, unchanged for browsers
    assert page.status_int == 404 and reason.startswith("Not Found")
    assert page.content_type == "text/html"
    assert "<header" in page.text and "Page not found" in page.text
    assert str(escape(reason)) in page.text
    assert 'href="http://example.com/packages/">← Go back' in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "Accept" in page.headers["Vary"]


def test_programs_keep_the_plain_text_reason(testapp, user, auth):
    for accept in ({}, {"Accept": "*/*"}, {"Accept": PIP_ACCEPT}):
        answer = testapp.get("/packages/nope/", headers={**auth("u"), **accept}, status=404)
        assert answer.content_type == "text/plain", accept
        assert answer.text == answer.status.split(" ", 1)[1] + "\n"
    answer = testapp.get("/simple/nope/", headers={**auth("u"), **BROWSER}, status=404)
    assert answer.content_type == "text/plain"


def test_browser_403_is_a_page_and_anonymous_clients_still_get_the_challenge(testapp, user):
    log_in(testapp, "u")
    page = testapp.get("/users/", headers=BROWSER, status=403)
    assert page.content_type == "text/html" and "Not allowed" in page.text
    assert str(escape(page.status.split(" ", 1)[1])) in page.text and "<nav" in page.text
    anonymous = webtest.TestApp(testapp.app, extra_environ={"HTTP_HOST": "example.com"})
    assert "/login?came_from=" in anonymous.get("/users/", headers=BROWSER, status=302).location
    challenge = anonymous.get("/packages/", headers={"Accept": PIP_ACCEPT}, status=401)
    assert challenge.headers["WWW-Authenticate"].startswith("Basic")
    assert challenge.content_type == "text/plain"


def test_csrf_failure_reshows_the_form_with_the_input_but_no_password(testapp, data):
    data.user("adm", Role.ADMIN)
    log_in(testapp, "adm")
    form = {
        "csrf_token": "stale",
        "username": "newcomer",
        "email": "n@example.com",
        "role": "maintainer",
        "is_active": "1",
        "password": "typed-secret-1",
        "confirmation": "typed-secret-1",
    }
    same_site = {**BROWSER, "Origin": "http://example.com"}
    page = testapp.post("/users/new", form, headers=same_site, status=400)
    assert page.status.startswith("400 Bad Request: the form's CSRF token")
    assert "Your session expired, submit again" in page.text
    assert "typed-secret-1" not in page.text and "stale" not in page.text
    assert 'name="username" value="newcomer"' in page.text
    assert 'name="email" value="n@example.com"' in page.text
    assert '<input name="password" type="password"' in page.text
    assert 'action="/users/new"' in page.text
    # Submitting the re-shown form (password typed again) creates the user.
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    fields.update(password="typed-secret-1", confirmation="typed-secret-1")
    testapp.post("/users/new", fields, headers=same_site, status=303)
    user = with_package(data, lambda s: (lambda u: (u.email, u.role))(get_user(s, "newcomer")))
    assert user == ("n@example.com", "maintainer")


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/page"},
        {"Referer": "http://example.com.evil.example/"},
        {},
    ],
)
def test_csrf_failure_from_another_site_offers_no_form(testapp, data, headers):
    data.user("adm", Role.ADMIN)
    log_in(testapp, "adm")
    form = {"csrf_token": "x", "action": "update", "role": "admin", "is_active": "1"}
    data.user("victim")
    page = testapp.post("/users/victim/", form, headers={**BROWSER, **headers}, status=400)
    assert page.content_type == "text/html" and "CSRF token" in page.text
    assert "Submit again" not in page.text and 'value="admin"' not in page.text
    assert page.text.count('name="csrf_token"') == 1  # the header's logout form only


def test_csrf_failure_for_a_program_stays_plain_text(testapp, user):
    log_in(testapp, "u")
    answer = testapp.post("/account", {"action": "email", "csrf_token": "x"}, status=400)
    assert answer.content_type == "text/plain" and "CSRF token" in answer.text


def test_logged_out_login_form_with_stale_token_keeps_the_username(app, user):
    fresh = webtest.TestApp(app, extra_environ={"HTTP_HOST": "example.com"})
    page = fresh.post(
        "/login",
        {"username": "u", "password": "pw-never-echoed", "csrf_token": "old"},
        headers={**BROWSER, "Referer": "http://example.com/login"},
        status=400,
    )
    assert 'name="username" value="u"' in page.text and "pw-never-echoed" not in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    fresh.post(
        "/login",
        {"username": "u", "password": "correct horse", "csrf_token": token},
        headers=BROWSER,
        status=303,
    )


# --- item 3: author and maintainer ------------------------------------------------------------


def test_author_email_with_a_name_is_a_mailto_link(testapp, user):
    user.release_file("pp", "1.0")
    set_release(
        user,
        "pp",
        "1.0",
        author_email="Platform Team <platform@acme.example>, ops@acme.example",
        maintainer="Jane Doe",
        maintainer_email="jane@acme.example",
    )
    log_in(testapp, "u")
    for path in ("/packages/pp/", "/packages/pp/1.0/"):
        text = testapp.get(path).text
        assert '<a href="mailto:platform@acme.example">Platform Team</a>' in text
        assert '<a href="mailto:ops@acme.example">ops@acme.example</a>' in text
        assert '<a href="mailto:jane@acme.example">Jane Doe</a>' in text
        assert "&lt;Platform Team" not in text and "&lt;platform@" not in text


# --- item 4: past the last page ---------------------------------------------------------------


def test_past_the_last_page_says_so(testapp, user):
    user.package("one")
    user.package("two")
    log_in(testapp, "u")
    text = testapp.get("/packages/", {"page": "5"}).text
    assert "No packages yet" not in text
    assert "There is no page 5" in text and "Go to the first page" in text
    assert "2 packages" in text


# --- item 5: descriptions ---------------------------------------------------------------------

README = """\
Title
=====

A badge: |badge|

.. |badge| image:: https://img.shields.io/badge/build-passing-green.svg
   :alt: build passing

Section
-------

``inline literal``

.. code:: python

   import os

.. warning::

   Careful.
"""


def test_description_headings_demoted_and_external_images_as_placeholders(testapp, user):
    user.release_file("docs", "1.0", description=README, description_content_type="text/x-rst")
    log_in(testapp, "u")
    text = testapp.get("/packages/docs/").text
    description = text.split('class="card description"', 1)[1]
    assert "<h1" not in description and "<h2>Title" in description
    assert "<h3>Section" in description
    assert "img.shields.io" not in description.split("title=")[0]
    placeholder = '<span class="img-placeholder" title="Image not loaded: https://img.shields.io/'
    assert placeholder in description
    assert "build passing</span>" in description and "<img" not in description
    assert '<span class="kn">import</span>' in description  # Pygments classes
    assert '<aside class="admonition warning">' in description
    assert 'static/pygments.css"' in text
    assert (
        "img-src 'self' data:;" in testapp.get("/packages/docs/").headers["Content-Security-Policy"]
    )


def test_https_images_setting_loads_them_and_widens_the_csp(base_settings, clean, data):
    data.user("u")
    data.release_file("docs", "1.0", description=README, description_content_type="text/x-rst")
    app = main({}, **{**base_settings, "extrapypi.description_images": "https"})
    testapp = webtest.TestApp(app, extra_environ={"HTTP_HOST": "example.com"})
    log_in(testapp, "u")
    page = testapp.get("/packages/docs/")
    assert '<img alt="build passing" src="https://img.shields.io/badge/' in page.text
    assert "img-src 'self' data: https:;" in page.headers["Content-Security-Policy"]


def test_unknown_description_images_setting_is_refused(base_settings):
    from extrapypi.settings import ConfigurationError

    with pytest.raises(ConfigurationError, match="description_images"):
        main({}, **{**base_settings, "extrapypi.description_images": "all"})


# --- item 6: copy buttons and full hashes -----------------------------------------------------


def test_install_command_and_full_hashes_are_copyable(testapp, user):
    stored = user.release_file("cp", "1.0")
    import hashlib

    digest = hashlib.sha256(stored["content"]).hexdigest()
    log_in(testapp, "u")
    text = testapp.get("/packages/cp/").text
    assert 'static/copy.js" defer></script>' in text
    assert re.search(
        r'<div class="copyable install" data-copy-label="install command"><pre><code>'
        r"pip install --index-url http://example.com/simple/ cp</code></pre></div>",
        text,
    )
    assert f'<code class="hash">{digest}</code>' in text  # the whole hash, as text
    assert 'data-copy-label="SHA-256 of cp-1.0-py3-none-any.whl"' in text
    script = testapp.get("/static/copy.js")
    assert "navigator.clipboard" in script.text


# --- item 7: the setup page -------------------------------------------------------------------


def test_setup_page_generates_every_client_for_this_server(testapp, user):
    log_in(testapp, "u")
    home = testapp.get("/").text
    assert 'href="http://example.com/setup/"' in home.split("</header>")[0]  # header link
    assert 'href="http://example.com/setup/"' in home.split("</header>")[1]  # home card
    page = testapp.get("/setup/").text
    text = html.unescape(page)
    url = "http://example.com/simple/"
    assert f"[global]\nindex-url = {url}\n" in text
    assert f"pip install --index-url {url} <package>" in text
    assert "machine example.com\nlogin <username>\npassword <password>" in text
    assert f"keyring set {url} <username>" in text
    assert f'[[tool.uv.index]]\nname = "extrapypi"\nurl = "{url}"\ndefault = true\n' in text
    assert 'explicit = true\n\n[tool.uv.sources]\n<package> = { index = "extrapypi" }' in text
    assert "UV_INDEX_EXTRAPYPI_USERNAME=<username>" in text
    assert "UV_INDEX_EXTRAPYPI_PASSWORD=<password>" in text
    assert f"poetry source add --priority=primary extrapypi {url}" in text
    assert "poetry config http-basic.extrapypi <username> <password>" in text
    assert "repository = http://example.com/legacy/" in text
    upload = "http://example.com/legacy/"
    assert f'uv publish --publish-url {upload} --token "$EXTRAPYPI_TOKEN"' in text
    assert f"uv publish --trusted-publishing always --publish-url {upload}" in text
    assert "--extra-index-url pip takes the highest version" in re.sub(r"<[^>]+>", "", text)
    text = page
    assert text.count('class="copyable"') >= 9


def test_setup_page_follows_the_configured_index_url(base_settings, clean, data):
    data.user("u")
    settings = {**base_settings, "extrapypi.index_url": "https://pypi.corp.example/simple"}
    testapp = webtest.TestApp(main({}, **settings), extra_environ={"HTTP_HOST": "example.com"})
    log_in(testapp, "u")
    text = testapp.get("/setup/").text
    assert "index-url = https://pypi.corp.example/simple/" in text
    assert "machine pypi.corp.example" in text
    assert "repository = https://pypi.corp.example/legacy/" in text
    assert "http://example.com/simple/" not in text


def test_setup_page_needs_view_permission(app, user):
    anonymous = webtest.TestApp(app, extra_environ={"HTTP_HOST": "example.com"})
    assert "/login" in anonymous.get("/setup/", headers=BROWSER, status=302).location


# --- item 8: project facts --------------------------------------------------------------------


def test_package_page_sidebar_carries_the_project_facts(testapp, data):
    data.user("u")
    data.user("keeper", Role.MAINTAINER)
    data.release_file("facts", "1.0", requires_python=">=3.10", requires_dist=["httpx>=0.27"])
    set_release(
        data,
        "facts",
        "1.0",
        license_expression="Apache-2.0",
        classifiers=["Framework :: Pyramid"],
        keywords="http,client",
        project_urls=[["Source", "https://git.example/facts"], ["Bad", "javascript:x"]],
    )

    def maintain(s):
        package = get_package(s, "facts")
        package.maintainers.append(get_user(s, "keeper"))

    with_package(data, maintain)
    log_in(testapp, "u")
    aside = testapp.get("/packages/facts/").text.split('<aside class="side-column">')[1]
    assert 'href="https://git.example/facts"' in aside and "javascript:" not in aside
    assert "&gt;=3.10" in aside and "Apache-2.0" in aside and "Framework :: Pyramid" in aside
    assert "httpx&gt;=0.27" in aside
    assert 'class="tag" href="http://example.com/packages/?q=http">http</a>' in aside
    assert "<span>keeper</span>" in aside


def test_release_page_lists_other_versions_and_says_a_newer_one_exists(testapp, user):
    for version in ("1.0", "1.1", "2.0b1"):
        user.release_file("multi", version)
    log_in(testapp, "u")
    old = testapp.get("/packages/multi/1.0/").text
    assert "A newer version exists" in old
    assert 'href="http://example.com/packages/multi/1.1/"' in old
    assert 'href="http://example.com/packages/multi/2.0b1/">2.0b1</a>' in old
    assert '<strong aria-current="page">1.0</strong>' in old
    current = testapp.get("/packages/multi/1.1/").text
    assert "A newer version exists" not in current
    candidate = testapp.get("/packages/multi/2.0b1/").text
    assert "A newer version exists" not in candidate
    assert 'installs <a href="http://example.com/packages/multi/1.1/">1.1</a>' in candidate
    assert "this pre-release only when pinned" in candidate
    assert "<h2>Meta</h2>" not in candidate  # nothing to show: no empty card


# --- item 9: search ---------------------------------------------------------------------------


def test_search_matches_keywords_and_ranks_names_first(testapp, data):
    data.user("u")
    data.release_file("zz-summary", "1.0", summary="a parser for yaml files")
    data.release_file("yaml", "1.0")
    data.release_file("yaml-tools", "1.0")
    data.release_file("pyyaml-ext", "1.0")
    data.release_file("kw-only", "1.0")
    set_release(data, "kw-only", "1.0", keywords="config, yaml")
    data.release_file("unrelated", "1.0", summary="nothing")

    def age(s):  # the exact match is the oldest: relevance must beat recency
        for n, name in enumerate(("yaml", "yaml-tools", "pyyaml-ext", "zz-summary", "kw-only")):
            get_package(s, name).updated = datetime(2026, 1, 1 + n, tzinfo=UTC)

    with_package(data, age)
    log_in(testapp, "u")
    text = testapp.get("/packages/", {"q": "YAML"}).text
    found = re.findall(r'class="name" href="[^"]+">([^<]+)</a>', text)
    assert found == ["yaml", "yaml-tools", "pyyaml-ext", "zz-summary", "kw-only"]
    assert '<option value="relevance" selected>Best match</option>' in text
    by_name = testapp.get("/packages/", {"q": "yaml", "sort": "name"}).text
    assert re.findall(r'class="name" href="[^"]+">([^<]+)</a>', by_name) == [
        "kw-only",
        "pyyaml-ext",
        "yaml",
        "yaml-tools",
        "zz-summary",
    ]
    recent = testapp.get("/packages/", {"q": "yaml", "sort": "recent"}).text
    assert re.findall(r'class="name" href="[^"]+">([^<]+)</a>', recent)[0] == "kw-only"
    # A query typed on the listing (whose form sends the selected sort) is ranked too.
    listing = testapp.get("/packages/").text
    assert '<option value="relevance" selected>Best match</option>' in listing
    typed = testapp.get("/packages/", {"q": "yaml", "sort": "relevance"}).text
    assert re.findall(r'class="name" href="[^"]+">([^<]+)</a>', typed)[0] == "yaml"
    keyword = testapp.get("/packages/", {"q": "config"}).text
    assert "kw-only" in keyword and "unrelated" not in keyword


# --- item 10: the audit log ------------------------------------------------------------------


def test_audit_log_lists_filters_and_pages_the_journal(testapp, data):
    data.user("adm", Role.ADMIN)
    data.user("dev", Role.DEVELOPER)
    data.release_file("alpha", "1.0", uploader="dev")
    data.release_file("beta", "1.0", uploader="adm")
    token = log_in(testapp, "adm")
    testapp.post("/packages/alpha/1.0/set-yanked", {"csrf_token": token, "reason": "bad"})
    text = testapp.get("/audit/").text
    assert "yank release" in text and "add file" in text and "alpha-1.0-py3-none-any.whl" in text
    alpha = testapp.get("/audit/", {"package": "alpha"}).text
    assert "alpha-1.0" in alpha and "beta-1.0" not in alpha
    by_dev = testapp.get("/audit/", {"user": "dev"}).text
    assert "alpha-1.0-py3-none-any.whl" in by_dev and "beta-1.0" not in by_dev
    yanks = testapp.get("/audit/", {"action": "yank release"}).text
    assert "bad" in yanks and "add file" not in yanks.split("<tbody>")[1]
    today = datetime.now(UTC).date().isoformat()
    assert "yank release" in testapp.get("/audit/", {"since": today, "until": today}).text
    empty = testapp.get("/audit/", {"until": "2000-01-01"}).text
    assert "Nothing recorded." in empty and "0 entries" in empty
    assert testapp.get("/audit/", {"since": "garbage", "page": "x"}).status_int == 200


def test_audit_log_is_paginated(testapp, data):
    data.user("adm", Role.ADMIN)
    for n in range(55):
        data.package(f"p{n:02d}")
    log_in(testapp, "adm")
    first = testapp.get("/audit/").text
    assert "Page 1 of 2" in first and "p54" in first and "p04" not in first
    second = testapp.get("/audit/", {"page": "2"}).text
    assert "p04" in second and "p54" not in second


def test_audit_log_is_for_admins_and_history_for_viewers(testapp, data):
    data.user("dev", Role.DEVELOPER)
    data.release_file("hist", "1.0", uploader="dev")
    log_in(testapp, "dev")
    testapp.get("/audit/", status=403)
    page = testapp.get("/packages/hist/").text
    history = page.split("<h2>History</h2>")[1]
    assert "add file" in history and "hist-1.0-py3-none-any.whl" in history and "dev" in history
    assert "/audit/" not in page  # no link for non-admins


# --- item 11: the home page -------------------------------------------------------------------


def test_home_page_shows_my_packages_recent_ones_and_the_setup_card(testapp, data):
    data.user("m", Role.MAINTAINER)
    data.release_file("mine-a", "1.0", summary="maintained by m")
    data.release_file("other-b", "2.0")

    def maintain(s):
        package = get_package(s, "mine-a")
        package.maintainers.append(get_user(s, "m"))

    with_package(data, maintain)
    log_in(testapp, "m")
    text = testapp.get("/").text
    mine = text.split("Your packages", 1)[1].split("Recently updated", 1)[0]
    assert "mine-a" in mine and "other-b" not in mine
    recent = text.split("Recently updated", 1)[1]
    assert "mine-a" in recent and "other-b" in recent
    assert "Use this index" in recent and "pip install --index-url" in recent


# --- item 12: accessibility basics ------------------------------------------------------------


def test_accessibility_basics(testapp, data):
    data.user("adm", Role.ADMIN)
    data.user("kept", Role.MAINTAINER)
    data.package("pk", maintainers=("kept",))
    page = testapp.get("/login")
    bad = testapp.post(
        "/login",
        {"username": "adm", "password": "wrong", "csrf_token": csrf_token(page)},
        status=400,
    ).text
    assert 'id="login-error"' in bad and 'aria-describedby="login-error"' in bad
    token = log_in(testapp, "adm")
    text = testapp.get("/").text
    assert '<a class="skip" href="#content">' in text and '<main id="content"' in text
    account = testapp.get("/account").text
    assert 'name="username" value="adm" autocomplete="username" readonly hidden' in account
    package = testapp.get("/packages/pk/").text
    assert 'Remove<span class="visually-hidden"> kept</span>' in package
    users = testapp.get("/users/").text
    assert 'Edit<span class="visually-hidden"> kept</span>' in users
    css = testapp.get("/static/style.css").text
    assert "border: 1px solid #6b7683" in css  # 4.6:1 on white (WCAG 1.4.11 wants 3:1)
    out = testapp.post("/logout", {"csrf_token": token}, status=303).follow()
    assert "You are logged out." in out.text
