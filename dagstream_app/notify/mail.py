"""A gate's email, text and HTML, sent through Django's mail settings (``EMAIL_*``)."""

from __future__ import annotations

from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from dagstream_app.markup import markdown_html
from dagstream_app.models import Notification
from dagstream_app.notify.content import message_context, summary

__all__ = ["send_email"]


def send_email(row: Notification) -> None:
    """Send ``row``'s mail to its address; raises what the mail backend raises."""
    context = message_context(row)
    text = render_to_string("dagstream_app/mail/gate.txt", context)
    html = render_to_string(
        "dagstream_app/mail/gate.html", {**context, "body_html": markdown_html(context["body"])}
    )
    message = EmailMultiAlternatives(summary(context), text, to=[row.target])
    message.attach_alternative(html, "text/html")
    message.send()
