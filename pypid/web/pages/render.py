"""Rendering pages: Jinja2 with autoescaping everywhere, and package descriptions made
safe with readme_renderer (warehouse's library, which sanitizes with nh3).

Jinja2 rather than twisted.web.template: its autoescaping covers every template without
exception, its inheritance gives every page the same frame, and a template compiles to
Python once, so rendering a cached page costs microseconds; the listing of a project's
packages (the costly part) is rendered once per change and kept as a fragment.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from twisted.web.iweb import IRequest

_ENVIRONMENT = Environment(
    loader=PackageLoader("pypid.web.pages", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True, lstrip_blocks=True)

# No script may run on these pages (they have none); styles are inline.
_CSP = (b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
        b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def page(template: str, **context: Any) -> bytes:
    return _ENVIRONMENT.get_template(template).render(**context).encode("utf-8")


def security_headers(request: IRequest) -> None:
    request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
    request.setHeader(b"Content-Security-Policy", _CSP)
    request.setHeader(b"X-Frame-Options", b"DENY")
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    request.setHeader(b"Referrer-Policy", b"same-origin")
    request.setHeader(b"Cache-Control", b"private, no-store")


def description(text: str, content_type: str | None) -> str:
    """A package's description as safe HTML: Markdown, reStructuredText or plain text, as
    its Description-Content-Type says (PEP 566), rendered and sanitized by readme_renderer
    (worker thread: docutils is slow)."""
    import readme_renderer.markdown
    import readme_renderer.rst
    import readme_renderer.txt

    kind = (content_type or "text/x-rst").split(";")[0].strip().lower()
    rendered = None
    if kind == "text/markdown":
        rendered = readme_renderer.markdown.render(text)
    elif kind == "text/x-rst":
        rendered = readme_renderer.rst.render(text)
    if rendered is None:
        rendered = readme_renderer.txt.render(text)
    return str(rendered)


__all__ = ["Markup", "description", "page", "security_headers"]
