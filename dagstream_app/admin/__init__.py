"""Django admin for dagstream: review gates, control executions, read the event log.

Nothing here writes models: decisions go through :func:`services.decide_gate`,
pause / resume / cancel (and ending a run whose engine is gone) through
:func:`services.control`, deleting a finished run through
:func:`services.delete_dag`, token revocation through
:func:`tokens.revoke_api_token`. So an admin action is checked, recorded,
broadcast and delivered to the engine exactly like the same command from a
WebSocket, and needs the same permissions: ``view_dag`` to see, ``decide_gate``
to decide, ``control_dag`` to pause / resume / cancel, ``delete_dag`` to delete
a finished run (then the ``PERMISSION_HOOK`` per DAG). Every other edit is refused.

- :mod:`.base`: what every dagstream ModelAdmin shares (read-only, permissions,
  the runs a user may view, bulk-action reports);
- :mod:`.dags`: runs, with their nodes, edges, gates and event log;
- :mod:`.gates`: human gates and their decisions;
- :mod:`.api_tokens`: API tokens, listed and revoked.

Django's autodiscovery imports this package; importing the modules registers
their ModelAdmins.
"""

from __future__ import annotations

from dagstream_app.admin.api_tokens import ApiTokenAdmin
from dagstream_app.admin.dags import DagAdmin
from dagstream_app.admin.gates import GateAdmin

__all__ = ["ApiTokenAdmin", "DagAdmin", "GateAdmin"]
