"""Security headers on every response."""

from pyramid.events import NewResponse, subscriber

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
#: Programs' paths: their pages hold no account data and clients may cache them.
API_PREFIXES = ("/simple", "/pypi", "/legacy")
#: ``extrapypi.description_images = https``: description images may come from any https site.
CONTENT_SECURITY_POLICY_HTTPS_IMAGES = CONTENT_SECURITY_POLICY.replace(
    "img-src 'self' data:", "img-src 'self' data: https:"
)
HTML_ONLY = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
}


@subscriber(NewResponse)
def add_security_headers(event) -> None:
    """No inline script, no framing, no MIME sniffing, no full URLs leaked to other sites."""
    headers = event.response.headers
    for name, value in ALWAYS.items():
        headers.setdefault(name, value)
    if (event.response.content_type or "").startswith(("text/html", "application/xhtml")):
        for name, value in HTML_ONLY.items():
            headers.setdefault(name, value)
        registry = getattr(event.request, "registry", None)
        settings = registry.get("extrapypi.settings") if registry is not None else None
        if settings is not None and settings.description_images == "https":
            headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY_HTTPS_IMAGES


@subscriber(NewResponse)
def never_store_dashboard_pages(event) -> None:
    """Dashboard pages show who is logged in, emails, forms with CSRF tokens: no browser or
    proxy cache keeps them (the back button after logout, a shared computer)."""
    response = event.response
    if "Cache-Control" in response.headers:
        return
    if not (response.content_type or "").startswith(("text/html", "application/xhtml")):
        return
    if event.request.path_info.startswith(API_PREFIXES):
        return
    response.headers["Cache-Control"] = "no-store"
