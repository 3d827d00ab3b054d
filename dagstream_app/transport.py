"""What the ASGI server holds for one socket, where it lets us see: bytes not yet written.

ASGI gives an application no back-pressure on a WebSocket: daphne accepts every
``send`` and buffers what the peer does not read, without bound. To bound it,
dagstream finds daphne's connection behind the ``send`` callable (through the
wrappers Channels' middleware puts around it) and reads its Twisted transport's
buffer. What is left of the largest frame being sent does not count
(:func:`unsent_bytes`): a client reading a snapshot larger than the bound at a
normal pace is not one that does not read. Servers that apply back-pressure
themselves (uvicorn's ``send`` waits while its buffer is full) need none of
this; for them, and for servers this module does not know, :func:`unsent_bytes`
returns None.

A closed connection's buffers are let go at once (:func:`wire_writer` sees to
it): autobahn's protocol object holds itself in a cycle (its ``is_closed``
Deferred's result) that only Python's cyclic collector frees, and megabytes of
unsent bytes do not make that run, so a server dropping clients mid-snapshot
held hundreds of megabytes for dead sockets.

The frames a server sends per second are what bounds it in an event storm, so
what each costs is cut here too. On daphne, a message every viewer of a process
gets is framed for the wire once (:class:`Frames`, with autobahn's
``PreparedMessage``, its own way to broadcast) and each socket's share is one
write of those bytes (:func:`wire_writer`), where daphne's ``send`` would frame
and write every message for every socket again. Elsewhere frames go through
``send``, past Channels' session wrapper, which only acts on
``http.response.start`` (:func:`frame_send`).

This reads state that daphne, autobahn and Twisted do not publish (pyproject.toml
bounds their versions to those tested). What it reads is checked once per kind of
connection, at the first socket: where something is not there as expected, a
warning says so and that kind of socket takes the public path instead. Without
autobahn's parts, frames go through daphne's ``send``; without Twisted's buffer,
they go through autobahn's ``sendData`` and a socket that does not read is not
bounded.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable, Container, Mapping, Sequence, Sized
from typing import Any

__all__ = [
    "GONE",
    "Frames",
    "abort",
    "frame_send",
    "unsent_bytes",
    "wire_writer",
]

log = logging.getLogger(__name__)


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
    send = frame_send(send)  # daphne's own: a partial of its server's handle_reply
    if (
        isinstance(send, functools.partial)
        and getattr(send.func, "__name__", None) == "handle_reply"
        and send.args
        and hasattr(send.args[0], "transport")
    ):
        return send.args[0]
    return None


def frame_send(send: Any) -> Any:
    """``send`` for ``websocket.send`` messages: past Channels' session wrappers, which
    save sessions and set cookies on ``http.response.start`` only."""
    from channels.sessions import InstanceSessionWrapper

    for _ in range(10):  # a few wrappers deep at most
        owner = getattr(send, "__self__", None)
        if not isinstance(owner, InstanceSessionWrapper):
            return send
        saves = getattr(owner, "save_message_types", None)
        inner = getattr(owner, "real_send", None)
        if not isinstance(saves, Container) or "websocket.send" in saves or inner is None:
            return send  # pragma: no cover - a Channels whose wrapper acts otherwise
        send = inner
    return send  # pragma: no cover - never this deep


# ----------------------------------------------------- the start-up checks

# What the fast path reads (with the type it expects there) and calls.
_AUTOBAHN: tuple[Mapping[str, type], tuple[str, ...]] = (
    {"state": int, "STATE_OPEN": int, "send_queue": Sized},
    ("sendData", "is_closed.addCallback"),
)
_TWISTED: tuple[Mapping[str, type], tuple[str, ...]] = (
    {
        "dataBuffer": bytes,
        "offset": int,
        "_tempDataBuffer": list,
        "_tempDataLen": int,
        "connected": int,
        "disconnecting": int,
        "disconnected": int,
    },
    ("writeSomeData", "write"),
)
_verdicts: dict[tuple[str, type, type], bool] = {}


def _unlike(
    what: str, holder: Any, expected: tuple[Mapping[str, type], tuple[str, ...]]
) -> str | None:
    values, methods = expected
    for name, kind in values.items():
        if not isinstance(getattr(holder, name, None), kind):
            return f"{what} has no {name} of type {kind.__name__}"
    for name in methods:
        owner, _, method = name.rpartition(".")
        if not callable(getattr(getattr(holder, owner, None) if owner else holder, method, None)):
            return f"{what} has no method {name}"
    return None


def autobahn_problem(connection: Any) -> str | None:
    """What daphne's (autobahn's) connection lacks of what :func:`wire_writer` uses, if anything."""
    problem = _unlike("daphne's WebSocket protocol", connection, _AUTOBAHN)
    if problem is not None or not GONE:
        return problem or "autobahn has no Disconnected"
    try:
        framed = Frames(["ok"]).wire()
    except Exception as exc:  # noqa: BLE001 - any failure: the public path
        return f"autobahn's PreparedMessage fails ({exc!r})"
    return None if framed == b"\x81\x02ok" else "autobahn's PreparedMessage frames otherwise"


def twisted_problem(connection: Any) -> str | None:
    """What the Twisted transport lacks of what is read and written past it, if anything."""
    return _unlike("Twisted's transport", connection.transport, _TWISTED)


def _holds(check: Callable[[Any], str | None], connection: Any, instead: str) -> bool:
    """Does ``check`` find nothing amiss with ``connection``? Asked once per kind of it."""
    kinds = (check.__name__, type(connection), type(connection.transport))
    holds = _verdicts.get(kinds)
    if holds is None:
        problem = check(connection)
        if problem is not None:
            log.warning("dagstream: %s; %s", problem, instead)
        holds = _verdicts[kinds] = problem is None
    return holds


def _fast(connection: Any) -> bool:
    return _holds(autobahn_problem, connection, "frames go through daphne's send")


def _direct(connection: Any) -> bool:
    return _fast(connection) and _holds(
        twisted_problem,
        connection,
        "frames go through autobahn's sendData; a socket that does not read is not bounded",
    )


# ----------------------------------------------------------------- the uses


class _InFlight:
    """What one socket's writer handed to the server, and its largest frame not yet sent.

    ``written`` counts the bytes of every write; the socket has sent all but what it
    holds, so a write ending at ``end`` (in that count) has ``end - (written - held)``
    bytes to go, of which at most ``size``, the largest frame in it, is exempt: a
    frame is what a client reads at once, and a replay written in one go is many.
    """

    __slots__ = ("end", "size", "written")

    def __init__(self) -> None:
        self.written = self.end = self.size = 0

    def waiting(self, size: int) -> None:
        """The last write, with a largest frame of ``size`` bytes, was not all sent at once."""
        if size > self.size:
            self.end, self.size = self.written, size

    def left(self, held: int) -> int:
        """What is left to send of the largest frame in flight, with ``held`` bytes unsent."""
        left = self.end - (self.written - held)
        if left <= 0:
            self.size = 0  # sent: the next message that waits may be the largest
            return 0
        return min(left, self.size)


# Per connection, while it lives (the value holds no reference to it).
_in_flight: weakref.WeakKeyDictionary[Any, _InFlight] = weakref.WeakKeyDictionary()


def _in_flight_of(connection: Any) -> _InFlight:
    found = _in_flight.get(connection)
    if found is None:
        found = _in_flight[connection] = _InFlight()
    return found


def unsent_bytes(send: Any) -> Callable[[], int] | None:
    """A function returning how many bytes wait to go out on ``send``'s socket, or None.

    What is left of the largest frame in flight (written by :func:`wire_writer`)
    does not count: the client is reading it, maybe for a while (a big snapshot),
    and is judged by what waits behind it. A client that reads nothing is still
    bounded, by that frame plus the bound on what waits.
    """
    connection = _connection(send)
    if connection is None or not _direct(connection):
        return None
    sock = connection.transport
    in_flight = _in_flight_of(connection)

    def unsent() -> int:
        held: int = (
            len(sock.dataBuffer)
            - sock.offset
            + sock._tempDataLen
            + sum(len(data) for data, _ in connection.send_queue)
        )
        return held - in_flight.left(held) if in_flight.size else held

    return unsent


def _release(connection: Any) -> None:
    """``is_closed``'s callback: let go of what a closed connection holds.

    Returning None, it replaces the Deferred's result (the protocol itself), so the
    protocol is no longer in a cycle with it and goes as soon as daphne and the
    consumer let go of it. Once Twisted has lost the connection, what it still held
    to send goes now, whoever still refers to the protocol.
    """
    sock = getattr(connection, "transport", None)
    if sock is not None and _direct(connection) and sock.disconnected:
        sock.dataBuffer, sock.offset = b"", 0
        sock._tempDataBuffer, sock._tempDataLen = [], 0


def abort(send: Any) -> None:
    """Drop ``send``'s connection at once, with what it still holds (when it can tell)."""
    connection = _connection(send)
    sock = getattr(connection, "transport", None)
    if sock is not None and hasattr(sock, "abortConnection"):
        sock.abortConnection()


