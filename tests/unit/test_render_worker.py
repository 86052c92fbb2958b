"""The description renderer's bounds: time, memory, size; a failure is a note, never an error."""

import pytest

from extrapypi.services.descriptions import (
    DescriptionRenderer,
    DescriptionSettings,
    parse_description_settings,
)
from extrapypi.settings import ConfigurationError

LINKS = "Lorem *ipsum* ``dolor`` `a link <https://example.com/>`_ sit amet.\n\n"


@pytest.fixture(scope="module")
def strict():
    """Half a second, 128 MiB and up to 2 MiB rendered: a hostile text hits a limit quickly."""
    renderer = DescriptionRenderer(
        DescriptionSettings(render_bytes=2 * 1024 * 1024, seconds=0.5, memory_bytes=128 << 20)
    )
    yield renderer
    renderer.worker.close()


def test_a_slow_description_is_stopped_and_the_worker_replaced(strict):
    slow = strict.render(LINKS * 16_000, "text/x-rst")  # ~1 MiB of links: seconds of docutils
    assert slow.failure == "rendering took too long"
    assert slow.html.startswith(
        '<p class="warning description-note">This description could not be rendered as '
        "reStructuredText: rendering took too long. It is shown as plain text.</p>"
        '<pre class="plain">Lorem *ipsum* ``dolor`` `a link &lt;https://example.com/&gt;`_'
    )
    assert strict.worker._process is None  # killed; the next render starts a new one
    assert str(strict.render("*fine*", "text/x-rst").html) == "<p><em>fine</em></p>\n"


def test_a_description_that_needs_too_much_memory_is_refused():
    renderer = DescriptionRenderer(
        DescriptionSettings(render_bytes=4 * 1024 * 1024, seconds=20, memory_bytes=128 << 20)
    )
    table = "=== ===\na   b\n=== ===\n" + "x   y\n" * 400_000 + "=== ===\n"  # 2.4 MB
    hungry = renderer.render(table, "text/x-rst")
    assert hungry.failure in (
        "it needs too much memory",
        "rendering failed (it needed too much memory or crashed)",
    )
    assert "shown as plain text" in hungry.html
    assert str(renderer.render("# ok", "text/markdown").html).startswith("<h1")
    renderer.worker.close()


def test_only_the_first_bytes_are_rendered_and_shown():
    renderer = DescriptionRenderer(DescriptionSettings(render_bytes=1024))
    text = "Title\n=====\n\n" + "First part. " * 50 + "\n\n" + "SECOND-PART " * 200
    rendered = renderer.render(text, "text/x-rst")
    assert rendered.failure == ""
    assert "<h1>Title" in rendered.html and "First part." in rendered.html
    assert "SECOND-PART" not in rendered.html
    assert "longer than 1 KiB: only its beginning is shown" in rendered.html
    plain = renderer.render("é" * 2000, "text/plain")  # cut on a character, not inside one
    assert plain.html.startswith('<pre class="plain">' + "é" * 512 + "</pre>")


def test_unknown_types_are_escaped_plain_text():
    rendered = DescriptionRenderer().render("<script>x</script>\n", "application/x-what")
    assert str(rendered.html) == '<pre class="plain">&lt;script&gt;x&lt;/script&gt;\n</pre>'


def test_the_key_covers_text_type_and_limit():
    small, large = (DescriptionRenderer(DescriptionSettings(render_bytes=n)) for n in (1024, 2048))
    keys = {
        small.key("a", "text/x-rst"),
        small.key("b", "text/x-rst"),
        small.key("a", "text/markdown"),
        small.key("a", "text/markdown; variant=CommonMark"),
        large.key("a", "text/x-rst"),
    }
    assert len(keys) == 5
    assert small.key("a", "text/x-rst") == small.key("a", "")  # rst is the metadata default


@pytest.mark.parametrize(
    "settings",
    [
        {"extrapypi.description_render_seconds": "0"},
        {"extrapypi.description_render_seconds": "soon"},
        {"extrapypi.description_render_memory": "64M"},
        {"extrapypi.description_render_limit": "lots"},
    ],
)
def test_bad_settings_are_refused(settings):
    with pytest.raises(ConfigurationError):
        parse_description_settings(settings)


def test_settings_parse():
    assert parse_description_settings(
        {
            "extrapypi.description_render_limit": "128K",
            "extrapypi.description_render_seconds": "1.5",
            "extrapypi.description_render_memory": "1G",
        }
    ) == DescriptionSettings(render_bytes=128 * 1024, seconds=1.5, memory_bytes=1 << 30)
