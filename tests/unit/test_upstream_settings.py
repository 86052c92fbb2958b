"""``extrapypi.upstream.*`` settings: parsed once, wrong values refused with the fix."""

import pytest

from extrapypi.services.upstream import (
    UpstreamConfigurationError,
    _matches,
    parse_duration,
    parse_html_page,
    parse_upstream_settings,
)


def test_no_url_means_no_upstream():
    assert parse_upstream_settings({}) is None
    assert parse_upstream_settings({"extrapypi.upstream.url": " "}) is None


def test_settings_are_parsed():
    config = parse_upstream_settings(
        {
            "extrapypi.upstream.url": "https://pypi.org/simple",
            "extrapypi.upstream.ttl": "5m",
            "extrapypi.upstream.cooldown": "7d",
            "extrapypi.upstream.allow": "requests Django corp-*",
            "extrapypi.upstream.block": "Evil_Pkg",
            "extrapypi.upstream.file_hosts": "files.pythonhosted.org",
            "extrapypi.upstream.password": "s3cret",
        }
    )
    assert config.url == "https://pypi.org/simple/"
    assert (config.ttl, config.cooldown) == (300, 7 * 86400)
    assert config.allow == ("requests", "django", "corp-*")
    assert config.block == ("evil-pkg",)
    assert config.file_hosts == ("files.pythonhosted.org",)
    assert "s3cret" not in repr(config)
    assert _matches(config.allow, "corp-tools") and not _matches(config.allow, "flask")
    assert _matches(config.block, "evil-pkg")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"extrapypi.upstream.url": "ftp://x/simple/"}, r"must be an http\(s\) URL"),
        ({"extrapypi.upstream.url": "https://u:p@x/simple/"}, "must not hold credentials"),
        ({"extrapypi.upstream.ttl": "soon"}, "not a duration"),
        ({"extrapypi.upstream.cooldown_without_upload_time": "maybe"}, "must be hide or show"),
        ({"extrapypi.upstream.read_timeout": "long"}, "are seconds"),
        ({"extrapypi.upstream.block": "not/a/name"}, "not a project name"),
    ],
)
def test_wrong_settings_are_refused(settings, message):
    with pytest.raises(UpstreamConfigurationError, match=message):
        parse_upstream_settings({"extrapypi.upstream.url": "https://x/simple/", **settings})


def test_durations():
    assert [parse_duration(v) for v in ("90", "90s", "10m", "12h", "7d", "2w")] == [
        90,
        90,
        600,
        43200,
        604800,
        1209600,
    ]


def test_html_pages_become_pep_691_data():
    page = parse_html_page(
        b'<a href="../../f/a-1.0.tar.gz#sha256=ab" data-requires-python="&gt;=3.9" '
        b'data-yanked="bad" data-dist-info-metadata="sha256=cd">a-1.0.tar.gz</a>',
        "https://up.example/simple/a/",
    )
    assert page == {
        "files": [
            {
                "filename": "a-1.0.tar.gz",
                "url": "https://up.example/f/a-1.0.tar.gz",
                "hashes": {"sha256": "ab"},
                "requires-python": ">=3.9",
                "yanked": "bad",
                "core-metadata": {"sha256": "cd"},
            }
        ]
    }
