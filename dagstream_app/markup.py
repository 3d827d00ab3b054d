"""Gate bodies as safe Markdown: CommonMark with raw HTML escaped, never run.

Engines write a gate's ``body`` for people: headings, lists, emphasis, code,
links. Raw HTML in it is shown as text, images are shown as their alt text (no
request leaves the page), and links go only to absolute ``http``, ``https`` and
``mailto`` addresses (any other link stays text), with ``rel="noopener noreferrer"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})


def _safe_link(url: str) -> bool:
    scheme = urlsplit(url.strip()).scheme.lower()
    return scheme in SAFE_SCHEMES


def _link_open(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: Any
) -> str:
    tokens[idx].attrSet("rel", "noopener noreferrer")
    return renderer.renderToken(tokens, idx, options, env)


def _image(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: Any
) -> str:
    # No remote images in a gate card (no request leaves the page): the alt text.
    alt = renderer.renderInlineAsText(tokens[idx].children or [], options, env)
    return escapeHtml(alt)


@cache
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.validateLink = _safe_link  # type: ignore[method-assign]
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("image", _image)
    return md


def markdown_html(text: str) -> SafeString:
    """``text`` (Markdown) as HTML that is safe to put in a page."""
    html: str = _markdown().render(text)  # html=False: raw HTML comes out escaped
    return mark_safe(html)