def stop_reading(send: Any) -> None:
    """Read nothing more from ``send``'s client (a flooder being closed): what it
    still sends waits in the kernel instead of being parsed until the close."""
    connection = _connection(send)
    sock = getattr(connection, "transport", None)
    if sock is not None and hasattr(sock, "pauseProducing"):
        sock.pauseProducing()


CLOSE_REASON_BYTES = 123  # RFC 6455: what a close frame's reason may hold


def close_reason(text: str) -> str:
    """``text`` cut to what a close frame carries (123 bytes of UTF-8), whole characters."""
    return text.encode()[:CLOSE_REASON_BYTES].decode("utf-8", "ignore")


def close_with_reason(send: Any, code: int, reason: str) -> bool:
    """Close ``send``'s connection with ``code`` and ``reason`` when daphne is behind it:
    its ``websocket.close`` sends the code alone. False when it is not (then ASGI's
    ``websocket.close`` carries the reason, which uvicorn and hypercorn send)."""
    connection = _connection(send)
    if connection is None or not callable(getattr(connection, "sendClose", None)):
        return False
    connection.sendClose(code=code, reason=close_reason(reason))
    return True


def close_malformed_with_a_code(send: Any) -> None:
    """Have autobahn close a connection that breaks the WebSocket protocol with the
    code RFC 6455 names (1002 a protocol error, 1007 text that is not UTF-8, 1009 a
    message over daphne's size limit), rather than drop it without a close frame
    (autobahn's ``failByDrop``, a documented protocol option, on by default)."""
    connection = _connection(send)
    if isinstance(getattr(connection, "failByDrop", None), bool):
        connection.failByDrop = False


