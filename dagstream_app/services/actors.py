"""Who acts on a DAG on a person's behalf, and the check that they may.

An actor is what Django gives for the person at the other end: ``request.user``
of a page or the admin, ``scope["user"]`` of a socket (a user, or
``AnonymousUser`` when no one is signed in); or None for the system itself (a
gate's timeout default, ``manage.py dagstream_prune``), which needs no
permission where a function allows it.
"""

from __future__ import annotations

from dagstream_app.errors import Forbidden, Unauthenticated
from dagstream_app.permissions import Action, Actor, Person, authorize

__all__ = ["Actor", "Person", "authorized"]


def authorized(actor: Actor, action: Action, dag_id: str) -> Person:
    """``actor``, if they may perform ``action`` on ``dag_id``; else a refusal.

    People's actions need a signed-in user: to them, none (or an anonymous one)
    is :class:`Forbidden`, not :class:`Unauthenticated`.
    """
    try:
        authorize(actor, action, dag_id)
    except Unauthenticated as exc:
        raise Forbidden(exc.message) from None
    assert actor is not None  # authorize refuses None: no one is signed in
    return actor
