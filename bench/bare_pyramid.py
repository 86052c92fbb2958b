"""A bare Pyramid app returning the same bytes as extrapypi's pages: the ceiling for the
"≥ 0.9x a bare Pyramid view" target (``bench_index.py`` serves it with waitress, same threads).

``BARE_PAGES`` names a directory laid out as the static mirror (``simple/<name>/index.html``);
each page is read once, then answered from memory by one view with no security, no database.
"""

import os
from pathlib import Path

from pyramid.config import Configurator
from pyramid.response import Response


def make_app(global_config=None, **settings):
    root = Path(settings.get("pages") or os.environ["BARE_PAGES"])
    pages: dict[str, bytes] = {}

    def page(request):
        name = request.matchdict.get("name", "")
        body = pages.get(name)
        if body is None:
            path = root / "simple" / name / "index.html" if name else root / "simple/index.html"
            body = pages.setdefault(name, path.read_bytes())
        return Response(body=body, content_type="text/html", charset="utf-8")

    with Configurator(settings=settings) as config:
        config.add_route("root", "/simple/")
        config.add_route("project", "/simple/{name}/")
        config.add_route("ping", "/ping")
        config.add_view(page, route_name="root")
        config.add_view(page, route_name="project")
        config.add_view(lambda request: Response(b"pong"), route_name="ping")
    return config.make_wsgi_app()


if __name__ == "__main__":
    import sys

    from waitress import serve

    serve(make_app(pages=sys.argv[1]), listen=sys.argv[2], threads=8)
