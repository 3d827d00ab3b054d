"""Permission hooks the tests point DAGSTREAM["PERMISSION_HOOK"] at.

A hook is only ever asked about a real DAG (never None).
"""

from __future__ import annotations

from typing import Any

# (username, action, dag_id) of every call to ``public_only``.
calls: list[tuple[str, str, str]] = []


def hide_secret_dags(user: Any, action: str, dag: Any) -> bool:
    """Nobody sees DAGs named "secret"."""
    return bool(dag.name != "secret")


def public_only(user: Any, action: str, dag: Any) -> bool:
    """Only DAGs named "public"; records each call."""
    calls.append((user.get_username(), action, dag.dag_id))
    return bool(dag.name == "public")


def always(user: Any, action: str, dag: Any) -> bool:
    """Allows everything: a hook that could only widen access, which it must not."""
    return True


def only_prod_refused(user: Any, action: str, dag: Any) -> bool:
    """Deciding, controlling and deleting DAGs named "prod" is refused; viewing is not."""
    return action == "view" or dag.name != "prod"


def owners_only(user: Any, action: str, dag: Any) -> bool:
    """Deciding and controlling a DAG needs the user's group "<dag name>-owners"."""
    if action == "view":
        return True
    return bool(user.groups.filter(name=f"{dag.name}-owners").exists())


def deny_etl(user: Any, action: str, dag: Any) -> bool:
    """DAGs named "etl" are refused for every action."""
    return bool(dag.name != "etl")
