"""Who may view, decide, control and delete a DAG: the one place the rule is written.

Django's permission comes first (``view_dag``, ``decide_gate``, ``control_dag``,
``delete_dag``); then the optional ``DAGSTREAM["PERMISSION_HOOK"]`` narrows it per
DAG. The hook is asked only about a real DAG: where no DAG is in question (a
list page, an unknown id) Django's permission alone answers, so a hook can never
make a page render while its live socket refuses, and an unknown id tells
nothing to someone who may not view runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from dagstream_app.conf import config
from dagstream_app.errors import Forbidden, NotFound, Unauthenticated
from dagstream_app.protocol import DAG_ID_RE
from dagstream_app.vocabulary import GROUP_PREFIX, verb

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser
    from django.db.models import QuerySet

    from dagstream_app.models import Dag, Gate

__all__ = [
    "PERMISSIONS",
    "Action",
    "Actor",
    "Person",
    "Voter",
    "allowed",
    "authorize",
    "check_assigned",
    "decidable",
    "escalation_recipients",
    "gate_recipients",
    "visible",
    "visible_ids",
    "voter_of",
]

Action = Literal["view", "decide", "control", "delete"]
# Whom a rule is asked about: a page's ``request.user``, a socket's
# ``scope["user"]`` (``AnonymousUser`` when no one is signed in), or None (nobody).
Person: TypeAlias = "AbstractBaseUser | AnonymousUser"
Actor: TypeAlias = "Person | None"

PERMISSIONS: dict[Action, str] = {
    "view": "dagstream_app.view_dag",
    "decide": "dagstream_app.decide_gate",
    "control": "dagstream_app.control_dag",
    "delete": "dagstream_app.delete_dag",
}

Hook = Callable[[Any, Action, "Dag"], bool]
D = TypeVar("D", bound="Dag")
G = TypeVar("G", bound="Gate")


@lru_cache(maxsize=1)
def get_hook() -> Hook | None:
    path = config().permission_hook
    if path is None:
        return None
    hook: Hook = import_string(path) if isinstance(path, str) else path
    return hook


def allowed(user: Actor, action: Action, dag: Dag | None = None) -> bool:
    """True if ``user`` may perform ``action``: on ``dag``, or (None) on DAGs in general.

    Anonymous and inactive users never may; then Django's permission; then,
    for a real DAG only, the permission hook.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    # A user model without Django's PermissionsMixin has no has_perm: it may do nothing.
    has_perm = getattr(user, "has_perm", None)
    if not (getattr(user, "is_active", False) and has_perm and has_perm(PERMISSIONS[action])):
        return False
    if dag is None:
        return True
    hook = get_hook()
    return hook is None or bool(hook(user, action, dag))


def dashboard_perms(user: Actor, dag: Dag | None) -> tuple[bool, bool]:
    """What a dashboard offers ``user`` on ``dag``: (decide its gates, control the run)."""
    return allowed(user, "decide", dag), allowed(user, "control", dag)


def visible(user: Actor, dags: QuerySet[Dag]) -> QuerySet[Dag] | list[Dag]:
    """The DAGs of ``dags`` that ``user`` may view, in order.

    Without a hook that is Django's permission alone, and ``dags`` stays a
    lazy queryset; with one, the hook is asked about every DAG.
    """
    if not allowed(user, "view"):
        return dags.none()
    hook = get_hook()
    if hook is None:
        return dags
    return [dag for dag in dags if hook(user, "view", dag)]


def visible_ids(user: Actor, dag_ids: Iterable[str]) -> set[str]:
    """The ids among ``dag_ids`` of existing DAGs that ``user`` may view."""
    from dagstream_app.models import Dag

    ids = set(dag_ids)
    if not ids or not allowed(user, "view"):
        return set()
    return {dag.dag_id for dag in visible(user, Dag.objects.filter(pk__in=ids))}


def authorize(user: Actor, action: Action, dag_id: str) -> Dag:
    """The DAG ``dag_id``, if ``user`` may perform ``action`` on it; else raise a refusal.

    The checks run in this order, so an unknown id tells nothing to someone who
    may not act on DAGs at all: signed in, Django's permission, the DAG exists,
    the hook.
    """
    from dagstream_app.models import Dag

    if user is None or not getattr(user, "is_authenticated", False):
        raise Unauthenticated(_("Sign in first."))
    if not allowed(user, action):
        raise Forbidden(_("You may not %(action)s DAGs.") % {"action": verb(action)})
    dag = Dag.objects.filter(pk=dag_id).first() if DAG_ID_RE.match(dag_id) else None
    if dag is None:
        raise NotFound(_("Unknown DAG %(run)r.") % {"run": dag_id})
    if not allowed(user, action, dag):
        raise Forbidden(
            _("You may not %(action)s DAG %(run)r.") % {"action": verb(action), "run": dag_id}
        )
    return dag


