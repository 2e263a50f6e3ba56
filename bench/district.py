"""District benchmark (``make bench-district``): a simulated district of 30 townships on several
processes of each kind, measured in steady state and through the loss of a process.

Everything real, each in its own process: TimescaleDB (``bench.common.database_server``, the
database ``whistle_bench`` dropped and made afresh each run), Redis and Mosquitto with the
project's configuration and ACL (tests.brokers), 2 ``whistle serve`` behind haproxy with
``deploy/haproxy/haproxy.cfg`` (only its listener and server lines replaced), 2 ``whistle ingest``
on one shared subscription (``MQTT_SHARE_GROUP``), 2 ``whistle worker``, and ``whistle simulate
--district``: 30 townships × (1,000 sensors, one reading each per 10 s = 3,000 msg/s, evenly
paced; 50 cameras, events in bursts), each township's gateways logged in as the township.

1. 60 board websockets (2 per township), each signed in as its township's duty officer through
   the proxy (the login form, a session of its own), reading all the time and reconnecting the
   way htmx's ws extension does (on 1006/1011/1012/1013, after a full-jitter backoff: a random
   delay up to 1, 2, 4 … s).
2. Steady window (after a warm-up): messages stored per second against those the simulator had
   acknowledged by the broker; every ``--probe-every`` s a ``flood`` camera event with a known id
   is published in one township (a label no burst uses, each from a camera not used before, so
   each raises a new alert row), and timed from its publish to the first frame carrying that
   alert's row on each of its township's two boards.
3. Ingest failover: SIGKILL one ``whistle ingest``, and start it again at once as compose's
   restart policy would (same client id, so its persistent session, and the messages the broker
   held for it, come back). Measured: from the kill until the readings stored catch up with the
   schedule again (the lag back under the steady window's worst).
4. Web failover: SIGKILL the ``whistle serve`` holding the most boards (restarted at once, as
   compose would); from the kill until the last of its boards, reconnected through the proxy,
   has had every part of its full state again. Then one probe per township must reach all 60.
5. The simulator stops (every message acknowledged by the broker), ingest drains, and what was
   published is checked row by row against the tables: every reading (device, time) and every
   camera event (device, event id), lost and duplicated.

    python -m bench.district [--townships 30] [--sensors 1000] [--cameras 50] [--steady 60]

Progress goes to stderr; results to stdout, the last line being ``district: <t> townships, <m>
msg/s stored = <r> of offered; alert→board p99 <a> ms on <n> boards across <w> web processes;
failover ingest <s> s, web <s> s; lost 0; duplicated 0``. Targets: ≥ 3,000 msg/s stored, all of
what was offered; alert→board p99 < 500 ms; both failovers within 5 s. Every server's output is
kept in ``test-artifacts/bench-district/``. Exit status 0 whether targets are met or not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from bench import mqtt_drain
from bench.common import (
    BENCH_DB_ENV,
    DATABASE,
    code_state,
    database_server,
    database_url,
    drop_database,
    free_port,
    prepare_database,
    terminate_on_sigterm,
)
from bench.ingest import REPO_ROOT, Child, CpuMeter, CpuUse, whistle_executable
from bench.latency import Distribution, descendants, percentile
from tests.brokers import mosquitto_broker, redis_server

LOG_DIR = REPO_ROOT / "test-artifacts" / "bench-district"
HAPROXY_CFG = REPO_ROOT / "deploy" / "haproxy" / "haproxy.cfg"
INGEST_USER = "whistle-ingest"
SHARE_GROUP = "whistle-ingest"

WEB_PROCESSES = 2
INGEST_PROCESSES = 2
WORKER_PROCESSES = 2
BOARDS_PER_TOWNSHIP = 2
PUBLISHER_PROCESSES = 2

TARGET_RATE = 3000.0
TARGET_P99_MS = 500.0
TARGET_FAILOVER_S = 5.0

PROBE_LABEL = "flood"  # raises an alert (积水内涝) and no burst of the simulator uses it
START_TIMEOUT = 60.0
LOGIN_TIMEOUT = 30.0
PROBE_TIMEOUT = 10.0  # seconds for a probe's row to reach a board; later counts as missed
FAILOVER_TIMEOUT = 60.0
DRAIN_TIMEOUT = 120.0
SAMPLE_EVERY = 0.25  # seconds between lag samples

SERVING = re.compile(r"serving on")
SUBSCRIBED = re.compile(r"subscribed")
SIM_PROGRESS = re.compile(r"^simulate: (\d+) acknowledged")
SIM_START = re.compile(r"readings scheduled from (\d+) ms")
SERVER_ERROR = re.compile(r"Exception inside application|Traceback")
ALERT_ROW = re.compile(r'id="alert-(\d+)"')
# The parts of a board's full state (frontend.widgets.board_state): the queue, the map, the
# incidents and the figures. A batch frame carries some of them, never the incidents with the
# rest (the bench opens no incident), so all four after a (re)connect are the full state.
STATE_PARTS = {
    "queue": re.compile(r'id="alert-queue'),
    "map": re.compile(r'id="map-overlay"'),
    "incidents": re.compile(r'id="incident-panel"'),
    "figures": re.compile(r'id="board-figures"'),
}

_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr, flush=True)


def result(line: str) -> None:
    print(line, flush=True)


# --- configuration ---------------------------------------------------------------------------


def render_haproxy_config(port: int, servers: Sequence[tuple[str, int]]) -> str:
    """deploy/haproxy/haproxy.cfg listening on 127.0.0.1:port, its servers on loopback ports
    instead of Docker's DNS; every other line (timeouts, checks, balance) as deployed."""
    text = HAPROXY_CFG.read_text()
    text, binds = re.subn(r"^(\s*)bind \S+$", rf"\g<1>bind 127.0.0.1:{port}", text, flags=re.M)
    lines = "".join(f"    server {name} 127.0.0.1:{p}\n" for name, p in servers)
    text, templates = re.subn(r"^\s*server-template .*\n", lambda _m: lines, text, flags=re.M)
    text, sections = re.subn(r"^resolvers docker\n(?:[ \t]+.*\n)*", "", text, flags=re.M)
    if (binds, templates, sections) != (1, 1, 1):
        raise ValueError(
            f"{HAPROXY_CFG.name} must have one `bind`, one `server-template` and one `resolvers "
            f"docker` section, found {binds}, {templates}, {sections}"
        )
    return text


