"""API tokens in Django admin: listed and revoked, never shown or created here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy

from dagstream_app import tokens
from dagstream_app.admin.base import NulSafeSearch
from dagstream_app.models import ApiToken

__all__ = ["ApiTokenAdmin"]


@admin.register(ApiToken)
class ApiTokenAdmin(NulSafeSearch):
    """Tokens are listed and revoked here; they are created with ``manage.py dagstream_token``.

    Only a prefix is stored beside the hash, so no key can be shown.
    """

    list_display = ("prefix_display", "name", "user", "created_at", "last_used_at")
    list_filter = ("created_at", "last_used_at")
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    fields = ("prefix_display", "name", "user", "created_at", "last_used_at")
    readonly_fields = fields

    @admin.display(description=gettext_lazy("key"), ordering="prefix")
    def prefix_display(self, token: ApiToken) -> str:
        return f"{token.prefix}…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        tokens.revoke_api_token(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            tokens.revoke_api_token(token)
