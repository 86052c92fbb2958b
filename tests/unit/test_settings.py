import os

import pytest
from pyramid.paster import get_app

from extrapypi.settings import ConfigurationError, parse_settings, parse_size

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


@pytest.mark.parametrize("secret", ["", "CHANGE-ME", "short"])
def test_placeholder_or_short_secret_refused(secret, monkeypatch):
    monkeypatch.delenv("EXTRAPYPI_SECRET", raising=False)
    with pytest.raises(ConfigurationError, match="extrapypi.secret"):
        parse_settings({"extrapypi.secret": secret})


def test_production_ini_refuses_to_start_with_its_placeholder(monkeypatch):
    monkeypatch.delenv("EXTRAPYPI_SECRET", raising=False)
    with pytest.raises(ConfigurationError, match="token_urlsafe"):
        get_app(os.path.join(ROOT, "production.ini"))


def test_secret_from_environment_wins(monkeypatch):
    monkeypatch.setenv("EXTRAPYPI_SECRET", "e" * 40)
    assert parse_settings({"extrapypi.secret": "CHANGE-ME"}).secret == "e" * 40


@pytest.mark.parametrize(
    ("text", "size"), [("100M", 100 * 2**20), ("2 GiB", 2 * 2**30), ("1024", 1024), ("5k", 5120)]
)
def test_parse_size(text, size):
    assert parse_size(text) == size


def test_parse_size_refuses_garbage():
    with pytest.raises(ConfigurationError, match="not a size"):
        parse_size("lots")


def test_min_password_length_is_a_setting_default_12():
    base = {"extrapypi.secret": "s" * 32}
    assert parse_settings(base).password_policy.min_length == 12
    assert parse_settings({**base, "extrapypi.min_password_length": "16"}).min_password_length == 16
    for bad in ("0", "twelve", "-3"):
        with pytest.raises(ConfigurationError, match="min_password_length"):
            parse_settings({**base, "extrapypi.min_password_length": bad})
