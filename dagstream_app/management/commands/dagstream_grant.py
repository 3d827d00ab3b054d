"""Give a user or a group dagstream's permissions: ``manage.py dagstream_grant <name>``.

``--watch``, ``--decide`` and ``--control`` name the permissions (``view_dag``,
``decide_gate``, ``control_dag``, see :data:`dagstream_app.permissions.PERMISSIONS`);
with none of them, all three. ``--group`` grants to a group instead of a user.
``--create`` makes the user (asking for a password: at the terminal, or one line on
standard input) or the group when there is none by that name. Running it again
changes nothing: a permission already held stays held, and nothing is taken away.
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dagstream_app.permissions import PERMISSIONS, Action

FLAGS: dict[str, Action] = {"watch": "view", "decide": "decide", "control": "control"}


class Command(BaseCommand):
    help = (
        "Grant a user (or, with --group, a group) dagstream's watch, decide and control "
        "permissions (all three unless --watch, --decide or --control name some)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The username (or the group's name with --group).")
        parser.add_argument("--group", action="store_true", help="NAME is a group.")
        parser.add_argument(
            "--create",
            action="store_true",
            help="Create the user (asking for a password) or the group if it does not exist.",
        )
        for flag, action in FLAGS.items():
            parser.add_argument(
                f"--{flag}", action="store_true", help=f"Grant {PERMISSIONS[action]}."
            )

    def handle(self, *args: Any, name: str, group: bool, create: bool, **options: Any) -> None:
        actions = [action for flag, action in FLAGS.items() if options[flag]] or list(
            FLAGS.values()
        )
        codenames = [PERMISSIONS[action].split(".", 1)[1] for action in actions]
        permissions = list(
            Permission.objects.filter(
                content_type__app_label="dagstream_app", codename__in=codenames
            )
        )
        if len(permissions) != len(codenames):
            raise CommandError(
                "dagstream's permissions are missing: run `manage.py migrate` first."
            )
        holder = self._group(name, create) if group else self._user(name, create)
        if isinstance(holder, Group):
            holder.permissions.add(*permissions)
        else:
            holder.user_permissions.add(*permissions)
        granted = ", ".join(
            f"{PERMISSIONS[a]} ({flag})" for flag, a in FLAGS.items() if a in actions
        )
        self.stdout.write(f"{'Group' if group else 'User'} {name!r} may now: {granted}.")

    def _group(self, name: str, create: bool) -> Group:
        if create:
            group, made = Group.objects.get_or_create(name=name)
            if made:
                self.stdout.write(f"Created group {name!r}.")
            return group
        try:
            return Group.objects.get(name=name)
        except Group.DoesNotExist:
            raise CommandError(f"No group named {name!r} (--create makes it).") from None

    def _user(self, name: str, create: bool) -> Any:
        model = get_user_model()
        try:
            user = model._default_manager.get(**{model.USERNAME_FIELD: name})
        except model.DoesNotExist:
            if not create:
                raise CommandError(f"No user named {name!r} (--create makes one).") from None
            user = model(**{model.USERNAME_FIELD: name})
            password = self._password(name)
            try:
                password_validation.validate_password(password, user)
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from None
            user.set_password(password)
            user.save()
            self.stdout.write(f"Created user {name!r} (not staff: dagstream's pages only).")
            return user
        if not user.is_active:
            raise CommandError(f"User {name!r} is inactive.")
        return user

    def _password(self, name: str) -> str:
        if sys.stdin.isatty():
            password = getpass.getpass(f"Password for {name}: ")
            if getpass.getpass("Password (again): ") != password:
                raise CommandError("The passwords differ; nothing was changed.")
        else:
            password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise CommandError("An empty password; nothing was changed.")
        return password