def _who_may(action: Action, dag: Dag, users: QuerySet[Any], limit: int) -> list[Any]:
    """Up to ``limit`` of ``users`` who may ``action`` on ``dag`` (by :func:`allowed`)."""
    found: list[Any] = []
    for user in users.filter(is_active=True).order_by("pk").iterator():
        if allowed(user, action, dag):
            found.append(user)
            if len(found) >= limit:
                break
    return found


def _named(names: Sequence[str]) -> QuerySet[Any]:
    """The users ``names`` names: by username, or as members of ``"group:<name>"``."""
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    people = [n for n in names if not n.startswith(GROUP_PREFIX)]
    groups = [n.removeprefix(GROUP_PREFIX) for n in names if n.startswith(GROUP_PREFIX)]
    model = get_user_model()
    return model.objects.filter(
        Q(**{f"{model.USERNAME_FIELD}__in": people}) | Q(groups__name__in=groups)
    ).distinct()


def gate_recipients(gate: Gate) -> list[Any]:
    """Who is notified when ``gate`` opens: its assignees (users, and the members of
    ``"group:<name>"``) when it names any, else the people who may decide it.

    Either way, active users whom :func:`allowed` lets decide the gate's run (Django's
    ``decide_gate``, their own, a group's, or as superusers, then the hook), at most
    ``NOTIFY_MAX_RECIPIENTS`` of them, oldest accounts first.
    """
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    if gate.assignees:
        return _who_may("decide", gate.dag, _named(gate.assignees), config().notify_max_recipients)
    app, codename = PERMISSIONS["decide"].split(".")
    perm = Permission.objects.filter(content_type__app_label=app, codename=codename)
    holders = Q(is_superuser=True) | Q(user_permissions__in=perm) | Q(groups__permissions__in=perm)
    users = get_user_model().objects.filter(holders).distinct()
    return _who_may("decide", gate.dag, users, config().notify_max_recipients)


def escalation_recipients(gate: Gate) -> list[Any]:
    """Who is notified when ``gate`` waits past ``ESCALATE_AFTER_SECONDS``: the users
    and groups (``"group:<name>"``) of ``ESCALATE_TO`` who may view its run (those who
    may not decide it see it read-only)."""
    names = config().escalate_to
    limit = max(len(names), config().notify_max_recipients)
    return _who_may("view", gate.dag, _named(names), limit)


@dataclass(frozen=True)
class Voter:
    """Who a person is to a gate's ``assignees``: their username and their groups' names."""

    username: str
    groups: frozenset[str]

    @cached_property
    def names(self) -> frozenset[str]:
        """The names in a gate's ``assignees`` that name them: their username (unless it
        reads as a group's) and ``"group:<name>"`` for each of their groups."""
        own = () if self.username.startswith(GROUP_PREFIX) else (self.username,)
        return frozenset((*own, *(GROUP_PREFIX + group for group in self.groups)))

    def named_in(self, assignees: Sequence[str]) -> bool:
        """True if ``assignees`` is empty (anyone who may decide) or names them or a group
        of theirs (``"group:<name>"``): one of their :attr:`names`."""
        return not assignees or not self.names.isdisjoint(assignees)

    def voted_on(self, votes: Sequence[Mapping[str, Any]]) -> bool:
        """True if ``votes`` (a gate's, as stored) hold one of theirs."""
        return any(vote.get("voter") == self.username for vote in votes)


def voter_of(user: Actor) -> Voter | None:
    """``user`` as a gate's assignees see them (one query for their groups), or None if
    they may not decide gates at all."""
    if not allowed(user, "decide") or user is None:
        return None
    groups = getattr(user, "groups", None)
    names = frozenset(groups.values_list("name", flat=True)) if groups is not None else frozenset()
    return Voter(user.get_username(), names)


def check_assigned(voter: Voter, assignees: Sequence[str]) -> None:
    """Refuse (:class:`Forbidden`) a vote by ``voter`` on a gate that waits for
    ``assignees`` unless it names them or a group of theirs (or no one)."""
    if not voter.named_in(assignees):
        raise Forbidden(
            _("This gate waits for %(assignees)s; you are not one of them.")
            % {"assignees": ", ".join(assignees)}
        )


def decidable(user: Actor, gates: Iterable[G]) -> list[G]:
    """The gates among ``gates`` (each with its ``dag``) that ``user`` may decide: their
    run's gates (Django's permission, then the hook per run), and, where a gate names
    assignees, only if it names them or a group of theirs; not those they voted on."""
    voter = voter_of(user)
    if voter is None:
        return []
    runs: dict[str, bool] = {}
    mine = []
    for gate in gates:
        dag = gate.dag
        if dag.dag_id not in runs:
            runs[dag.dag_id] = allowed(user, "view", dag) and allowed(user, "decide", dag)
        if runs[dag.dag_id] and voter.named_in(gate.assignees) and not voter.voted_on(gate.votes):
            mine.append(gate)
    return mine
