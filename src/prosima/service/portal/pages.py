"""Rendering portal pages: the templates (Jinja2, every value autoescaped), the filters they format
values with, and the portal's own static files, each answered with the portal's headers."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from prosima.app.ledger_queries import iso_time
from prosima.service.errors import NotFound
from prosima.service.portal.headers import PAGE_HEADERS, STATIC_HEADERS

STATIC_TYPES = {"portal.css": "text/css; charset=utf-8", "portal.js": "text/javascript; charset=utf-8"}
SHORT_HEX = 16


def short(value: Any, length: int = SHORT_HEX) -> str:
    """A long hex digest cut to ``length`` characters with an ellipsis (the full value is kept in
    the element's title by the templates)."""
    text = "" if value is None else str(value)
    return text if len(text) <= length + 1 else f"{text[:length]}…"


def iso(time_us: Any) -> str:
    """A ledger time (microseconds since the epoch) in ISO 8601, UTC; empty for none."""
    return "" if time_us is None else iso_time(int(time_us))


def shards(indices: Any) -> str:
    """Shard numbers as words: ``shard 3``, ``shards 1 and 2``, ``shards 1, 2 and 5``."""
    items = [str(i) for i in indices or []]
    if not items:
        return "no shard"
    if len(items) == 1:
        return f"shard {items[0]}"
    return f"shards {', '.join(items[:-1])} and {items[-1]}"


def number(value: Any, digits: int = 3) -> str:
    """A float with ``digits`` decimals; ``n/a`` for none."""
    return "n/a" if value is None else f"{float(value):.{digits}f}"


@cache
def environment() -> Environment:
    """The template environment (built once): HTML autoescaped, undefined names an error."""
    env = Environment(
        loader=PackageLoader("prosima.service.portal", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(short=short, iso=iso, shards=shards, number=number)
    return env


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The page ``template`` filled with ``context``, with the portal's headers."""
    text = environment().get_template(template).render(**context)
    return HTMLResponse(text, status_code=status_code, headers=PAGE_HEADERS)


def static_file(name: str) -> Response:
    """One of the portal's own static files (``STATIC_TYPES``); ``NotFound`` for any other name."""
    media_type = STATIC_TYPES.get(name)
    if media_type is None:
        raise NotFound(f"the portal has no file {name!r}")
    body = files("prosima.service.portal").joinpath("static", name).read_bytes()
    return Response(body, media_type=media_type, headers=STATIC_HEADERS)