def haproxy_executable() -> str:
    found = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    if not found:
        raise SystemExit("haproxy is not installed (make bench-district installs Debian's haproxy)")
    return found


# --- expected readings, from the simulator's schedule ----------------------------------------


class Schedule:
    """How many readings the district's schedule puts in a span of wall-clock time: each sensor
    publishes at start + phase + k × interval (streams.simulate.DistrictPlan)."""

    def __init__(self, phases_ms: Sequence[int], interval_ms: int, start_ms: int) -> None:
        self.phases = sorted(phases_ms)
        self.interval = interval_ms
        self.start = start_ms

    def due(self, until_ms: int) -> int:
        """Readings with a time ≤ until_ms."""
        import bisect

        elapsed = until_ms - self.start
        if elapsed < 0:
            return 0
        cycles, rest = divmod(elapsed, self.interval)
        return cycles * len(self.phases) + bisect.bisect_right(self.phases, rest)

    def between(self, after_ms: int, until_ms: int) -> int:
        return self.due(until_ms) - self.due(after_ms)


def stored_since(cursor: Any, after_ms: int, until_ms: int) -> int:
    cursor.execute(
        "SELECT count(*) FROM streams_reading WHERE time > to_timestamp(%s / 1000.0) "
        "AND time <= to_timestamp(%s / 1000.0)",
        [after_ms, until_ms],
    )
    return int(cursor.fetchone()[0])


# --- the boards -------------------------------------------------------------------------------


@dataclass
class Connection:
    server: str
    opened: float
    complete: float | None = None  # every part of the full state received
    closed: float | None = None
    code: int | None = None


@dataclass
class Board:
    township: str
    number: int
    cookie: str
    alert_seen: dict[int, float] = field(default_factory=dict)
    connections: list[Connection] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.township}#{self.number}"

    @property
    def server(self) -> str:
        return self.connections[-1].server if self.connections else "?"


