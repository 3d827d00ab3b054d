"""What the ASGI server holds for one socket, where it lets us see: bytes not yet written.

ASGI gives an application no back-pressure on a WebSocket: daphne accepts every
``send`` and buffers what the peer does not read, without bound. To bound it,
dagstream finds daphne's connection behind the ``send`` callable (through the
wrappers Channels' middleware puts around it) and reads its Twisted transport's
buffer. Servers that apply back-pressure themselves (uvicorn's ``send`` waits
while its buffer is full) need none of this; for them, and for servers this
module does not know, :func:`unsent_bytes` returns None.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

__all__ = ["GONE", "abort", "unsent_bytes"]


def _gone() -> tuple[type[BaseException], ...]:
    try:
        from autobahn.exception import Disconnected  # daphne's, when the peer has left
    except ImportError:  # pragma: no cover - not on daphne
        return ()
    return (Disconnected,)


# What a server's send raises once the client has gone.
GONE: tuple[type[BaseException], ...] = _gone()


def _connection(send: Any) -> Any:
    """daphne's protocol object behind ``send``, or None."""
    for _ in range(10):  # a few wrappers deep at most
        if isinstance(send, functools.partial):
            return send.args[0] if send.args and hasattr(send.args[0], "transport") else None
        owner = getattr(send, "__self__", None)
        send = getattr(owner, "real_send", None)  # channels' session wrapper
        if send is None:
            return None
    return None


def unsent_bytes(send: Any) -> Callable[[], int] | None:
    """A function returning how many bytes wait to go out on ``send``'s socket, or None."""
    connection = _connection(send)
    if connection is None or not hasattr(connection.transport, "dataBuffer"):
        return None
    sock = connection.transport

    def unsent() -> int:
        queued = getattr(connection, "send_queue", ())
        return (
            len(sock.dataBuffer)
            - getattr(sock, "offset", 0)
            + getattr(sock, "_tempDataLen", 0)
            + sum(len(data) for data, _ in queued)
        )

    return unsent


def abort(send: Any) -> None:
    """Drop ``send``'s connection at once, with what it still holds (when it can tell)."""
    connection = _connection(send)
    sock = getattr(connection, "transport", None)
    if sock is not None and hasattr(sock, "abortConnection"):
        sock.abortConnection()
