"""Channel layer benchmark (``make bench-layers``): channels-redis' core layer
(``RedisChannelLayer``) against its pub/sub layer (``RedisPubSubChannelLayer``) for the boards'
fan-out at district scale, across processes, in the same run on the same machine.

For each layer, from the same known state (a Redis of the benchmark's own, started empty; the
alerts of earlier runs deleted; two fresh ``whistle serve`` processes started with
``WHISTLE_CHANNEL_LAYER`` set to the layer):

1. Sockets: ``--townships`` townships (default 30) × 2 boards, one board of each township on
   each serve process (so every township's group spans both processes), plus ``--big`` board
   sockets (default 1,000) on the demo township, half on each process.
2. District: a sender process (Django, the same layer) raises alerts in turn across the
   townships at ``--rate`` alerts/s per township (default 1) for ``--seconds`` (default 20) and
   broadcasts each one as the outbox does (one ``group_send`` of ``alert.raised`` after the
   other, from an event loop of its own). Each alert is timed from the moment it is handed to
   the sender's loop to the frame carrying its row on every socket of its township.
3. Burst: ``--burst`` alerts (default 300) across the townships handed over at once: the
   sender's ``group_send`` throughput, and when every socket has every row.
4. One township, 1,000 sockets: 2 alerts/s for 10 s on the demo township.
5. A serve process SIGKILLed: district load for 10 s on the survivor; what Redis holds for the
   dead process's sockets (group members, queued messages, memory) and what a ``group_send``
   costs now.
6. Redis SIGKILLed, away for ``--redis-down`` seconds (default 10: a container restart) and
   started again empty (as compose runs it: nothing on disk): which sockets the server closed
   (the board shows it is offline, and its reconnect gets the full state) and which stayed open
   through the outage (looking live, hearing nothing, and never showing what was raised
   meanwhile); then district load for 15 s: which of those left open hear pushes again.

Redis' CPU (``INFO cpu``) and commands processed (``INFO stats``), and the serve processes' CPU,
are read over each phase. The layer kept is the one with the lower p99 of the district and
1,000-socket phases, unless its failure behaviour is worse (sockets left open and deaf).

    python -m bench.layers [--townships 30] [--rate 1] [--seconds 20] [--burst 300]
                           [--big 1000] [--layers core,pubsub] [--redis-down 10]

Progress goes to stderr (``[bench]``); results to stdout, the last line being ``layers: core p99
<a> ms, pubsub p99 <b> ms on <n> sockets across <w> processes; kept <name>``. Servers' output and
Redis' log are kept in ``test-artifacts/bench-layers/``. Exit status 0 whether or not the layers
differ; 1 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.common import (
    REPO_ROOT,
    code_state,
    database_url,
    free_port,
    prepare_demo,
    progress,
    terminate_on_sigterm,
)
from bench.ingest import Child, CpuMeter

LOG_DIR = REPO_ROOT / "test-artifacts" / "bench-layers"
BIG_TOWNSHIP = "qingshui"  # the demo's township: its board is a real one
TOWNSHIP_PREFIX = "bench-layers-"
DEDUPE_PREFIX = "bench-layers:"
SERVERS = 2
CONNECT_BATCH = 25  # sockets opened at once; daphne's handshake timeout is 5 s
SETTLE_TIMEOUT = 30.0  # seconds after the last send for every frame to arrive
ROW_ID = re.compile(r'<li id="alert-(\d+)" class="alert')
SERVING = re.compile(r"serving on")
LAYERS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}

_started = time.monotonic()


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def describe(values: Sequence[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"p50 {percentile(values, 50):.0f} ms, p99 {percentile(values, 99):.0f} ms, "
        f"max {max(values):.0f} ms ({len(values)} samples)"
    )


def result(line: str) -> None:
    print(line, flush=True)


# --- Redis of our own -----------------------------------------------------------------------


class Redis:
    """redis-server on a port of its own, started empty, as compose runs it (nothing on disk),
    so it can be killed and restarted on the same address."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = root / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
                 "--save", "", "--appendonly", "no", "--dir", str(self.root),
                 "--daemonize", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.client().ping():
                    return
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start; see {self.log}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5)

    def counters(self) -> tuple[float, int]:
        """(CPU seconds used by Redis, commands processed) so far."""
        client = self.client()
        cpu = client.info("cpu")
        stats = client.info("stats")
        return (
            float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
            int(stats["total_commands_processed"]),
        )