def sign_in(base: str, username: str, password: str) -> str:
    """The session cookie of ``username`` signed in through the login form, as a browser does."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base}/login/", timeout=LOGIN_TIMEOUT) as response:
        page = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if not token:
        raise RuntimeError("the login page has no CSRF token")
    body = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token[1], "next": "/"}
    ).encode()
    request = urllib.request.Request(
        f"{base}/login/", data=body, headers={"Referer": f"{base}/login/", "Origin": base}
    )
    with opener.open(request, timeout=LOGIN_TIMEOUT) as response:
        response.read()
    session = next((c.value for c in jar if c.name == "sessionid"), None)
    if not session:
        raise RuntimeError(f"signing in as {username} gave no session")
    return session


class Boards:
    """The board websockets, on an asyncio loop of their own thread."""

    def __init__(self, base: str, boards: list[Board]) -> None:
        self.base = base
        self.ws_base = base.replace("http://", "ws://")
        self.boards = boards
        self.loop = asyncio.new_event_loop()
        self.random = random.Random(16)
        self._stopping = False
        self._thread = threading.Thread(target=self.loop.run_forever, name="boards", daemon=True)
        self._thread.start()
        self._tasks = [
            asyncio.run_coroutine_threadsafe(self._run(board), self.loop) for board in boards
        ]

    async def _run(self, board: Board) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidStatus

        url = f"{self.ws_base}/ws/board/{board.township}/"
        headers = {"Cookie": f"sessionid={board.cookie}", "Origin": self.base}
        retry = 0
        while not self._stopping:
            code: int | None = 1006
            try:
                ws = await connect(
                    url, additional_headers=headers, open_timeout=30, ping_interval=None,
                    close_timeout=2, max_size=None,
                )  # fmt: skip
            except (TimeoutError, OSError, InvalidStatus) as exc:
                board.errors.append(f"connect: {exc!r}")
                ws = None
            if ws is not None:
                retry = 0  # htmx resets its count when the socket opens
                server = ws.response.headers.get("X-Whistle-Server", "?")
                connection = Connection(server=server, opened=time.monotonic())
                board.connections.append(connection)
                seen: set[str] = set()
                try:
                    async for frame in ws:
                        now = time.monotonic()
                        if isinstance(frame, bytes):
                            continue
                        for found in ALERT_ROW.finditer(frame):
                            board.alert_seen.setdefault(int(found[1]), now)
                        if connection.complete is None:
                            seen.update(n for n, p in STATE_PARTS.items() if p.search(frame))
                            if len(seen) == len(STATE_PARTS):
                                connection.complete = now
                except ConnectionClosed:
                    pass
                connection.closed = time.monotonic()
                code = ws.close_code if ws.close_code is not None else 1006
                connection.code = code
            if self._stopping:
                return
            # htmx's ws extension reconnects on these codes only, after a full-jitter delay.
            if code not in (1006, 1011, 1012, 1013):
                board.errors.append(f"closed with {code}: htmx would not reconnect")
                return
            delay = 1.0 * 2 ** min(retry, 6) * self.random.random()
            retry += 1
            await asyncio.sleep(delay)

    def wait_complete(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(b.connections and b.connections[-1].complete for b in self.boards):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()

        async def settle() -> None:
            # Let the cancelled sockets close before the loop stops under them.
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            await asyncio.wait(pending, timeout=5) if pending else None

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(settle(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


# --- probes -----------------------------------------------------------------------------------


@dataclass
class Probe:
    township: str
    camera: str
    event_id: str
    published: float  # monotonic
    published_wall: float = 0.0  # the same moment on the clock the database's rows are on
    alert_id: int | None = None
    received_wall: float | None = None  # when ingest took it from the broker (received_at)


class Prober:
    """Camera events with a known id, one connection per township (logged in as it)."""

    def __init__(self, broker: Any, password: str, townships: list[str], cameras: int) -> None:
        self.clients: dict[str, mqtt.Client] = {}
        self.next_camera = dict.fromkeys(townships, cameras)  # from the last camera down
        self.probes: list[Probe] = []
        for code in townships:
            endpoint = mqtt_drain.Endpoint(broker.host, broker.port, code, password, mqtt.MQTTv5)
            client = mqtt_drain.new_client(
                endpoint, f"bench-probe-{code}", persistent=False, manual_ack=False
            )
            connected = threading.Event()
            client.on_connect = lambda *_a, event=connected: event.set()
            mqtt_drain.connect(client, endpoint, persistent=False)
            client.loop_start()
            if not connected.wait(10):
                raise RuntimeError(f"probe client of {code} did not connect")
            self.clients[code] = client

    def publish(self, township: str) -> Probe:
        number = self.next_camera[township]
        if number < 1:
            raise RuntimeError(f"{township}: no fresh camera left for a probe")
        self.next_camera[township] = number - 1
        camera = f"cam-{number:02d}"
        event_id = f"probe-{township}-{camera}-{secrets.token_hex(4)}"
        payload = json.dumps(
            {"id": event_id, "ts": int(time.time() * 1000), "label": PROBE_LABEL, "score": 0.9}
        ).encode()
        published, published_wall = time.monotonic(), time.time()
        info = self.clients[township].publish(
            f"whistle/{township}/camera/{camera}/event", payload, qos=1
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"probe publish failed: {mqtt.error_string(info.rc)}")
        probe = Probe(township, camera, event_id, published, published_wall)
        self.probes.append(probe)
        return probe

    def close(self) -> None:
        for client in self.clients.values():
            client.disconnect()
            client.loop_stop()


def resolve_alerts(cursor: Any, probes: Sequence[Probe]) -> None:
    missing = [p for p in probes if p.alert_id is None]
    if not missing:
        return
    cursor.execute(
        "SELECT detail->>'event_id', id FROM alerts_alert WHERE detail->>'event_id' = ANY(%s)",
        [[p.event_id for p in missing]],
    )
    ids = dict(cursor.fetchall())
    cursor.execute(
        "SELECT event_id, extract(epoch FROM received_at) FROM streams_deviceevent"
        " WHERE event_id = ANY(%s)",
        [[p.event_id for p in missing]],
    )
    received = {event_id: float(at) for event_id, at in cursor.fetchall()}
    for probe in missing:
        probe.alert_id = ids.get(probe.event_id)
        probe.received_wall = received.get(probe.event_id)


def probe_legs(probes: Sequence[Probe], boards: Sequence[Board]) -> str:
    """Where a probe's time went: from its publish until ingest took it from the broker (the
    queue behind the readings), and from there to its row on a board (store, broadcast,
    render, send)."""
    queued: list[float] = []
    shown: list[float] = []
    for probe in probes:
        if probe.received_wall is None:
            continue
        queued.append((probe.received_wall - probe.published_wall) * 1000)
        for board in boards:
            if board.township != probe.township:
                continue
            seen = board.alert_seen.get(probe.alert_id) if probe.alert_id else None
            if seen is not None:
                # seen is monotonic: the same offset from the publish on both clocks
                shown.append((seen - probe.published) * 1000 - queued[-1])
    return (
        f"publish→ingest p50 {percentile(queued, 0.5):.0f} / p99 {percentile(queued, 0.99):.0f}"
        f" ms; ingest→board p50 {percentile(shown, 0.5):.0f} / p99"
        f" {percentile(shown, 0.99):.0f} ms"
        if queued and shown
        else "no probe reached ingest"
    )


def probe_latencies(probes: Sequence[Probe], boards: Sequence[Board]) -> tuple[list[float], int]:
    """ms from each probe's publish to its row on each board of its township; and misses."""
    latencies: list[float] = []
    missed = 0
    for probe in probes:
        for board in boards:
            if board.township != probe.township:
                continue
            seen = board.alert_seen.get(probe.alert_id) if probe.alert_id else None
            if seen is None or seen - probe.published > PROBE_TIMEOUT:
                missed += 1
            else:
                latencies.append((seen - probe.published) * 1000)
    return latencies, missed