class Frames:
    """Text messages to send as they are, one WebSocket frame each.

    Every viewer of a process that is level with the stream sends the same
    messages: one :class:`Frames` serves them all, and is framed for the wire
    (for :func:`wire_writer`) once, on first use.
    """

    __slots__ = ("_wire", "largest", "texts")

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = texts
        self._wire: bytes | None = None
        self.largest = 0  # bytes of the largest frame, once framed

    def wire(self) -> bytes:
        """The messages as unmasked, uncompressed WebSocket text frames, back to back."""
        if self._wire is None:
            from autobahn.websocket.protocol import PreparedMessage

            framed = [
                PreparedMessage(
                    text.encode(), isBinary=False, applyMask=False, doNotCompress=True
                ).payloadHybi
                for text in self.texts
            ]
            self.largest = max(map(len, framed), default=0)
            self._wire = b"".join(framed)
        return self._wire


def wire_writer(send: Any) -> Callable[[Frames], None] | None:
    """A function writing :class:`Frames` to ``send``'s socket as ready-made bytes, or None
    where that cannot be done (not daphne, or not as checked). Uncompressed frames are valid on a
    connection that negotiated permessage-deflate too (daphne offers none).

    Where nothing waits to go out on the socket, the bytes go to it at once
    (Twisted's ``writeSomeData``, the call its own writes end in) and only what
    the kernel does not take is left to Twisted; Twisted would instead register
    the socket for writability, and send and unregister on the next loop turn:
    three system calls and much Python per socket per message. Otherwise they
    go through autobahn's ``sendData``, behind what waits, in order. Either way a
    socket that is no longer open raises what daphne's ``send`` would.
    """
    connection = _connection(send)
    if connection is None or not _fast(connection):
        return None
    (gone,) = GONE
    is_open = connection.STATE_OPEN
    sock = connection.transport
    direct = _direct(connection)
    in_flight = _in_flight_of(connection)
    connection.is_closed.addCallback(_release)

    def write(frames: Frames) -> None:
        if connection.state != is_open:
            raise gone("Attempt to send on a closed protocol")
        data = frames.wire()
        in_flight.written += len(data)
        if (
            direct
            and not connection.send_queue
            and not sock._tempDataLen
            and sock.offset == len(sock.dataBuffer)
            and sock.connected
            and not sock.disconnecting
        ):
            sent = sock.writeSomeData(data)
            if isinstance(sent, int) and sent >= 0:
                if sent < len(data):
                    sock.write(data[sent:])
                    in_flight.waiting(frames.largest)
                return
            # The connection is lost: Twisted finds that out on its own write.
        connection.sendData(data)
        in_flight.waiting(frames.largest)

    return write