@dataclass
class RedisUse:
    cores: float
    ops_per_second: float

    def describe(self) -> str:
        return f"Redis {self.cores:.2f} cores, {self.ops_per_second:,.0f} commands/s"


class RedisMeter:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.began = time.monotonic()
        self.start = redis.counters()

    def stop(self) -> RedisUse:
        end = self.redis.counters()
        elapsed = max(time.monotonic() - self.began, 1e-6)
        return RedisUse(
            cores=(end[0] - self.start[0]) / elapsed,
            # Less the two INFO commands of the reading itself.
            ops_per_second=(end[1] - self.start[1] - 2) / elapsed,
        )


# --- the database -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    townships: list[str]
    cookie: str  # a session of a user who may watch every board


def prepare(townships: int) -> Setup:
    """The bench database with the demo seeded, ``townships`` townships of the benchmark's own,
    a user who may watch every board (a superuser: what a district duty room would have), and
    no alert of an earlier run."""
    prepare_demo(database_url())
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from command.org.models import Township, User

    codes = []
    for n in range(1, townships + 1):
        code = f"{TOWNSHIP_PREFIX}{n:02d}"
        Township.objects.get_or_create(
            code=code, defaults={"name": f"压测镇{n:02d}", "name_en": f"Bench {n:02d}"}
        )
        codes.append(code)
    user, _ = User.objects.get_or_create(
        username="bench-layers", defaults={"is_superuser": True, "is_staff": True}
    )
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    assert store.session_key is not None
    forget_alerts()
    return Setup(townships=codes, cookie=store.session_key)


def forget_alerts() -> None:
    """Delete the alerts earlier runs and layers raised: each layer starts from the same
    boards (the demo township's own alerts are kept)."""
    from alerts.models import Alert

    Alert.objects.filter(township__code__startswith=TOWNSHIP_PREFIX).delete()
    Alert.objects.filter(dedupe_key__startswith=DEDUPE_PREFIX).delete()


# --- the sender ---------------------------------------------------------------------------------


def sender_main(env: dict[str, str], conn: Connection) -> None:
    """A process of its own, as `whistle ingest` or a web request would be: raises alerts and
    broadcasts them in order from an event loop of its own (as command.realtime's outbox
    does), timing each ``group_send``."""
    import threading

    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "command.settings")
    import django

    django.setup()
    from channels.layers import get_channel_layer

    from alerts.models import Alert, Severity
    from command.org.models import Township
    from command.realtime import board_group

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="sender-loop", daemon=True).start()
    queue: asyncio.Queue[tuple[str, dict[str, Any], float]] = asyncio.run_coroutine_threadsafe(
        _make_queue(), loop
    ).result()
    done: list[tuple[int, float, float, float, str]] = []  # id, handed, started, sent, error
    layer = get_channel_layer()

    async def drain() -> None:
        while True:
            group, event, handed = await queue.get()
            started = time.time()
            error = ""
            try:
                await asyncio.wait_for(layer.group_send(group, event), 5.0)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            done.append((event["alert_id"], handed, started, time.time(), error))

    draining = asyncio.run_coroutine_threadsafe(drain(), loop)
    ids = dict(Township.objects.values_list("code", "pk"))

    def raise_alert(code: str) -> int:
        return Alert.objects.create(
            township_id=ids[code],
            severity=Severity.MAJOR,
            source=Alert.Source.CAMERA,
            title="压测告警 bench alert",
            dedupe_key=f"{DEDUPE_PREFIX}{uuid.uuid4().hex}",
        ).pk

    def hand(code: str, alert_id: int) -> None:
        event = {"type": "alert.raised", "alert_id": alert_id, "id": uuid.uuid4().hex}
        loop.call_soon_threadsafe(queue.put_nowait, (board_group(code), event, time.time()))

    while True:
        command = conn.recv()
        if command is None:
            break
        kind, codes, rate, seconds = command
        done.clear()
        sent: list[tuple[int, str]] = []
        if kind == "paced":
            # Alerts in turn across the townships, evenly spaced at rate per township.
            interval = 1.0 / (rate * len(codes))
            count = int(rate * len(codes) * seconds)
            began = time.monotonic()
            for n in range(count):
                wait = began + n * interval - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                code = codes[n % len(codes)]
                alert_id = raise_alert(code)
                hand(code, alert_id)
                sent.append((alert_id, code))
        else:  # burst: the alerts exist first, then every broadcast is handed over at once
            count = int(rate)
            for n in range(count):
                code = codes[n % len(codes)]
                sent.append((raise_alert(code), code))
            for alert_id, code in sent:
                hand(code, alert_id)
        deadline = time.monotonic() + 60
        while len(done) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.02)
        conn.send({"sent": sent, "done": list(done)})
    draining.cancel()
    conn.close()