def wait_for_probes(cursor: Any, probes: Sequence[Probe], boards: Sequence[Board]) -> None:
    deadline = time.monotonic() + PROBE_TIMEOUT
    while time.monotonic() < deadline:
        resolve_alerts(cursor, probes)
        if all(
            p.alert_id is not None and p.alert_id in b.alert_seen
            for p in probes
            for b in boards
            if b.township == p.township
        ):
            return
        time.sleep(0.2)


# --- processes ----------------------------------------------------------------------------------


class Stack:
    """Every process of the run, by name; their output is written to LOG_DIR at the end."""

    def __init__(self) -> None:
        self.children: dict[str, Child] = {}
        self.retired: list[Child] = []  # killed and replaced

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        if name in self.children:
            self.retired.append(self.children[name])
        child = Child(name, argv, env)
        self.children[name] = child
        return child

    def stop(self) -> None:
        for child in reversed(list(self.children.values())):
            try:
                child.stop()
            except Exception as exc:  # keep stopping the others
                progress(f"stopping {child.name}: {exc}")
                child.kill()
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        counts: dict[str, int] = {}
        for child in [*self.retired, *self.children.values()]:
            counts[child.name] = counts.get(child.name, 0) + 1
            suffix = "" if counts[child.name] == 1 else f".{counts[child.name]}"
            lines = "".join(f"{moment - _started:8.3f} {line}\n" for moment, line in child.lines)
            (LOG_DIR / f"{child.name}{suffix}.log").write_text(lines)


def app_env(database: str, redis_url: str, mqtt_url: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "MQTT_URL": mqtt_url,
        "MQTT_PROTOCOL": "5",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # The proxy on this host: its X-Forwarded-For is believed (sign-in throttling).
        "WHISTLE_TRUSTED_PROXIES": "127.0.0.1",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        # The processes run this checkout's code, whichever the installed script points at.
        "PYTHONPATH": str(REPO_ROOT),
    }
    for name in ("MQTT_SHARE_GROUP", "WHISTLE_METRICS_PORT", "MQTT_CLIENT_ID"):
        env.pop(name, None)
    return env


def cpu_of(meters: dict[str, CpuMeter]) -> dict[str, CpuUse | None]:
    return {name: meter.stop() for name, meter in meters.items()}


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    townships: int
    offered: float = 0.0
    stored: float = 0.0
    acked_rate: float = 0.0
    latencies: list[float] = field(default_factory=list)
    missed: int = 0
    boards: int = 0
    web: int = WEB_PROCESSES
    failover_ingest: float = math.nan
    failover_web: float = math.nan
    after_web_missed: int = 0
    lost: int = -1
    duplicated: int = -1
    unexpected: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.stored / self.offered if self.offered else 0.0

    def line(self) -> str:
        p99 = Distribution.of(self.latencies).p99
        return (
            f"district: {self.townships} townships, {self.stored:.0f} msg/s stored = "
            f"{self.ratio:.2f} of offered; alert→board p99 {p99:.0f} ms on {self.boards} boards "
            f"across {self.web} web processes; failover ingest {self.failover_ingest:.1f} s, "
            f"web {self.failover_web:.1f} s; lost {self.lost}; duplicated {self.duplicated}"
        )

    def targets(self) -> list[tuple[str, bool]]:
        p99 = Distribution.of(self.latencies).p99
        return [
            (f"≥ {TARGET_RATE:.0f} msg/s stored, all of the offered", self.stored >= TARGET_RATE
             and self.ratio >= 0.99),
            (f"alert→board p99 < {TARGET_P99_MS:.0f} ms, none missed",
             p99 < TARGET_P99_MS and not self.missed),
            (f"ingest failover ≤ {TARGET_FAILOVER_S:.0f} s",
             self.failover_ingest <= TARGET_FAILOVER_S),
            (f"web failover ≤ {TARGET_FAILOVER_S:.0f} s, every board live again",
             self.failover_web <= TARGET_FAILOVER_S and not self.after_web_missed),
            ("lost 0, duplicated 0", self.lost == 0 and self.duplicated == 0),
        ]  # fmt: skip


