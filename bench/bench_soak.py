"""Soak benchmark: 500 WebSocket connections on one DAG, 50 events/s for a minute.

Run: ``.venv/bin/python bench/bench_soak.py`` (``make bench`` runs it too). Needs Redis
on 127.0.0.1:6379. Loopback only; bounded in events and time.

One daphne serves the example project on Redis (a throwaway SQLite file); 500 plain
JSON clients (``/ws/dags/<id>/``, no batching), spread over four client processes,
watch one DAG while an engine in this process reports 50 ``node_state`` events a
second for 60 s. The baseline, in the same run, is the raw ``websockets`` relay of
Redis pub/sub with the same clients, rate and duration, its permessage-deflate off
(daphne compresses nothing). The clients and both servers are ``bench_delivery.py``'s.

For each it prints: events lost, duplicated (a seq at or below one already seen, so
a late arrival counts here) and out of order (a seq that skips ahead), reconnects;
latency from commit to client (p50 / p99 / max); the delivery lag at the end (from
the engine's last event to the last client getting it); the server's RSS at the
start, after a 10 s warm-up, at the end and at most (sampled every 5 s), and its
drift after the warm-up. Then the dagstream / relay ratios, and met / MISS lines for
the issue's targets. It exits non-zero if an event was lost, repeated or out of
order; latency and memory misses are only printed (the machines are noisy).

``BENCH_SOAK_SECONDS`` (60), ``BENCH_SOAK_CLIENTS`` (500), ``BENCH_SOAK_RATE`` (50)
and ``BENCH_SOAK_PROCESSES`` (4, client processes) size it.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from os import environ
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_delivery as delivery  # noqa: E402

SECONDS = float(environ.get("BENCH_SOAK_SECONDS", "60"))
CLIENTS = int(environ.get("BENCH_SOAK_CLIENTS", "500"))
RATE = float(environ.get("BENCH_SOAK_RATE", "50"))
PROCESSES = int(environ.get("BENCH_SOAK_PROCESSES", "4"))
SAMPLE_SECONDS = 5.0
WARM_UP_SECONDS = 10.0
# Targets (issue #13): memory flat after the warm-up, delivery keeping up.
MAX_DRIFT_PERCENT = 10.0
MAX_END_LAG_SECONDS = 2.0
# Clients give up this long after the engine's last event (what is missing is lost).
GRACE_SECONDS = 120.0


@dataclass
class Soak:
    """What one server did for the soak's clients."""

    name: str
    lost: int
    dupes: int
    disorder: int
    reconnects: int
    p50: float
    p99: float
    worst: float
    end_lag: float  # s from the engine's last event to the last client having it
    rss: list[float]  # MB, every SAMPLE_SECONDS from the engine's start, then at the end
    server_cpu: float  # s, from the engine's start until the last client is done
    clients_cpu: float  # s, all client processes, connecting included

    @property
    def warm(self) -> float:
        return self.rss[min(int(WARM_UP_SECONDS / SAMPLE_SECONDS), len(self.rss) - 1)]

    @property
    def drift(self) -> float:
        return 100 * (self.rss[-1] - self.warm) / self.warm

    @property
    def clean(self) -> bool:
        return self.lost == self.dupes == self.disorder == 0


async def _soak(
    name: str,
    server: delivery.Proc,
    path: str,
    token: str,
    folder: Path,
    engine: Callable[[int, dict[int, float]], Awaitable[None]],
) -> Soak:
    """Clients of ``path`` on ``server`` while ``engine(count, commits)`` reports events 2.."""
    count = int(RATE * SECONDS)
    first, last = 2, count + 1
    files = [folder / f"soak-{name}-{i}.bin" for i in range(PROCESSES)]
    procs = await asyncio.to_thread(
        delivery._spawn_clients,
        server,
        path,
        token,
        last,
        "relay" if name == "relay" else "plain",
        CLIENTS,
        files,
        SECONDS + GRACE_SECONDS,
    )
    commits: dict[int, float] = {}
    samples = [server.rss_mb()]
    cpu = server.cpu_seconds()
    started = time.monotonic()
    emitting = asyncio.ensure_future(engine(count, commits))
    while not emitting.done():
        next_sample = started + SAMPLE_SECONDS * len(samples)
        await asyncio.wait({emitting}, timeout=max(0.0, next_sample - time.monotonic()))
        if time.monotonic() >= next_sample:  # the sampling interval
            samples.append(server.rss_mb())
    await emitting
    clients_cpu = 0.0
    for proc in procs:
        out, _ = await asyncio.to_thread(proc.communicate, None, SECONDS + GRACE_SECONDS + 60)
        clients_cpu += float(out.split()[-1])  # "cpu <seconds>"
    samples.append(server.rss_mb())
    cpu = server.cpu_seconds() - cpu

    tally = delivery._tally(files, first, last, commits)
    latencies = tally.latencies
    return Soak(
        name=name,
        lost=tally.lost + tally.covered,  # here a snapshot in place of events is a miss too
        dupes=tally.dupes,
        disorder=tally.disorder,
        reconnects=tally.reconnects,
        p50=delivery._percentile(latencies, 0.50),
        p99=delivery._percentile(latencies, 0.99),
        worst=max(latencies) if latencies else float("nan"),
        end_lag=max(0.0, tally.last_arrival - commits.get(last, tally.last_arrival)),
        rss=samples,
        server_cpu=cpu,
        clients_cpu=clients_cpu,
    )


