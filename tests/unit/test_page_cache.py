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


def test_threads_that_miss_together_build_the_page_once():
    import threading
    import time

    from extrapypi.services import index

    cache = PageCache()
    builds = []

    class Session:
        pass

    def slow_root_page(session):
        builds.append(session)
        time.sleep(0.2)
        return {"meta": {"api-version": "1.4"}, "projects": []}

    original = index.root_page
    index.root_page = slow_root_page
    try:
        pages = []
        threads = [
            threading.Thread(
                target=lambda: pages.append(
                    index.cached_page(cache, Session, 7, None, index.TEXT_HTML_TYPE)
                )
            )
            for _ in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        index.root_page = original
    assert len(builds) == 1
    assert len(pages) == 6 and all(page is pages[0] for page in pages)
