"""Behind a reverse proxy and under a sub-path: the links the app writes point where users are."""

import webtest
from conftest import basic_auth, write_ini
from paste.deploy.config import PrefixMiddleware
from pyramid.paster import get_app

BROWSER = {"Accept": "text/html"}
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "pypi.example.com"}


def test_script_name_from_the_server_prefixes_every_link(app, data):
    """gunicorn/uwsgi set SCRIPT_NAME when told the mount point; Pyramid's URLs follow it."""
    data.user("bob")
    testapp = webtest.TestApp(app, extra_environ={"HTTP_HOST": "example.com"})
    page = testapp.get("/", headers=basic_auth("bob"), extra_environ={"SCRIPT_NAME": "/pypi"})
    assert 'href="http://example.com/pypi/static/style.css"' in page.text
    assert 'href="http://example.com/pypi/"' in page.text
    redirect = testapp.get("/", headers=BROWSER, extra_environ={"SCRIPT_NAME": "/pypi"})
    assert redirect.status_int == 302
    assert redirect.location == "http://example.com/pypi/login?came_from=%2Fpypi%2F"


def test_paste_prefix_filter_from_the_ini(base_settings, data, tmp_path):
    """``filter-with = proxy`` + ``egg:PasteDeploy#prefix``: sub-path and X-Forwarded-* at once."""
    data.user("bob")
    ini = tmp_path / "proxied.ini"
    write_ini(ini, {**base_settings, "filter-with": "proxy"})
    ini.write_text(
        ini.read_text() + "\n[filter:proxy]\nuse = egg:PasteDeploy#prefix\nprefix = /pypi\n"
    )
    wsgi_app = get_app(str(ini), "main")
    assert isinstance(wsgi_app, PrefixMiddleware)
    testapp = webtest.TestApp(wsgi_app, extra_environ={"HTTP_HOST": "127.0.0.1:6543"})

    assert testapp.get("/pypi/ping").text == "pong"
    testapp.get("/pypi/simple/", status=401)
    redirect = testapp.get("/pypi/", headers={**BROWSER, **FORWARDED}, status=302)
    assert redirect.location == "https://pypi.example.com/pypi/login?came_from=%2Fpypi%2F"
    page = testapp.get("/pypi/", headers={**FORWARDED, **basic_auth("bob")})
    assert 'href="https://pypi.example.com/pypi/static/style.css"' in page.text
    assert 'href="https://pypi.example.com/pypi/"' in page.text
    assert 'action="https://pypi.example.com/pypi/logout"' in page.text
    testapp.get("/pypi/static/style.css", status=200)
    # Without the proxy headers the links are what the client asked for.
    page = testapp.get("/pypi/", headers=basic_auth("bob"))
    assert 'href="http://127.0.0.1:6543/pypi/"' in page.text