def run(args: argparse.Namespace) -> Outcome:
    outcome = Outcome(townships=args.townships)
    url = database_url(DATABASE)
    drop_database(url)
    prepare_database(url)  # starts Django
    from django.db import connection

    from demo.district import duty_username, seed_district, township_code
    from streams.simulate import DistrictPlan, load_district

    password = secrets.token_urlsafe(12)
    began = time.monotonic()
    summary = seed_district(
        townships=args.townships, sensors=args.sensors, cameras=args.cameras,
        duty_password=password,
    )  # fmt: skip
    progress(
        f"seeded {len(summary.townships)} townships × ({summary.sensors} sensors, "
        f"{summary.cameras} cameras, {summary.gateways} gateways) in "
        f"{time.monotonic() - began:.1f} s"
    )
    codes = [township_code(n) for n in range(1, args.townships + 1)]
    plan = DistrictPlan(townships=load_district(codes))
    device_ids = {
        (code, device): pk
        for code, device, pk in connection.cursor()
        .execute(
            "SELECT t.code, d.code, d.id FROM org_device d JOIN org_township t "
            "ON t.id = d.township_id"
        )
        .fetchall()
    }
    connection.close()

    gateway_password = secrets.token_urlsafe(12)
    users = {INGEST_USER: secrets.token_urlsafe(12), **dict.fromkeys(codes, gateway_password)}
    stack = Stack()
    boards_runner: Boards | None = None
    prober: Prober | None = None
    with tempfile.TemporaryDirectory(prefix="whistle-district-") as tmp:
        tmp_path = Path(tmp)
        try:
            with redis_server(tmp_path) as redis_url, mosquitto_broker(tmp_path, users) as broker:
                env = app_env(url, redis_url, broker.url_for(INGEST_USER))
                whistle = whistle_executable()
                web_ports = [free_port() for _ in range(WEB_PROCESSES)]
                for n, port in enumerate(web_ports, start=1):
                    stack.start(f"serve-{n}", [whistle, "serve", "--port", str(port)], env)
                worker_env = dict(env)
                for n in range(1, WORKER_PROCESSES + 1):
                    stack.start(f"worker-{n}", [whistle, "worker"], worker_env)
                ingest_env = {**env, "MQTT_SHARE_GROUP": SHARE_GROUP}

                def start_ingest(n: int) -> Child:
                    argv = [whistle, "ingest", "--client-id", f"bench-ingest-{n}"]
                    return stack.start(f"ingest-{n}", [*argv, "--progress-every", "1"], ingest_env)

                for n in range(1, INGEST_PROCESSES + 1):
                    start_ingest(n)
                proxy_port = free_port()
                config = tmp_path / "haproxy.cfg"
                config.write_text(
                    render_haproxy_config(
                        proxy_port, [(f"web{n}", p) for n, p in enumerate(web_ports, start=1)]
                    )
                )
                shutil.copy(config, LOG_DIR / "haproxy.cfg")
                stack.start(
                    "haproxy",
                    [haproxy_executable(), "-db", "-f", str(config)],
                    {**os.environ, "WHISTLE_HEALTH_HOST": "127.0.0.1"},
                )
                for n in range(1, WEB_PROCESSES + 1):
                    stack.children[f"serve-{n}"].wait_for(SERVING, START_TIMEOUT)
                for n in range(1, INGEST_PROCESSES + 1):
                    stack.children[f"ingest-{n}"].wait_for(SUBSCRIBED, START_TIMEOUT)
                base = f"http://127.0.0.1:{proxy_port}"
                _wait_http(f"{base}/healthz")
                progress(
                    f"{WEB_PROCESSES} serve behind haproxy on {base}, {INGEST_PROCESSES} ingest "
                    f"on $share/{SHARE_GROUP}, {WORKER_PROCESSES} workers"
                )

                # Boards: each signed in through the proxy, then its socket.
                began = time.monotonic()
                # A few at a time: each costs the server a password hash (~0.2 s of a core).
                with ThreadPoolExecutor(4) as pool:
                    boards = list(
                        pool.map(
                            lambda key: Board(
                                key[0], key[1], sign_in(base, duty_username(key[0]), password)
                            ),
                            [(c, n) for c in codes for n in range(1, BOARDS_PER_TOWNSHIP + 1)],
                        )
                    )
                progress(
                    f"{len(boards)} sign-ins through the proxy in {time.monotonic() - began:.1f} s"
                )
                boards_runner = Boards(base, boards)
                if not boards_runner.wait_complete(START_TIMEOUT):
                    raise RuntimeError("not every board got its full state")
                spread = _spread(boards)
                progress(f"{len(boards)} boards with their full state; per web process {spread}")
                outcome.boards = len(boards)

                sim_env = {**env, "MQTT_URL": broker.url_for(codes[0])}
                report_path = tmp_path / "published.json"
                simulator = stack.start(
                    "simulate",
                    [whistle, "simulate", "--district", "--townships", str(args.townships),
                     "--sensors", str(args.sensors), "--cameras", str(args.cameras),
                     "--processes", str(PUBLISHER_PROCESSES), "--township-logins",
                     "--progress-every", "1", "--report", str(report_path)],
                    sim_env,
                )  # fmt: skip
                start_ms = int(simulator.wait_for(SIM_START, START_TIMEOUT)[1][1])
                schedule = Schedule(
                    [plan.phase_ms(i, n) for i, t in enumerate(plan.townships)
                     for n in range(len(t.sensors))],
                    plan.interval_ms,
                    start_ms,
                )  # fmt: skip
                prober = Prober(broker, gateway_password, codes, args.cameras)
                progress(f"simulating the district; warming up for {args.warmup:.0f} s")
                time.sleep(args.warmup)
                threshold = _steady(
                    args, outcome, stack, simulator, schedule, prober, boards, codes
                )
                _ingest_failover(outcome, stack, schedule, threshold, start_ingest)
                _web_failover(outcome, stack, web_ports, env, whistle, prober, boards, codes)

                progress("stopping the simulator (it waits for every PUBACK)")
                simulator.process.terminate()
                try:
                    simulator.process.wait(120)
                except subprocess.TimeoutExpired:
                    progress("the simulator did not stop within 120 s; killing it")
                    simulator.process.kill()
                if not report_path.exists():
                    raise RuntimeError(f"the simulator wrote no report:\n{simulator.tail()}")
                published = json.loads(report_path.read_text())
                if published["errors"]:
                    outcome.notes.append(f"simulator errors: {published['errors']}")
                _drain_and_verify(outcome, published, prober, device_ids)
                errors = sum(
                    1
                    for child in [*stack.retired, *stack.children.values()]
                    if child.name.startswith(("serve", "ingest", "worker"))
                    for _t, line in child.lines
                    if SERVER_ERROR.search(line)
                )
                if errors:
                    outcome.notes.append(f"{errors} tracebacks in the servers' logs")
                board_errors = [e for b in boards for e in b.errors]
                if board_errors:
                    outcome.notes.append(
                        f"{len(board_errors)} board connection errors, e.g. {board_errors[0]}"
                    )
        finally:
            if boards_runner is not None:
                boards_runner.stop()
            if prober is not None:
                prober.close()
            stack.stop()
            for name in ("mosquitto/mosquitto.log", "redis/redis.log"):
                source = tmp_path / name
                if source.exists():
                    shutil.copy(source, LOG_DIR / source.name)
    return outcome