async def _make_queue() -> asyncio.Queue:
    return asyncio.Queue()


class Sender:
    def __init__(self, env: dict[str, str]) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=sender_main, args=(env, child), name="bench-sender", daemon=True
        )
        self.process.start()

    def run(self, kind: str, codes: list[str], rate: float, seconds: float) -> dict[str, Any]:
        self.conn.send((kind, codes, rate, seconds))
        if not self.conn.poll(seconds + 120):
            raise RuntimeError("the sender did not answer")
        return self.conn.recv()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


# --- the sockets ----------------------------------------------------------------------------


class Board:
    """One board socket, read all the time, noting when each alert's row first arrives."""

    def __init__(self, ws: Any, township: str, server: int) -> None:
        self.ws = ws
        self.township = township
        self.server = server
        self.alive = True
        self.closed_how = ""
        self.rows: dict[int, float] = {}
        self.frames = 0
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                now = time.time()
                self.frames += 1
                for found in ROW_ID.finditer(frame):
                    self.rows.setdefault(int(found[1]), now)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.closed_how = repr(exc)[:120]
        if not self.closed_how:
            code = getattr(self.ws, "close_code", None)
            self.closed_how = f"closed by the server ({code})"
        self.alive = False


async def open_boards(
    ports: list[int], cookie: str, plan: list[tuple[str, int]]
) -> tuple[list[Board], float]:
    """A board socket for each (township, server index) of ``plan``, each having received its
    full state; returns them and the seconds it took."""
    from websockets.asyncio.client import connect

    headers = {"Cookie": f"sessionid={cookie}", "Origin": "http://127.0.0.1"}
    began = time.monotonic()

    async def one(township: str, server: int) -> Board:
        ws = await connect(
            f"ws://127.0.0.1:{ports[server]}/ws/board/{township}/",
            additional_headers=headers,
            open_timeout=120,
            ping_interval=None,  # a browser does not ping
            close_timeout=2,
            max_size=None,
        )
        await asyncio.wait_for(ws.recv(), 120)  # the full state
        return Board(ws, township, server)

    boards: list[Board] = []
    for start in range(0, len(plan), CONNECT_BATCH):
        batch = plan[start : start + CONNECT_BATCH]
        boards += await asyncio.gather(*(one(t, s) for t, s in batch))
    return boards, time.monotonic() - began


@dataclass
class Delivery:
    latencies: list[float] = field(default_factory=list)  # ms, socket × alert
    per_alert_last: list[float] = field(default_factory=list)  # ms, the last socket per alert
    send_ms: list[float] = field(default_factory=list)  # ms, each group_send
    errors: list[str] = field(default_factory=list)
    missed: int = 0  # socket × alert that never arrived (live sockets only)
    expected: int = 0
    throughput: float = 0.0  # group_send/s while handing over back to back
    settle_ms: float = 0.0  # first handed → every live socket has every row
    sockets_heard: int = 0  # live sockets that got at least one of these rows
    sockets_live: int = 0

    def describe(self) -> str:
        sends = describe(self.send_ms)
        return (
            f"send → frame {describe(self.latencies)}; last socket per alert "
            f"p99 {percentile(self.per_alert_last, 99):.0f} ms; missed {self.missed} of "
            f"{self.expected}; group_send {sends}"
            + (f"; {len(self.errors)} send errors ({self.errors[0]})" if self.errors else "")
        )


