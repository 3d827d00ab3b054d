"""Who may view, decide and control a DAG.

Django permissions first (``view_dag``, ``decide_gate``, ``control_dag``), then
the optional ``DAGSTREAM["PERMISSION_HOOK"]`` for per-DAG rules.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from django.utils.module_loading import import_string

from dagstream_app.conf import get_config

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from dagstream_app.models import Dag

Action = Literal["view", "decide", "control"]

PERMISSIONS: dict[Action, str] = {
    "view": "dagstream_app.view_dag",
    "decide": "dagstream_app.decide_gate",
    "control": "dagstream_app.control_dag",
}

Hook = Callable[[Any, Action, "Dag | None"], bool]


@lru_cache(maxsize=1)
def get_hook() -> Hook | None:
    path = get_config()["PERMISSION_HOOK"]
    if path is None:
        return None
    hook: Hook = import_string(path) if isinstance(path, str) else path
    return hook


def has_permission(user: Any, action: Action) -> bool:
    """True if ``user`` is active and holds Django's permission for ``action`` (no hook)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return bool(getattr(user, "is_active", False) and user.has_perm(PERMISSIONS[action]))


def allowed(user: Any, action: Action, dag: Dag | None = None) -> bool:
    """True if ``user`` may perform ``action`` (on ``dag`` when given)."""
    if not has_permission(user, action):
        return False
    hook = get_hook()
    return hook is None or bool(hook(user, action, dag))


def visible(user: Any, dags: QuerySet[Dag]) -> QuerySet[Dag] | list[Dag]:
    """The DAGs of ``dags`` that ``user`` may view, in order.

    Without a hook that is Django's permission alone, and ``dags`` stays a
    lazy queryset; with one, the hook is asked about every DAG.
    """
    if get_hook() is None:
        return dags if has_permission(user, "view") else dags.none()
    return [dag for dag in dags if allowed(user, "view", dag)]
