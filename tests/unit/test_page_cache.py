from extrapypi.services.index import PageCache, RenderedPage


def page(text: str) -> RenderedPage:
    return RenderedPage.build(text.encode(), "text/html")


def test_page_served_only_at_its_serial():
    cache = PageCache()
    cache.put(5, ("p", "text/html"), page("v5"))
    assert cache.get(5, ("p", "text/html"))[0]
    assert cache.get(6, ("p", "text/html")) == (False, None)


def test_serial_going_back_never_serves_pages_from_before():
    """A database restored from a backup: its serial is lower, then climbs to the old number."""
    cache = PageCache()
    cache.put(100, ("p", "text/html"), page("before restore"))
    cache.put(50, ("p", "text/html"), page("after restore"))
    assert cache.get(100, ("p", "text/html")) == (False, None)
    found, cached = cache.get(50, ("p", "text/html"))
    assert found and cached.body == page("after restore").body