async def deliver(
    sender: Sender,
    boards: list[Board],
    kind: str,
    codes: list[str],
    rate: float,
    seconds: float,
    *,
    timeout: float = SETTLE_TIMEOUT,
) -> Delivery:
    """Run one sending phase and wait (until ``timeout`` after the sender is done) for every
    live socket of each alert's township to have its row."""
    answer = await asyncio.get_running_loop().run_in_executor(
        None, sender.run, kind, codes, rate, seconds
    )
    sent: list[tuple[int, str]] = answer["sent"]
    done = {
        alert_id: (handed, started, end, err)
        for alert_id, handed, started, end, err in answer["done"]
    }
    by_township: dict[str, list[Board]] = {}
    for board in boards:
        by_township.setdefault(board.township, []).append(board)

    def outstanding() -> int:
        return sum(
            1
            for alert_id, code in sent
            for board in by_township.get(code, [])
            if board.alive and alert_id not in board.rows
        )

    deadline = time.monotonic() + timeout
    while outstanding() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    out = Delivery()
    first_handed = min((v[0] for v in done.values()), default=time.time())
    latest = first_handed
    heard: set[int] = set()
    for alert_id, code in sent:
        handed, started, end, error = done.get(alert_id, (None, None, None, "never sent"))
        if error:
            out.errors.append(error)
        if started is not None and end is not None:
            out.send_ms.append((end - started) * 1000)
        if handed is None:
            continue
        arrivals = []
        for board in by_township.get(code, []):
            if not board.alive:
                continue
            out.expected += 1
            arrived = board.rows.get(alert_id)
            if arrived is None:
                out.missed += 1
                continue
            heard.add(id(board))
            arrivals.append((arrived - handed) * 1000)
            latest = max(latest, arrived)
        out.latencies += arrivals
        if arrivals:
            out.per_alert_last.append(max(arrivals))
    ends = [v[2] for v in done.values() if v[2] is not None]
    starts = [v[1] for v in done.values() if v[1] is not None]
    if kind == "burst" and ends:
        out.throughput = len(ends) / max(max(ends) - min(starts), 1e-6)
    out.settle_ms = (latest - first_handed) * 1000
    live = [b for b in boards if b.alive and b.township in {code for _, code in sent}]
    out.sockets_live = len(live)
    out.sockets_heard = sum(1 for b in live if id(b) in heard)
    return out


# --- one layer --------------------------------------------------------------------------------


def child_env(redis_url: str, layer: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "WHISTLE_CHANNEL_LAYER": layer,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
        # This checkout's code, whichever checkout the installed `whistle` script points at.
        "PYTHONPATH": str(REPO_ROOT),
    }
    for name in ("WHISTLE_METRICS_PORT", "MQTT_URL"):
        env.pop(name, None)
    return env