def _wait_http(url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer 200 within {START_TIMEOUT:.0f} s")
        time.sleep(0.2)


def _spread(boards: Sequence[Board]) -> dict[str, int]:
    spread: dict[str, int] = {}
    for board in boards:
        spread[board.server] = spread.get(board.server, 0) + 1
    return dict(sorted(spread.items()))


def _sim_acked(simulator: Child) -> tuple[float, int]:
    found = simulator.last(SIM_PROGRESS)
    if not found:
        raise RuntimeError(f"the simulator printed no progress:\n{simulator.tail()}")
    return found[0], int(found[1][1])


def _steady(
    args: argparse.Namespace,
    outcome: Outcome,
    stack: Stack,
    simulator: Child,
    schedule: Schedule,
    prober: Prober,
    boards: Sequence[Board],
    codes: list[str],
) -> int:
    """Measure the steady window; returns the worst lag behind the schedule (readings)."""
    from django.db import connection

    meters = {
        kind: CpuMeter([c.process.pid for n, c in stack.children.items() if n.startswith(kind)])
        for kind in ("serve", "ingest", "worker", "haproxy")
    }
    meters["simulate"] = CpuMeter([simulator.process.pid, *descendants(simulator.process.pid, "")])
    machine = CpuMeter([])
    progress(f"steady window: {args.steady:.0f} s, a probe every {args.probe_every:g} s")
    with connection.cursor() as cursor:
        window_start_ms = int(time.time() * 1000)
        first = _sim_acked(simulator)
        began = time.monotonic()
        stored_start = _count_messages(cursor)
        lags: list[int] = []
        probes: list[Probe] = []
        next_probe = began
        next_sample = began
        turn = 0
        while time.monotonic() - began < args.steady:
            now = time.monotonic()
            if now >= next_probe:
                probes.append(prober.publish(codes[turn % len(codes)]))
                turn += 1
                next_probe += args.probe_every
            if now >= next_sample:
                now_ms = int(time.time() * 1000)
                lags.append(
                    schedule.between(window_start_ms, now_ms)
                    - stored_since(cursor, window_start_ms, now_ms)
                )
                next_sample += SAMPLE_EVERY * 4  # the steady lag needs fewer samples
            time.sleep(0.01)
        ended = time.monotonic()
        stored_end = _count_messages(cursor)
        last = _sim_acked(simulator)
        cpu = cpu_of(meters)
        machine_use = machine.stop()
        wait_for_probes(cursor, probes, boards)
    outcome.offered = (last[1] - first[1]) / (last[0] - first[0])
    outcome.stored = (stored_end - stored_start) / (ended - began)
    outcome.latencies, outcome.missed = probe_latencies(probes, boards)
    latency = Distribution.of(outcome.latencies)
    worst_lag = max(lags) if lags else 0
    progress(
        f"steady: offered {outcome.offered:.0f} msg/s (acknowledged by the broker), stored "
        f"{outcome.stored:.0f} msg/s; lag behind the schedule p50 "
        f"{percentile(lags, 0.5) if lags else 0:.0f}, max {worst_lag} readings"
    )
    progress(
        f"alert→board on {len(boards)} boards, {len(probes)} probes: {latency.describe()}; "
        f"missed {outcome.missed}"
    )
    legs = probe_legs(probes, boards)
    progress(f"alert→board, its legs: {legs}")
    outcome.notes.append(f"alert→board, its legs: {legs}")
    use = ", ".join(f"{k} {v.processes:.2f}" for k, v in cpu.items() if v)
    if machine_use:
        use += f"; machine {machine_use.machine:.2f} of {os.cpu_count()} cores"
    progress(f"CPU in the steady window (cores): {use}")
    outcome.notes.append(f"CPU in the steady window (cores): {use}")
    outcome.notes.append(
        f"steady lag behind the schedule: p50 {percentile(lags, 0.5) if lags else 0:.0f}, "
        f"max {worst_lag} readings"
    )
    # The worst steady lag, with a floor of a quarter second of readings, is what "caught up"
    # means after the ingest failover.
    return max(worst_lag, int(schedule_rate(schedule) / 4))


def schedule_rate(schedule: Schedule) -> float:
    return len(schedule.phases) * 1000 / schedule.interval


def _count_messages(cursor: Any) -> int:
    cursor.execute(
        "SELECT (SELECT count(*) FROM streams_reading) + (SELECT count(*) FROM streams_deviceevent)"
    )
    return int(cursor.fetchone()[0])


def _ingest_failover(
    outcome: Outcome, stack: Stack, schedule: Schedule, threshold: float, start_ingest: Any
) -> None:
    """SIGKILL ingest-1, start it again at once (compose's restart policy); from the kill until
    the readings stored since a little before it are back within the steady lag."""
    from django.db import connection

    victim = stack.children["ingest-1"]
    since_ms = int(time.time() * 1000) - 2000
    progress("ingest failover: SIGKILL ingest-1 (restarted at once, same client id)")
    killed = time.monotonic()
    victim.process.kill()
    victim.process.wait(5)
    restarted = start_ingest(1)
    caught_up: float | None = None
    subscribed: float | None = None
    worst = 0
    # Caught up: the lag is within the steady worst and stays there (5 s in a row); the figure
    # is when it last was behind. Checked only once it could have fallen behind at all.
    behind_until = killed
    with connection.cursor() as cursor:
        while time.monotonic() - killed < FAILOVER_TIMEOUT:
            now_ms = int(time.time() * 1000)
            lag = schedule.between(since_ms, now_ms) - stored_since(cursor, since_ms, now_ms)
            sampled = time.monotonic()
            worst = max(worst, lag)
            if subscribed is None and (found := restarted.first(SUBSCRIBED)):
                subscribed = found[0] - killed
            if lag > threshold:
                behind_until = sampled
            elif sampled - behind_until >= 5.0 and subscribed is not None:
                caught_up = behind_until - killed
                break
            time.sleep(SAMPLE_EVERY)
    if subscribed is None:
        found = restarted.first(SUBSCRIBED)
        subscribed = found[0] - killed if found else math.nan
    outcome.failover_ingest = caught_up if caught_up is not None else math.nan
    note = (
        f"ingest failover: caught up {outcome.failover_ingest:.1f} s after the SIGKILL (lag at "
        f"most {worst} readings, steady ≤ {threshold:.0f}); the restarted ingest-1 subscribed "
        f"after {subscribed:.1f} s"
    )
    progress(note)
    outcome.notes.append(note)


def _web_failover(
    outcome: Outcome,
    stack: Stack,
    web_ports: list[int],
    env: dict[str, str],
    whistle: str,
    prober: Prober,
    boards: Sequence[Board],
    codes: list[str],
) -> None:
    from django.db import connection

    spread = _spread(boards)
    victim_server = max((s for s in spread if s.startswith("web")), key=lambda s: spread[s])
    number = int(victim_server.removeprefix("web"))
    on_victim = [b for b in boards if b.server == victim_server]
    before = {b.name: len(b.connections) for b in on_victim}
    progress(
        f"web failover: SIGKILL serve-{number} holding {len(on_victim)} boards "
        f"(restarted at once); spread before {spread}"
    )
    killed = time.monotonic()
    stack.children[f"serve-{number}"].process.kill()
    stack.children[f"serve-{number}"].process.wait(5)
    stack.start(f"serve-{number}", [whistle, "serve", "--port", str(web_ports[number - 1])], env)
    deadline = killed + FAILOVER_TIMEOUT
    done: dict[str, float] = {}
    while time.monotonic() < deadline and len(done) < len(on_victim):
        for board in on_victim:
            if board.name in done:
                continue
            later = board.connections[before[board.name] :]
            complete = next((c.complete for c in later if c.complete), None)
            if complete is not None:
                done[board.name] = complete - killed
        time.sleep(0.05)
    outcome.failover_web = max(done.values()) if len(done) == len(on_victim) else math.nan
    reconnects = sorted(done.values())
    note = (
        f"web failover: {len(done)}/{len(on_victim)} boards had their full state again; first "
        f"{reconnects[0] if reconnects else math.nan:.2f} s, median "
        f"{percentile(reconnects, 0.5) if reconnects else math.nan:.2f} s, last "
        f"{outcome.failover_web:.2f} s after the kill; spread after {_spread(boards)}"
    )
    progress(note)
    outcome.notes.append(note)
    # Every board live again: one probe per township must reach both its boards.
    probes = [prober.publish(code) for code in codes]
    with connection.cursor() as cursor:
        wait_for_probes(cursor, probes, boards)
    latencies, missed = probe_latencies(probes, boards)
    outcome.after_web_missed = missed
    note = (
        f"after the web failover: a probe per township on all {len(boards)} boards: "
        f"{Distribution.of(latencies).describe()}; missed {missed}"
    )
    progress(note)
    outcome.notes.append(note)


_VERIFY_READINGS = """
WITH published AS (
    SELECT p.device_id,
           timestamptz 'epoch' + (%(start_ms)s + p.phase + k * %(interval)s) * interval '1 ms'
               AS time
    FROM unnest(%(devices)s::bigint[], %(counts)s::int[], %(phases)s::bigint[])
             AS p(device_id, n, phase),
         generate_series(0, p.n - 1) AS k
),
stored AS (
    SELECT device_id, time FROM streams_reading WHERE device_id = ANY(%(devices)s::bigint[])
)
SELECT
    (SELECT count(*) FROM published),
    (SELECT count(*) FROM stored),
    (SELECT count(*) FROM (SELECT DISTINCT device_id, time FROM stored) AS d),
    (SELECT count(*) FROM published p LEFT JOIN (SELECT DISTINCT device_id, time FROM stored) s
        USING (device_id, time) WHERE s.device_id IS NULL),
    (SELECT count(*) FROM (SELECT DISTINCT device_id, time FROM stored) s
        LEFT JOIN published p USING (device_id, time) WHERE p.device_id IS NULL)
"""

_VERIFY_EVENTS = """
WITH published AS (
    SELECT * FROM unnest(%(devices)s::bigint[], %(ids)s::text[]) AS p(device_id, event_id)
),
stored AS (
    SELECT device_id, event_id FROM streams_deviceevent WHERE event_id = ANY(%(ids)s::text[])
)
SELECT
    (SELECT count(*) FROM published),
    (SELECT count(*) FROM stored),
    (SELECT count(*) FROM (SELECT DISTINCT device_id, event_id FROM stored) AS d),
    (SELECT count(*) FROM published p LEFT JOIN (SELECT DISTINCT * FROM stored) s
        USING (device_id, event_id) WHERE s.device_id IS NULL)
"""


def _drain_and_verify(
    outcome: Outcome,
    published: dict[str, Any],
    prober: Prober,
    device_ids: dict[tuple[str, str], int],
) -> None:
    from django.db import connection

    readings = published["readings"]
    expected = sum(int(n) for _t, _d, n, _p in readings)
    with connection.cursor() as cursor:
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM streams_reading")
            stored = int(cursor.fetchone()[0])
            if stored >= expected:
                break
            time.sleep(0.5)
        cursor.execute(
            _VERIFY_READINGS,
            {
                "start_ms": published["start_ms"],
                "interval": published["interval_ms"],
                "devices": [device_ids[t, d] for t, d, _n, _p in readings],
                "counts": [int(n) for _t, _d, n, _p in readings],
                "phases": [int(p) for _t, _d, _n, p in readings],
            },
        )
        r_published, r_stored, r_distinct, r_lost, r_unexpected = cursor.fetchone()
        events = [(t, c, e) for t, c, e, _ts, _label in published["camera_events"]]
        events += [(p.township, p.camera, p.event_id) for p in prober.probes]
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while True:
            cursor.execute(
                _VERIFY_EVENTS,
                {
                    "devices": [device_ids[t, c] for t, c, _e in events],
                    "ids": [e for _t, _c, e in events],
                },
            )
            e_published, e_stored, e_distinct, e_lost = cursor.fetchone()
            if not e_lost or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        cursor.execute("SELECT count(*) FROM streams_deadletter")
        dead = int(cursor.fetchone()[0])
    outcome.lost = int(r_lost) + int(e_lost)
    outcome.duplicated = int(r_stored - r_distinct) + int(e_stored - e_distinct)
    outcome.unexpected = int(r_unexpected)
    note = (
        f"verified row by row: readings {r_published} published, {r_stored} stored, {r_lost} "
        f"lost, {r_stored - r_distinct} duplicated, {r_unexpected} never published; camera "
        f"events {e_published} published ({len(prober.probes)} probes), {e_stored} stored, "
        f"{e_lost} lost, {e_stored - e_distinct} duplicated; {dead} dead letters; "
        f"{published['statuses']} gateway statuses"
    )
    progress(note)
    outcome.notes.append(note)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--townships", type=int, default=30)
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--cameras", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds before measuring")
    parser.add_argument("--steady", type=float, default=60.0, help="seconds of steady window")
    parser.add_argument("--probe-every", type=float, default=0.5, help="seconds between probes")
    args = parser.parse_args(argv)
    os.environ.setdefault(BENCH_DB_ENV, "timescaledb")
    terminate_on_sigterm()
    shutil.rmtree(LOG_DIR, ignore_errors=True)
    LOG_DIR.mkdir(parents=True)
    progress(f"code: {code_state(['streams', 'frontend', 'alerts', 'command', 'deploy', 'bench'])}")
    try:
        with database_server(LOG_DIR):
            outcome = run(args)
    except KeyboardInterrupt:
        progress("interrupted")
        return 1
    for note in outcome.notes:
        result(note)
    for target, met in outcome.targets():
        result(f"target {target}: {'PASS' if met else 'FAIL'}")
    result(outcome.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
