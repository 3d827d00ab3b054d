"""Delivery benchmark: one DAG's events to 100 WebSocket clients, beside a raw relay.

Run: ``make bench`` (or ``.venv/bin/python bench/bench_delivery.py``). Needs Redis on
127.0.0.1:6379. Loopback only; every run is bounded in events and time.

An engine in this process writes ``node_state`` events through the engine API
(``stream.nowait``, paced to the rate) into a throwaway SQLite file; the server
(daphne, or uvicorn for the same ASGI app) runs the example project on Redis;
client processes hold the WebSockets, check every seq arrives once and in order
(reconnecting with ``?last_seq=`` on 4013, as the clients do), and record when.
The baseline is a raw ``websockets`` server relaying Redis pub/sub frames of the
same size, fed at the same rate from the same engine loop.

For each mode and rate it prints: lost / duplicated events, latency from commit
(the flush's return) to the client (p50 / p99 / max), events delivered per second
(events x clients / time), and server CPU per delivered event — then the ratios
the event-storm issue asks for. ``BENCH_CLIENTS`` (100), ``BENCH_SECONDS`` (8) and
``BENCH_FLAT_EVENTS`` (8000) size it; ``BENCH_SERVERS`` (relay,daphne,uvicorn),
``BENCH_MODES`` (plain,batch,html) and ``BENCH_RATES`` (200,1000,flat) narrow a run to
the rows being worked on (a narrowed run prints no targets). The soak (500
connections for a minute) is ``bench_soak.py``, built on this file's helpers.
Compare ratios, not absolute numbers: the machines are shared and noisy.
"""

from __future__ import annotations

import array
import asyncio
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "100"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
FLAT_EVENTS = int(os.environ.get("BENCH_FLAT_EVENTS", "8000"))
# Narrow a run while working on one path (the targets are printed for a whole run only).
SERVERS = os.environ.get("BENCH_SERVERS", "relay,daphne,uvicorn").split(",")
MODES = os.environ.get("BENCH_MODES", "plain,batch,html").split(",")
RATES = [
    None if rate == "flat" else float(rate)
    for rate in os.environ.get("BENCH_RATES", "200,1000,flat").split(",")
]
CLIENT_PROCESSES = 2
NODES = [f"n{i}" for i in range(100)]
SEQ_MARKER = re.compile(rb'id="ds-seq" data-seq="(\d+)"')
TERMINAL = {4001, 4003, 4004}


# ------------------------------------------------------------------ clients


async def _client(
    url: str, origin: str, token: str, last: int, mode: str, out: Any, ready: asyncio.Event
) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    received = array.array("d", [0.0]) * (last + 1)
    dupes = disorder = 0
    seen = 1 if mode == "relay" else 0  # a relay has no snapshot: it starts at seq 2
    reconnects = 0
    headers = {"Authorization": f"Bearer {token}"}
    try:
        while seen < last:
            query = f"last_seq={seen}" if seen and mode != "relay" else ""
            if mode == "batch":
                query = "&".join(q for q in (query, "batch=1") if q)
            target = url + ("?" + query if query else "")
            try:
                async with connect(
                    target,
                    origin=origin,  # type: ignore[arg-type]
                    additional_headers=headers,
                    max_size=2**26,
                ) as ws:
                    if mode == "relay":
                        ready.set()
                    async for data in ws:
                        now = time.time()
                        ready.set()
                        if mode == "html":
                            found = SEQ_MARKER.findall(
                                data if isinstance(data, bytes) else data.encode()
                            )
                            seqs = [int(found[-1])] if found else []
                            if seqs and seqs[0] > seen:
                                for seq in range(seen + 1, min(seqs[0], last) + 1):
                                    received[seq] = now
                                seen = seqs[0]
                            if seen >= last:
                                break
                            continue
                        message = json.loads(data)
                        for item in message if isinstance(message, list) else [message]:
                            kind = item.get("type")
                            if kind == "snapshot":
                                # What it stands in for is covered, not lost
                                # (a resume too far behind gets a snapshot).
                                for seq in range(seen + 1, min(item["seq"], last) + 1):
                                    received[seq] = received[seq] or -now
                                seen = max(seen, item["seq"])
                                continue
                            seq = item.get("seq")
                            if seq is None:
                                continue
                            if seq <= seen:
                                dupes += 1
                            elif seq != seen + 1:
                                disorder += 1
                                seen = seq
                            else:
                                seen = seq
                            if seq <= last and not received[seq]:
                                received[seq] = now
                        if seen >= last:
                            break
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                if code in TERMINAL:
                    break
                reconnects += 1
    finally:  # also when the client process gives up: what arrived counts
        out.append((received, dupes, disorder, reconnects))


