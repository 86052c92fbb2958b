"""Pure helpers behind the dashboard pages: pip's headline pick, people, HTML touch-ups."""

from dataclasses import dataclass

import pytest

from extrapypi.services.client_setup import client_setup
from extrapypi.services.dashboard import headline, is_prerelease
from extrapypi.services.description_html import demote_headings, external_images
from extrapypi.services.names import version_sort_key
from extrapypi.services.project_facts import Person, people


@dataclass
class R:
    version: str
    yanked: bool = False

    @property
    def sort_key(self) -> str:
        return version_sort_key(self.version)


@pytest.mark.parametrize(
    ("releases", "expected"),
    [
        ([R("1.5.0"), R("2.0.0rc1")], "1.5.0"),
        ([R("1.0"), R("1.1.dev1"), R("1.0.post1")], "1.0.post1"),
        ([R("0.1a1"), R("0.1b1")], "0.1b1"),
        ([R("1.0"), R("2.0", yanked=True)], "1.0"),
        ([R("1.0", yanked=True), R("2.0a1")], "2.0a1"),
        ([R("1.0", yanked=True), R("0.9", yanked=True)], "1.0"),
        ([R("1.0+local"), R("0.9")], "1.0+local"),
    ],
)
def test_headline_is_what_pip_installs(releases, expected):
    assert headline(releases).version == expected


def test_headline_of_nothing_is_none():
    assert headline([]) is None


def test_is_prerelease_uses_packaging():
    assert is_prerelease("2.0rc1") and is_prerelease("1.0.dev0") and not is_prerelease("1.0.post1")


@pytest.mark.parametrize(
    ("name", "email", "expected"),
    [
        (
            "",
            "Platform Team <platform@acme.example>",
            [Person("Platform Team", "platform@acme.example")],
        ),
        ("Jane Doe", "jane@example.com", [Person("Jane Doe", "jane@example.com")]),
        (
            "",
            '"Doe, Jane" <jane@example.com>, bob@example.com',
            [Person("Doe, Jane", "jane@example.com"), Person("", "bob@example.com")],
        ),
        ("Jane Doe", "", [Person("Jane Doe", "")]),
        ("", "Just A Name", [Person("Just A Name", "")]),
        ("", "", []),
    ],
)
def test_people_from_author_fields(name, email, expected):
    assert people(name, email) == expected


def test_headings_demoted_but_escaped_text_untouched():
    html = "<h1 id='x'>T</h1><h6>s</h6><p>&lt;h1&gt;</p><header>h</header>"
    assert demote_headings(html) == "<h2 id='x'>T</h2><h6>s</h6><p>&lt;h1&gt;</p><header>h</header>"


def test_external_images_become_placeholders_with_escaped_alt():
    html = (
        '<img alt="a &amp; &lt;b&gt;" src="https://x.example/i.svg">'
        '<img src="http://x.example/j.png"><img src="/static/favicon.svg" alt="own">'
    )
    out = external_images(html)
    assert "<img" in out and out.count("<img") == 1 and 'src="/static/favicon.svg"' in out
    assert 'title="Image not loaded: https://x.example/i.svg"' in out
    assert "a &amp; &lt;b&gt;</span>" in out
    assert "image</span>" in out
    allowed = external_images(html, allow_https=True)
    assert 'src="https://x.example/i.svg"' in allowed and 'src="http://x.example' not in allowed


def test_client_setup_urls():
    setup = client_setup("https://pypi.example.com/prefix/simple")
    assert setup.index_url == "https://pypi.example.com/prefix/simple/"
    assert setup.upload_url == "https://pypi.example.com/prefix/legacy/"
    assert setup.host == "pypi.example.com"
