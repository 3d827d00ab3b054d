"""Create an API token for a user: ``manage.py dagstream_token <username>``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dagstream_app import tokens


class Command(BaseCommand):
    help = "Create a bearer token for WebSocket clients; the key is printed once, last."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="A label to recognise the token by.")

    def handle(self, *args: Any, username: str, name: str, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model.objects.get(**{user_model.USERNAME_FIELD: username})
        except user_model.DoesNotExist:
            raise CommandError(f"No user named {username!r}.") from None
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive.")
        token, key = tokens.create_api_token(user, name)
        self.stdout.write(f"Created token {token.prefix}… for {username}; it is shown only once.")
        self.stdout.write(f"Authorization: Bearer {key}")
