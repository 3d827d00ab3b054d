"""Template helpers of the dashboard: icons, money and status labels."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from dagstream_app import render
from dagstream_app.money import format_money
from dagstream_app.vocabulary import status_label as label_of

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
def status_label(status: str) -> str:
    """A status as people read it, in the active language (``Running``)."""
    return label_of(status)


@register.filter
def status_icon(status: str) -> str:
    return render.STATUS_ICONS.get(status, "pending")


@register.simple_tag(takes_context=True)
def gate_inbox_link(context: template.Context) -> SafeString:
    """The navigation's link to the gate inbox with its count, for a person who may decide
    gates (nothing for anyone else): ``{% gate_inbox_link %}`` in a base template."""
    from django.urls import reverse
    from django.utils.translation import gettext as _

    from dagstream_app.inbox import waiting_count
    from dagstream_app.permissions import allowed
    from dagstream_app.render.inbox import inbox_count_html

    user = context.get("user")
    if not allowed(user, "decide"):
        return SafeString("")
    return format_html(
        '<a href="{}" class="nav-gates">{} {}</a>',
        reverse("dagstream:gate_inbox"),
        _("Gates"),
        inbox_count_html(waiting_count(user)),
    )