def _print(runs: list[Soak]) -> None:
    print(
        f"-- soak: {CLIENTS} plain JSON clients ({PROCESSES} processes) on one DAG, "
        f"{RATE:.0f} events/s for {SECONDS:.0f} s ({int(RATE * SECONDS)} events); "
        "relay: raw websockets relay of Redis pub/sub, no compression (baseline); "
        "dagstream: daphne, Redis layer, SQLite"
    )
    print(
        f"   {'server':<11}{'lost':>6}{'dup':>5}{'order':>6}{'reconn':>7}{'p50 ms':>8}"
        f"{'p99 ms':>8}{'max ms':>8}{'end lag s':>10}   RSS MB: {'start':>5}{'warm':>6}"
        f"{'end':>6}{'max':>6}{'drift':>8}   CPU s: server  clients"
    )
    for r in runs:
        print(
            f"   {r.name:<11}{r.lost:>6}{r.dupes:>5}{r.disorder:>6}{r.reconnects:>7}"
            f"{r.p50:>8.1f}{r.p99:>8.1f}{r.worst:>8.1f}{r.end_lag:>10.2f}           "
            f"{r.rss[0]:>5.0f}{r.warm:>6.0f}{r.rss[-1]:>6.0f}{max(r.rss):>6.0f}{r.drift:>+7.1f}%"
            f"{r.server_cpu:>16.1f}{r.clients_cpu:>9.1f}"
        )


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f} x" if theirs > 0 else "n/a (relay at 0)"


async def main() -> int:
    folder = Path(tempfile.mkdtemp())
    delivery.raise_fd_limit(2 * CLIENTS + 512)  # inherited by the servers started below
    env = await asyncio.to_thread(delivery._setup, folder)
    from channels.db import database_sync_to_async

    from dagstream_app import services

    token = await database_sync_to_async(delivery._token)()
    print(f"-- machine: {Path('/proc/loadavg').read_text().split()[:3]} load (1, 5, 15 min)")

    relay, channel = delivery._relay()
    try:

        async def relay_engine(count: int, commits: dict[int, float]) -> None:
            await delivery._emit_relay(channel, RATE, count, commits)

        baseline = await _soak("relay", relay, "/", token, folder, relay_engine)
    finally:
        relay.stop()

    dag_id = f"soak-{uuid.uuid4().hex[:6]}"
    await database_sync_to_async(services.create_dag)(dag_id, nodes=delivery.NODES)
    server = delivery._server("daphne", env)
    try:

        async def engine(count: int, commits: dict[int, float]) -> None:
            delivery._track_commits(commits)
            await delivery._emit(dag_id, RATE, count, commits)

        ours = await _soak("dagstream", server, f"/ws/dags/{dag_id}/", token, folder, engine)
    finally:
        server.stop()

    _print([baseline, ours])
    print(
        f"-- dagstream / relay: p99 {_ratio(ours.p99, baseline.p99)}, "
        f"end lag {_ratio(ours.end_lag, baseline.end_lag)}"
    )
    checks = [
        (
            "every seq once, in order",
            ours.clean,
            f"{ours.lost} lost, {ours.dupes} dup, {ours.disorder} out of order",
        ),
        (
            f"server RSS drift after warm-up < {MAX_DRIFT_PERCENT:.0f} %",
            ours.drift < MAX_DRIFT_PERCENT,  # shrinking is no leak
            f"{ours.drift:+.1f} %",
        ),
        (
            f"last client done within {MAX_END_LAG_SECONDS:.0f} s of the engine",
            ours.end_lag <= MAX_END_LAG_SECONDS,
            f"{ours.end_lag:.2f} s",
        ),
    ]
    print("-- targets (dagstream):")
    for label, ok, figure in checks:
        print(f"   {'met ' if ok else 'MISS'} {label}  ({figure})", flush=True)
    return 0 if ours.clean else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
