"""Permission hooks the tests point DAGSTREAM["PERMISSION_HOOK"] at."""

from __future__ import annotations

from typing import Any


def hide_secret_dags(user: Any, action: str, dag: Any) -> bool:
    """Nobody sees DAGs named "secret"; a hook that also refuses when asked about no DAG."""
    return dag is not None and dag.name != "secret"
