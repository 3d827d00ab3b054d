"""Permission hooks the tests point DAGSTREAM["PERMISSION_HOOK"] at."""

from __future__ import annotations

from typing import Any

# (username, action, dag_id) of every call to ``public_only``.
calls: list[tuple[str, str, str]] = []


def hide_secret_dags(user: Any, action: str, dag: Any) -> bool:
    """Nobody sees DAGs named "secret"."""
    return dag.name != "secret"


def public_only(user: Any, action: str, dag: Any) -> bool:
    """Only DAGs named "public"; records each call."""
    calls.append((user.get_username(), action, dag.dag_id))
    return bool(dag.name == "public")


def always(user: Any, action: str, dag: Any) -> bool:
    return True


def only_prod_hook(user: Any, action: str, dag: Any) -> bool:
    """Deciding, controlling and deleting DAGs named "prod" is refused; viewing is not."""
    return action == "view" or dag.name != "prod"
