"""What a socket's client may cost the server: frames, and replays.

* :class:`FrameGate`: every client frame passes it before anything reads it. Past
  ``RATE_LIMIT_PER_SECOND`` (bursts of ``RATE_LIMIT_BURST``) frames are dropped
  unread; the first of each such spell is answered (``rate_limited``), the rest
  cost nothing; a client that keeps on past another burst's worth is a flooder,
  and its socket is closed (4008).
* :func:`replay_budget`: replays and snapshots are paid from a budget of
  ``REPLAY_BUDGET_PER_MINUTE`` events per credential, shared by every socket of
  that credential in this process: reconnecting gets no fresh budget.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Hashable

from dagstream_app.conf import config

__all__ = ["FrameGate", "FrameVerdict", "TokenBucket", "replay_budget"]


class TokenBucket:
    """A budget of ``rate`` units a second, holding at most ``burst``.

    :meth:`charge` may take it below zero: a debt, repaid at ``rate`` before it
    lets anything through again.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def _refill(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return self.tokens

    def take(self, cost: float = 1) -> bool:
        """Take ``cost`` if the bucket holds it; False (and nothing taken) if not."""
        if self._refill() < cost:
            return False
        self.tokens -= cost
        return True

    def charge(self, cost: float) -> None:
        """Take ``cost`` whatever the bucket holds: what it lacks becomes a debt."""
        self._refill()
        self.tokens -= cost

    def spent(self) -> bool:
        """Is nothing left (or a debt)?"""
        return self._refill() <= 0

    def full(self) -> bool:
        """Has the bucket refilled to its capacity (as if never used)?"""
        return self._refill() >= self.capacity


class FrameVerdict(enum.Enum):
    """What becomes of one client frame."""

    READ = enum.auto()  # within the rate: read and handled
    REFUSED = enum.auto()  # the first past the rate in a spell: dropped unread, answered
    DROPPED = enum.auto()  # past the rate again: dropped unread, unanswered
    FLOOD = enum.auto()  # past the rate by more than a burst: the socket is closed


class FrameGate:
    """The rate and flood bound of one socket's client frames (see the module's docstring)."""

    def __init__(self) -> None:
        settings = config()
        rate, burst = settings.rate_limit_per_second, settings.rate_limit_burst
        self.frames = TokenBucket(rate, burst)
        # Frames past the rate a client may send (a burst's worth, refilled at the
        # rate) before it counts as a flooder: one that heeds rate_limited never
        # comes near it; one that ignores it is closed after a bounded few.
        self.excess = TokenBucket(rate, burst)
        self.throttled = False

    def admit(self) -> FrameVerdict:
        if self.frames.take():
            self.throttled = False
            return FrameVerdict.READ
        if not self.excess.take():
            return FrameVerdict.FLOOD
        if self.throttled:
            return FrameVerdict.DROPPED
        self.throttled = True
        return FrameVerdict.REFUSED


class _Budgets:
    """The replay budget of each credential in this process; idle ones are forgotten."""

    SWEEP_SECONDS = 60.0

    def __init__(self) -> None:
        self.buckets: dict[Hashable, TokenBucket] = {}
        self.swept = time.monotonic()

    def of(self, credential: Hashable) -> TokenBucket:
        budget = config().replay_budget_per_minute
        now = time.monotonic()
        if now - self.swept > self.SWEEP_SECONDS:
            # A bucket that has refilled is as good as a new one: drop it. What a
            # credential spent less than a minute ago stays remembered.
            self.swept = now
            self.buckets = {key: b for key, b in self.buckets.items() if not b.full()}
        bucket = self.buckets.get(credential)
        if bucket is None or bucket.capacity != budget:  # new, or the setting changed
            bucket = self.buckets[credential] = TokenBucket(budget / 60, budget)
        return bucket


_budgets = _Budgets()


def replay_budget(credential: Hashable) -> TokenBucket:
    """The replay budget ``credential``'s sockets in this process share."""
    return _budgets.of(credential)
