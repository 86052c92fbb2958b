"""Descriptions become safe HTML: rst without raw/include, markdown, plain text; no script."""

import pytest

from extrapypi.services.dashboard import like_pattern, page_number
from extrapypi.services.descriptions import parse_content_type, render_description


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (".. raw:: html\n\n   <script>alert(1)</script>\n", "text/x-rst"),
        (".. include:: /etc/passwd\n", "text/x-rst"),
        ("`x <javascript:alert(1)>`_\n", "text/x-rst"),
        ("[x](javascript:alert(1))", "text/markdown"),
        ("<a href='JaVaScRiPt:alert(1)'>x</a>", "text/markdown"),
        ("<script>alert(1)</script>", "text/markdown"),
        ("<img src=x onerror=alert(1)>", "text/markdown"),
        ("<iframe src=//evil></iframe>", "text/markdown"),
        ("<script>alert(1)</script>", "text/plain"),
        ("<script>alert(1)</script>", "text/unknown"),
    ],
)
def test_hostile_descriptions_are_neutralised(text, kind):
    html = str(render_description(text, kind)).lower()
    assert "<script" not in html and "javascript:" not in html
    assert "onerror" not in html and "<iframe" not in html and "root:" not in html


def test_content_type_parameters():
    assert parse_content_type("text/markdown; charset=UTF-8; variant=CommonMark") == (
        "text/markdown",
        {"charset": "UTF-8", "variant": "CommonMark"},
    )
    assert parse_content_type("")[0] == "text/x-rst"  # the core metadata default


def test_empty_description_renders_nothing():
    assert render_description("   \n", "text/x-rst") == ""


def test_like_pattern_escapes_wildcards():
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


@pytest.mark.parametrize(("raw", "page"), [(None, 1), ("3", 3), ("-2", 1), ("x", 1), ("0", 1)])
def test_page_number(raw, page):
    assert page_number(raw) == page
