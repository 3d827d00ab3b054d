"""Template helpers of the dashboard: icons and money."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from dagstream_app import render
from dagstream_app.money import format_money

register = template.Library()


@register.simple_tag
def icon(name: str, cls: str = "icon") -> SafeString:
    """An inline SVG icon from the page's sprite (``dagstream_app/icons.html``)."""
    return format_html(
        '<svg class="{}" aria-hidden="true" focusable="false"><use href="#ds-i-{}"/></svg>',
        cls,
        name,
    )


@register.filter
def money(value: Any) -> str:
    """An amount as every page shows it (:func:`dagstream_app.money.format_money`)."""
    return format_money(None if value is None else float(value))


@register.filter
def status_icon(status: str) -> str:
    return render.STATUS_ICONS.get(status, "pending")
