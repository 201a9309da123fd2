"""The HTTP headers every portal answer carries: a Content-Security-Policy that allows the page
only the service's own script, stylesheet, forms and images (and the inline ``data:`` images the
verdict page draws its tamper heatmap with, so no image of a patient is kept on the server to be
fetched), no framing, no referrer, no content sniffing, and no caching of pages about images."""

from __future__ import annotations

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)

PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

STATIC_HEADERS = PAGE_HEADERS | {"Cache-Control": "max-age=300"}