def start_server(name: str, env: dict[str, str]) -> tuple[Child, int]:
    port = free_port()
    argv = [
        sys.executable, "-c", "import sys; from command.cli import main; sys.exit(main())",
        "serve", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    child = Child(name, argv, env)
    child.wait_for(SERVING, 60)
    return child, port


def core_state(redis: Redis) -> str:
    """What the core layer keeps in Redis: each group's members (a sorted set of channel
    names), and the messages queued for each process (one sorted set per process, named after
    the channels' common part: ``asgi`` + ``specific.<process>!``). A live process pops its
    own as they come; what stays queued is for a process that is gone."""
    client = redis.client()
    members: dict[str, int] = {}
    for key in client.scan_iter("asgi:group:*"):
        for channel in client.zrange(key, 0, -1):
            process = channel.decode().split("!")[0] + "!"
            members[process] = members.get(process, 0) + 1
    queued = {process: client.zcard(f"asgi{process}") for process in members}
    dead = {process for process, count in queued.items() if count}
    memory = client.info("memory")["used_memory"]
    return (
        f"{sum(members.values())} group memberships of {len(members)} processes "
        f"({sum(members[p] for p in dead)} of processes with messages left unread), "
        f"{sum(queued.values())} messages queued unread, Redis used_memory {memory / 1e6:.1f} MB"
    )


def pubsub_state(redis: Redis) -> str:
    client = redis.client()
    channels = client.pubsub_channels("asgi__group__*")
    counts = client.pubsub_numsub(*channels) if channels else []
    subscribers = sum(count for _, count in counts)
    memory = client.info("memory")["used_memory"]
    return (
        f"{len(channels)} group channels with {subscribers} process subscriptions, "
        f"Redis used_memory {memory / 1e6:.1f} MB"
    )


@dataclass
class LayerResult:
    name: str
    sockets: int = 0
    connect_s: float = 0.0
    district: Delivery | None = None
    burst: Delivery | None = None
    big: Delivery | None = None
    after_kill: Delivery | None = None
    after_restart: Delivery | None = None
    closed_after_restart: int = 0
    open_through_outage: int = 0
    deaf_after_restart: int = 0
    lines: list[str] = field(default_factory=list)

    @property
    def p99(self) -> float:
        values = (self.district.latencies if self.district else []) + (
            self.big.latencies if self.big else []
        )
        return percentile(values, 99)


async def run_layer(name: str, redis: Redis, setup: Setup, args: argparse.Namespace) -> LayerResult:
    out = LayerResult(name=name)

    def say(line: str) -> None:
        out.lines.append(line)
        result(f"{name}: {line}")

    env = child_env(redis.url, name)
    servers: list[tuple[Child, int]] = []
    sender: Sender | None = None
    boards: list[Board] = []
    try:
        for n in range(SERVERS):
            servers.append(start_server(f"{name}-serve-{n + 1}", env))
        ports = [port for _, port in servers]
        sender = Sender(env)
        plan = [(code, s) for code in setup.townships for s in range(SERVERS)]
        plan += [(BIG_TOWNSHIP, n % SERVERS) for n in range(args.big)]
        progress(f"{name}: opening {len(plan)} board sockets on {SERVERS} serve processes")
        boards, out.connect_s = await open_boards(ports, setup.cookie, plan)
        out.sockets = len(boards)
        say(f"{len(boards)} board sockets open in {out.connect_s:.1f} s")
        pids = [child.process.pid for child, _ in servers]

        async def phase(title: str, *call: Any, **kw: Any) -> Delivery:
            progress(f"{name}: {title}")
            cpu = CpuMeter(pids)
            meter = RedisMeter(redis)
            delivery = await deliver(sender, boards, *call, **kw)
            use = meter.stop()
            servers_cpu = cpu.stop()
            say(
                f"{title}: {delivery.describe()}; "
                + (
                    f"throughput {delivery.throughput:,.0f} group_send/s; "
                    if delivery.throughput
                    else ""
                )
                + f"settled in {delivery.settle_ms:.0f} ms; {use.describe()}"
                + (f"; {servers_cpu.describe('serve processes')}" if servers_cpu else "")
            )
            return delivery

        codes = setup.townships
        out.district = await phase(
            f"district {len(codes)} townships × {args.rate:g}/s for {args.seconds:g} s",
            "paced", codes, args.rate, args.seconds,
        )  # fmt: skip
        out.burst = await phase(f"burst of {args.burst}", "burst", codes, args.burst, 0)
        if args.big:
            out.big = await phase(
                f"one township, {args.big} sockets, 2/s for 10 s", "paced", [BIG_TOWNSHIP], 2, 10
            )

        # A serve process dies without unwinding (OOM killer, power): its sockets never
        # group_discard.
        dead_child, _ = servers[-1]
        state = core_state if name == "core" else pubsub_state
        say(f"before SIGKILL of serve {SERVERS}: {state(redis)}")
        dead_child.process.send_signal(signal.SIGKILL)
        dead_child.process.wait(10)
        deadline = time.monotonic() + 20
        while any(b.alive for b in boards if b.server == SERVERS - 1):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        out.after_kill = await phase(
            f"after SIGKILL of serve {SERVERS}: district for 10 s", "paced", codes, args.rate, 10
        )
        say(f"after SIGKILL: {state(redis)}")

        # Redis dies, stays away for a while (a restart of its container, a host reboot) and
        # comes back empty. A board whose socket closes shows it is offline and, once it can
        # reconnect, gets the full state (with whatever was raised meanwhile); a socket that
        # stays open looks live but hears nothing until its layer subscribes again, and never
        # shows what was raised meanwhile.
        alive_before = [b for b in boards if b.alive]
        redis.kill()
        progress(f"{name}: Redis down for {args.redis_down:g} s")
        await asyncio.sleep(args.redis_down)
        out.open_through_outage = sum(1 for b in alive_before if b.alive)
        redis.start()
        restarted = time.time()
        say(
            f"Redis down {args.redis_down:g} s: {out.open_through_outage} of {len(alive_before)} "
            f"sockets still open at its end (looking live, hearing nothing), "
            f"{len(alive_before) - out.open_through_outage} closed by the server (the board "
            f"shows it is offline and reconnects)"
        )
        out.after_restart = await phase(
            "after Redis is back: district for 15 s", "paced", codes, args.rate, 15,
            timeout=10.0,
        )  # fmt: skip
        out.closed_after_restart = sum(1 for b in alive_before if not b.alive)
        out.deaf_after_restart = out.after_restart.sockets_live - out.after_restart.sockets_heard
        firsts = [
            (min(t for t in b.rows.values() if t > restarted) - restarted) * 1000
            for b in alive_before
            if b.alive and any(t > restarted for t in b.rows.values())
        ]
        say(
            f"after Redis is back: {out.closed_after_restart} of {len(alive_before)} sockets "
            f"closed by the server; of the {out.after_restart.sockets_live} district sockets "
            f"left open, {out.after_restart.sockets_heard} hear pushes again (first row "
            f"{describe(firsts)} after the restart) and "
            f"{out.deaf_after_restart} stay deaf"
        )
    finally:
        for board in boards:
            board.task.cancel()
        await asyncio.gather(*(b.ws.close() for b in boards), return_exceptions=True)
        if sender is not None:
            sender.stop()
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        for child, _ in servers:
            try:
                child.stop()
            except Exception as exc:
                progress(f"stopping {child.name}: {exc}")
                child.kill()
            lines = "".join(f"{m - _started:8.3f} {line}\n" for m, line in child.lines)
            (LOG_DIR / f"{child.name}.log").write_text(lines)
    return out


def keep(results: dict[str, LayerResult]) -> tuple[str, str]:
    """The layer kept and why. A duty board that looks live while it hears nothing is worse
    than a slow one: a layer that leaves sockets open through a Redis outage, or deaf after it,
    loses to one that closes them (the board shows it is offline, and its reconnect shows what
    was raised meanwhile). Between layers that fail alike, the lower p99 of the district and
    the 1,000-socket phases."""
    ranked = sorted(results.values(), key=lambda r: r.p99)
    if len(ranked) == 1:
        return ranked[0].name, "the only layer measured"
    best, other = ranked[0], ranked[1]

    def stale(r: LayerResult) -> int:
        return r.open_through_outage + r.deaf_after_restart

    if stale(best) > stale(other):
        return other.name, (
            f"{best.name} has the lower p99 ({best.p99:.0f} vs {other.p99:.0f} ms) but leaves "
            f"{best.open_through_outage} sockets open and deaf through a Redis outage (boards "
            f"that look live and miss what is raised meanwhile); {other.name} closes them"
        )
    return best.name, f"lower p99 ({best.p99:.0f} vs {other.p99:.0f} ms), fails no worse"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--townships", type=int, default=30)
    parser.add_argument("--rate", type=float, default=1.0, help="alerts/s per township")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=300)
    parser.add_argument("--big", type=int, default=1000, help="sockets on one township")
    parser.add_argument("--layers", default="core,pubsub")
    parser.add_argument("--redis-down", type=float, default=10.0, help="seconds of outage")
    args = parser.parse_args(argv)
    terminate_on_sigterm()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    names = [n.strip() for n in args.layers.split(",") if n.strip()]
    for name in names:
        if name not in LAYERS:
            parser.error(f"unknown layer {name!r}; one of {', '.join(LAYERS)}")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    redis = Redis(LOG_DIR / "redis")
    import channels_redis

    result(
        f"channels-redis {channels_redis.__version__}, {SERVERS} serve processes, commit "
        f"{code_state(['bench', 'command', 'frontend'])}"
    )
    try:
        redis.start()
        os.environ["REDIS_URL"] = redis.url
        setup = prepare(args.townships)
        results: dict[str, LayerResult] = {}
        for name in names:
            # A known state: Redis empty, no alert of an earlier layer or run.
            redis.kill()
            redis.start()
            forget_alerts()
            results[name] = asyncio.run(run_layer(name, redis, setup, args))
    except KeyboardInterrupt:
        progress("interrupted")
        return 1
    finally:
        redis.stop()
        progress(f"servers' output and Redis' log kept in {LOG_DIR}")
    kept, why = keep(results)
    sockets = max(r.sockets for r in results.values())
    summary = {
        name: {
            "p99_ms": r.p99,
            "district": r.district and describe(r.district.latencies),
            "big": r.big and describe(r.big.latencies),
            "burst_throughput": r.burst and r.burst.throughput,
            "lines": r.lines,
        }
        for name, r in results.items()
    }
    (LOG_DIR / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    result(f"kept {kept}: {why}")
    figures = ", ".join(f"{name} p99 {r.p99:.0f} ms" for name, r in results.items())
    result(f"layers: {figures} on {sockets} sockets across {SERVERS} processes; kept {kept}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
