"""``extrapypi.wsgi:app`` for gunicorn/uwsgi: the ini file comes from ``EXTRAPYPI_CONFIG``."""

import os

from pyramid.paster import get_app, setup_logging

config_uri = os.environ.get("EXTRAPYPI_CONFIG", "production.ini")
setup_logging(config_uri)
app = get_app(config_uri, "main")