def raise_fd_limit(wanted: int) -> None:
    """Let this process (and those it starts) hold ``wanted`` descriptors, within the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(
            resource.RLIMIT_NOFILE,
            (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard),
        )


async def _clients_main(args: list[str]) -> None:
    """``count`` clients; results to ``path`` once all are done or ``timeout`` s have passed."""
    url, origin, token, last, mode, count, path, *rest = args
    timeout = float(rest[0]) if rest else 600.0
    raise_fd_limit(int(count) + 256)
    results: list[Any] = []
    readies = [asyncio.Event() for _ in range(int(count))]
    tasks = [
        asyncio.ensure_future(_client(url, origin, token, int(last), mode, results, ready))
        for ready in readies
    ]
    # Ready once every client has its snapshot (or, on the relay, its connection).
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
    print("ready", flush=True)
    _, late = await asyncio.wait(tasks, timeout=timeout)
    for task in late:  # given up on: what they got is still written (and the rest lost)
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    with open(path, "wb") as file:
        for received, dupes, disorder, reconnects in results:
            file.write(json.dumps([dupes, disorder, reconnects]).encode() + b"\n")
            file.write(received.tobytes())
    print(f"cpu {time.process_time():.3f}", flush=True)  # this process's CPU seconds


def _spawn_clients(
    server: Proc,
    path: str,
    token: str,
    last: int,
    mode: str,
    clients: int,
    files: list[Path],
    timeout: float = 600.0,
) -> list[subprocess.Popen[str]]:
    """``clients`` clients of ``path`` spread over one process per file; once all are ready.

    Each process writes its clients' results to its file (see :func:`_read_results`),
    after ``last`` or ``timeout`` seconds from ready, then prints ``cpu <seconds>``.
    """
    procs = []
    for i, file in enumerate(files):
        count = clients // len(files) + (i < clients % len(files))
        command = [sys.executable, __file__, "--clients", f"ws://127.0.0.1:{server.port}{path}"]
        command += [f"http://127.0.0.1:{server.port}", token, str(last), mode, str(count)]
        command += [str(file), str(timeout)]
        procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return procs


def _read_results(path: Path, last: int) -> list[tuple[array.array[float], int, int, int]]:
    out = []
    size = (last + 1) * 8
    with open(path, "rb") as file:
        while header := file.readline():
            dupes, disorder, reconnects = json.loads(header)
            received = array.array("d")
            received.frombytes(file.read(size))
            out.append((received, dupes, disorder, reconnects))
    return out


# -------------------------------------------------------------- raw relay


async def _relay_main(args: list[str]) -> None:
    """The baseline: a bare websockets server relaying a Redis pub/sub channel.

    Without permessage-deflate (which websockets offers by default and daphne does
    not), so that both servers send the same bytes.
    """
    import redis.asyncio as aioredis
    from websockets.asyncio.server import broadcast, serve

    (channel,) = args
    connected: set[Any] = set()

    async def handler(ws: Any) -> None:
        connected.add(ws)
        try:
            await ws.wait_closed()
        finally:
            connected.discard(ws)

    async with serve(handler, "127.0.0.1", 0, max_size=2**20, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        client = aioredis.Redis.from_url(REDIS_URL)
        pubsub = client.pubsub()
        await pubsub.subscribe(channel)
        print(f"port {port}", flush=True)
        async for message in pubsub.listen():
            if message["type"] == "message":
                broadcast(connected, message["data"].decode())


# ----------------------------------------------------------------- servers


@dataclass
class Proc:
    process: subprocess.Popen[str]
    port: int

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server(kind: str, env: dict[str, str]) -> Proc:
    port = _free_port()
    if kind == "daphne":
        command = ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "project.asgi:application"]
    else:
        command = [
            "-m",
            "uvicorn",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--ws",
            "websockets",
            "--log-level",
            "warning",
            "project.asgi:application",
        ]
    process = subprocess.Popen(
        [sys.executable, *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return Proc(process, port)
        time.sleep(0.1)  # bounded wait for the server to listen
    process.kill()
    raise RuntimeError(f"{kind} did not start")


def _relay() -> tuple[Proc, str]:
    """The raw relay in a process of its own, and the pub/sub channel it relays."""
    channel = f"bench-relay-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen(
        [sys.executable, __file__, "--relay", channel],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    return Proc(process, int(line.split()[1])), channel


# ------------------------------------------------------------------ engine


@dataclass
class Tally:
    """What the clients of one run received, added up."""

    lost: int = 0
    covered: int = 0  # stood in for by a snapshot after a resume too far behind
    dupes: int = 0
    disorder: int = 0
    reconnects: int = 0
    last_arrival: float = 0.0
    latencies: list[float] = field(default_factory=list)  # ms from commit


def _tally(files: list[Path], first: int, last: int, commits: dict[int, float]) -> Tally:
    tally = Tally()
    for file in files:
        for received, dupes, disorder, reconnects in _read_results(file, last):
            tally.dupes += dupes
            tally.disorder += disorder
            tally.reconnects += reconnects
            for seq in range(first, last + 1):
                at = received[seq]
                if not at:
                    tally.lost += 1
                elif at < 0:
                    tally.covered += 1
                else:
                    tally.last_arrival = max(tally.last_arrival, at)
                    if seq in commits:
                        tally.latencies.append(max(0.0, at - commits[seq]) * 1000)
    return tally


@dataclass
class Row:
    mode: str
    rate: str
    lost: int
    covered: int
    dupes: int
    p50: float
    p99: float
    worst: float
    delivered: float
    cpu_us: float
    reconnects: int


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values.sort()
    return values[min(len(values) - 1, int(q * len(values)))]


async def _emit(dag_id: str, rate: float | None, count: int, commits: dict[int, float]) -> None:
    """``count`` node_state reports at ``rate`` a second (None: flat out), noting commits."""
    from dagstream_app.engine import BufferFull, DagStream

    stream = await DagStream.open(dag_id)
    start = time.perf_counter()
    for i in range(count):
        if rate is not None:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the engine to the rate
        try:
            stream.nowait.node_state(NODES[i % 100], "running", metrics={"i": i})
        except BufferFull:
            await stream.flush()
            stream.nowait.node_state(NODES[i % 100], "running", metrics={"i": i})
        if rate is None and i % 200 == 199:
            await asyncio.sleep(0)
    await stream.close()


async def _emit_relay(
    channel: str, rate: float | None, count: int, commits: dict[int, float]
) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    start = time.perf_counter()
    for i in range(count):
        seq = i + 2
        if rate is not None:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the engine to the rate
        frame = json.dumps(
            {
                "type": "node_state",
                "dag_id": "relay",
                "seq": seq,
                "ts": "2026-12-01T00:00:00.000Z",
                "node_id": NODES[i % 100],
                "status": "running",
                "metrics": {"i": i},
            }
        )
        commits[seq] = time.time()
        await client.publish(channel, frame)
    await client.aclose()


async def _run(
    mode: str, rate: float | None, server: Proc, token: str, folder: Path, relay_channel: str = ""
) -> Row:
    from channels.db import database_sync_to_async

    from dagstream_app import services

    count = FLAT_EVENTS if rate is None else int(rate * SECONDS)
    dag_id = f"d-{uuid.uuid4().hex[:8]}"
    if mode != "relay":
        await database_sync_to_async(services.create_dag)(dag_id, nodes=NODES)
        path = f"/ws/dags/{dag_id}/" + ("html/" if mode == "html" else "")
        first = 2
    else:
        path, first = "/", 2
    last = first + count - 1
    files = [folder / f"{mode}-{rate}-{i}.bin" for i in range(CLIENT_PROCESSES)]
    procs = _spawn_clients(server, path, token, last, mode, CLIENTS, files)
    commits: dict[int, float] = {}
    cpu = server.cpu_seconds()
    started = time.time()
    if mode == "relay":
        await _emit_relay(relay_channel, rate, count, commits)
    else:
        _track_commits(commits)
        await _emit(dag_id, rate, count, commits)
    for proc in procs:
        await asyncio.to_thread(proc.wait, 600)
    cpu = server.cpu_seconds() - cpu
    tally = _tally(files, first, last, commits)
    latencies = tally.latencies
    elapsed = max(tally.last_arrival, started) - started
    delivered = count * CLIENTS / elapsed if elapsed > 0 else float("nan")
    return Row(
        mode=mode,
        rate="flat out" if rate is None else f"{rate:.0f}/s",
        lost=tally.lost,
        covered=tally.covered,
        dupes=tally.dupes,
        p50=_percentile(list(latencies), 0.50),
        p99=_percentile(list(latencies), 0.99),
        worst=max(latencies) if latencies else float("nan"),
        delivered=delivered,
        cpu_us=cpu / (count * CLIENTS) * 1e6,
        reconnects=tally.reconnects,
    )


_tracked = False


def _track_commits(commits: dict[int, float]) -> None:
    """Note when each seq is committed: the moment services.apply returns."""
    global _tracked, _commits
    _commits = commits
    if _tracked:
        return
    from dagstream_app import services

    real = services.apply

    def apply(*args: Any, **kwargs: Any) -> Any:
        flushed = real(*args, **kwargs)
        now = time.time()
        for result in flushed.results:
            if isinstance(result, int):
                _commits[result] = now
        return flushed

    services.apply = apply
    _tracked = True


_commits: dict[int, float] = {}


def _setup(folder: Path) -> dict[str, str]:
    prefix = f"bench{os.getpid()}"
    env = {
        **{k: v for k, v in os.environ.items() if k != "DAGSTREAM_JSON"},
        "DATABASE_URL": f"sqlite:///{folder / 'delivery.sqlite3'}",
        "REDIS_URL": REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DAGSTREAM_REDIS_PREFIX": prefix,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return env


def _token() -> str:
    from django.contrib.auth.models import Permission, User

    from dagstream_app import tokens

    user = User.objects.create_user(f"bench-{uuid.uuid4().hex[:6]}", password="bench-password")
    user.user_permissions.set(Permission.objects.filter(codename="view_dag"))
    return tokens.create_api_token(user, "bench")[1]


def _print(rows: list[Row], title: str) -> None:
    print(f"-- {title}: {CLIENTS} clients on one DAG")
    print(
        f"   {'mode':<12}{'rate':>10}{'lost':>7}{'snap':>8}{'dup':>5}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'events/s out':>14}{'CPU us/ev':>11}{'reconn':>8}"
    )
    for r in rows:
        print(
            f"   {r.mode:<12}{r.rate:>10}{r.lost:>7}{r.covered:>8}{r.dupes:>5}"
            f"{r.p50:>9.1f}{r.p99:>9.1f}"
            f"{r.worst:>9.1f}{r.delivered:>14.0f}{r.cpu_us:>11.1f}{r.reconnects:>8}",
            flush=True,
        )


async def main() -> int:
    folder = Path(tempfile.mkdtemp())
    env = await asyncio.to_thread(_setup, folder)
    from channels.db import database_sync_to_async

    token = await database_sync_to_async(_token)()
    rates: list[float | None] = RATES
    results: dict[str, list[Row]] = {}
    if "relay" in SERVERS:
        relay, channel = _relay()
        try:
            results["relay"] = [
                await _run("relay", rate, relay, token, folder, channel) for rate in rates
            ]
        finally:
            relay.stop()
        _print(results["relay"], "raw websockets relay of Redis pub/sub (baseline)")
    kinds = [kind for kind in ("daphne", "uvicorn") if kind in SERVERS]
    for kind in kinds:
        server = _server(kind, env)
        try:
            rows = []
            for mode in MODES:
                for rate in rates:
                    rows.append(await _run(mode, rate, server, token, folder))
            results[kind] = rows
        finally:
            server.stop()
        _print(results[kind], f"dagstream on {kind}")
    if "relay" not in results or any(len(results[kind]) < 9 for kind in kinds):
        return 0  # a narrowed run: no targets
    relay_flat = results["relay"][2].delivered
    for kind in kinds:
        by = {(r.mode, r.rate): r for r in results[kind]}
        print(f"-- targets on {kind}:")
        checks = [
            (
                "1000/s to ?batch=1: 0 lost, 0 dup, p99 <= 100 ms",
                by[("batch", "1000/s")].lost == 0
                and by[("batch", "1000/s")].dupes == 0
                and by[("batch", "1000/s")].p99 <= 100,
                f"p99 {by[('batch', '1000/s')].p99:.1f} ms",
            ),
            (
                "200/s to plain clients: p99 <= 100 ms",
                by[("plain", "200/s")].p99 <= 100,
                f"p99 {by[('plain', '200/s')].p99:.1f} ms",
            ),
            (
                "flat out (?batch=1): delivered >= 0.5 x raw relay",
                by[("batch", "flat out")].delivered >= 0.5 * relay_flat,
                f"{by[('batch', 'flat out')].delivered / relay_flat:.2f} x",
            ),
            (
                "1000/s to HTML dashboards: p99 <= 250 ms",
                by[("html", "1000/s")].p99 <= 250,
                f"p99 {by[('html', '1000/s')].p99:.1f} ms",
            ),
            (
                "nothing lost or duplicated anywhere",
                all(r.lost == 0 and r.dupes == 0 for r in results[kind]),
                "",
            ),
        ]
        for label, ok, figure in checks:
            print(f"   {'met ' if ok else 'MISS'} {label}  {figure}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--clients"]:
        asyncio.run(_clients_main(sys.argv[2:]))
    elif sys.argv[1:2] == ["--relay"]:
        asyncio.run(_relay_main(sys.argv[2:]))
    else:
        sys.exit(asyncio.run(main()))
