"""Permission hooks the tests point DAGSTREAM["PERMISSION_HOOK"] at (all of them live here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagstream_app.models import Dag

# What public_only was asked, in order: (username, action, dag_id or None).
public_only_calls: list[tuple[str, str, str | None]] = []


def hide_secret_dags(user: Any, action: str, dag: Dag | None) -> bool:
    """Nobody sees DAGs named "secret"; a hook that also refuses when asked about no DAG."""
    return dag is not None and dag.name != "secret"


def public_only(user: Any, action: str, dag: Dag | None) -> bool:
    """Only DAGs named "public" (None: the check before a DAG is known); records each call."""
    public_only_calls.append((user.get_username(), action, None if dag is None else dag.dag_id))
    return dag is None or dag.name == "public"


def always(user: Any, action: str, dag: Dag | None) -> bool:
    """Allows everything: a hook that could only widen access, which it must not."""
    return True


def only_prod_refused(user: Any, action: str, dag: Dag | None) -> bool:
    """Deciding and controlling DAGs named "prod" is refused; viewing them is not."""
    return action == "view" or dag is None or dag.name != "prod"


def owners_only(user: Any, action: str, dag: Dag | None) -> bool:
    """Deciding and controlling a DAG needs the user's group "<dag name>-owners"."""
    if action == "view" or dag is None:
        return True
    return bool(user.groups.filter(name=f"{dag.name}-owners").exists())


def deny_etl(user: Any, action: str, dag: Dag | None) -> bool:
    """DAGs named "etl" are refused for every action."""
    return dag is None or dag.name != "etl"
