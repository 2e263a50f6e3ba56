"""Ingest benchmark (``make bench-ingest``): how fast ``whistle ingest`` drains a backlog, next
to how fast a bare MQTT client drains the same backlog from the same broker.

Backlog-drain method, all in one run against one Mosquitto started with the project's own
configuration (tests.brokers):

1. ceiling: a bare paho client (bench.mqtt_drain) creates its persistent session, QoS 1, and
   disconnects; N messages are published while it is offline; it reconnects and only counts
   and acknowledges. Its time runs from CONNECT to the Nth message.
2. whistle: ``whistle ingest`` is started once to create its session and stopped (SIGTERM);
   the same N messages are published; it is started again and its time runs from its CONNECT
   (the "ingest: connecting" line, printed after Django has started) until
   ``streams_reading`` holds all N×K readings.
3. the table is checked against what was published, reading by reading (key and value).

Draining a backlog, rather than keeping up with a live publisher, measures the consumer alone:
the broker has every message ready, so the rate is bounded by the client and the database and
not by how fast this process can publish.

    python -m bench.ingest [--messages N] [--readings-per-message K] [--workers W]
                           [--protocol 5|3.1.1] [--sensors S]
    python -m bench.ingest --suite        # the three scenarios of `make bench-ingest`
    WHISTLE_BENCH_DB=timescaledb python -m bench.ingest --suite   # on TimescaleDB hypertables

The server is DATABASE_URL's (default the local PostgreSQL), or with
``WHISTLE_BENCH_DB=timescaledb`` a TimescaleDB cluster of the benchmark's own
(bench.common.database_server); the header's ``# database:`` line says which engine was
measured, and whether the readings table was a hypertable.

Progress goes to stderr; results to stdout, the last line being the main scenario's
``ingest: <rate> msg/s = <ratio> of raw MQTT drain <ceiling> msg/s; readings <r>/s; lost 0;
duplicated 0``. The exit status is 0 whether targets are met or not (a benchmark reports, it
does not gate CI); it is 1 only when a scenario could not be measured at all.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

import paho.mqtt.client as mqtt

from bench import mqtt_drain
from bench.common import (
    DATABASE,
    REPO_ROOT,
    code_state,
    database_server,
    database_url,
    describe_database,
    prepare_database,
    terminate_on_sigterm,
)
from tests.brokers import Broker, mosquitto_broker

TOWNSHIP = "bench"  # also the publisher's MQTT username: the ACL lets it write whistle/bench/…
INGEST_USER = "whistle-ingest"
TOPIC_FILTER = "whistle/+/sensor/+/telemetry"
WHISTLE_SHARE_GROUP = "whistle-ingest"  # MQTT_SHARE_GROUP given to the whistle workers
RAW_SHARE_GROUP = "bench"

# max_queued_messages in deploy/mosquitto/mosquitto.conf: a larger backlog would be cut there.
BROKER_QUEUE_LIMIT = 1_000_000
# A payload must stay well under the broker's max_packet_size (256 KiB).
MAX_READINGS_PER_MESSAGE = 1_000

# Publisher flow control. paho's own max_inflight_messages_set rescans every in-flight message
# on each PUBACK (Client._update_inflight), which at a window of thousands publishes ~2.5x
# slower than a semaphore around publish() with paho's window left unlimited.
PUBLISH_WINDOW = 2_000

POLL_INTERVAL = 0.02  # seconds between completion checks while a drain is nearly done
COUNT_INTERVAL = 1.0  # seconds between full counts (progress, stall detection)
STALL_TIMEOUT = 20.0  # no new message or reading for this long: the rest is lost
DRAIN_TIMEOUT = 150.0
PUBLISH_TIMEOUT = 120.0
START_TIMEOUT = 60.0  # a whistle process: Python and Django start, connect, subscribe
STOP_TIMEOUT = 15.0

SUBSCRIBED = re.compile(r"subscribed")
CONNECTING = re.compile(r"^ingest: connecting")
RAW_CONNECTING = re.compile(r"^connecting ([\d.]+)$")
RAW_COUNT = re.compile(r"^count (\d+)$")
RAW_DONE = re.compile(r"^done (\d+) ([\d.]+) ([\d.]+)$")
# IngestWorker.progress_line(), printed by `whistle ingest` at exit.
INGEST_TOTALS = re.compile(r"^ingest: (\d+) messages, .*?(\d+) readings, (\d+) dead letters")

_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr, flush=True)


# --- scenarios and results ------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    messages: int
    readings_per_message: int = 1
    workers: int = 1
    sensors: int = 1_000
    protocol: str = "5"
    # Targets from the issue: single-reading messages at ≥ 0.8 of the ceiling; messages of 100
    # readings at ≥ 100,000 readings/s. Zero lost and zero duplicated always.
    min_ratio: float | None = None
    min_readings_per_second: float | None = None

    @property
    def label(self) -> str:
        per = "reading" if self.readings_per_message == 1 else "readings"
        workers = (
            "1 worker" if self.workers == 1 else f"{self.workers} workers, shared subscription"
        )
        return (
            f"{self.readings_per_message} {per}/message, {workers}, N={self.messages}, "
            f"MQTT {self.protocol}"
        )

    @property
    def readings(self) -> int:
        return self.messages * self.readings_per_message


@dataclass
class Drain:
    """One drain of the backlog: by the bare clients or by whistle ingest."""

    seconds: float
    messages: int  # messages drained (whistle: readings stored / K)
    complete: bool
    delivered: list[int | None] = field(default_factory=list)  # messages each worker received
    cpu: CpuUse | None = None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class CpuUse:
    """Cores used over a drain: by the draining processes, and by the whole machine."""

    processes: float
    machine: float

    def describe(self, who: str) -> str:
        return f"{who} {self.processes:.2f} cores, machine {self.machine:.2f} of {CORES} cores"


CORES = os.cpu_count() or 1


class CpuMeter:
    """CPU time from /proc, sampled at the start and the end of a drain.

    A drain whose process uses one core while the machine has more to give is bound by that
    process (its GIL), not by the machine; this tells the two apart. Where /proc does not
    exist (not Linux) the figures are simply left out.
    """

    TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self._start = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        try:
            own = 0
            for pid in self.pids:
                # Fields after the command name (which may contain spaces): utime is the 12th,
                # stime the 13th.
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                own += int(fields[11]) + int(fields[12])
            cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
            # user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
            busy = sum(int(value) for value in cpu[:8]) - int(cpu[3]) - int(cpu[4])
        except (OSError, IndexError, ValueError):
            return None
        return time.monotonic(), own / self.TICK, busy / self.TICK

    def stop(self) -> CpuUse | None:
        end = self._sample()
        if self._start is None or end is None or end[0] <= self._start[0]:
            return None
        wall = end[0] - self._start[0]
        return CpuUse((end[1] - self._start[1]) / wall, (end[2] - self._start[2]) / wall)


@dataclass(frozen=True)
class Verification:
    stored: int
    distinct: int
    lost: int  # published readings not in the table with their published value
    unexpected: int  # rows in the table that were never published
    dead_letters: int

    @property
    def duplicated(self) -> int:
        # The primary key (device, metric, time) makes a stored duplicate impossible; counted
        # anyway so that a change of key cannot hide one.
        return self.stored - self.distinct


@dataclass
class Outcome:
    scenario: Scenario
    ceiling: Drain
    whistle: Drain
    verification: Verification
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.whistle.rate / self.ceiling.rate if self.ceiling.rate else 0.0

    @property
    def readings_per_second(self) -> float:
        return self.whistle.rate * self.scenario.readings_per_message

    def line(self) -> str:
        """The first-class result line (its format is part of the benchmark's contract)."""
        return (
            f"ingest: {self.whistle.rate:.0f} msg/s = {self.ratio:.2f} of raw MQTT drain "
            f"{self.ceiling.rate:.0f} msg/s; readings {self.readings_per_second:.0f}/s; "
            f"lost {self.verification.lost}; duplicated {self.verification.duplicated}"
        )

    def targets(self) -> list[tuple[str, bool]]:
        """Each target of the scenario and whether it was met."""
        s, v = self.scenario, self.verification
        checks: list[tuple[str, bool]] = []
        if s.min_ratio is not None:
            checks.append((f"≥ {s.min_ratio:.2f} of ceiling", self.ratio >= s.min_ratio))
        if s.min_readings_per_second is not None:
            checks.append(
                (
                    f"≥ {s.min_readings_per_second:,.0f} readings/s",
                    self.readings_per_second >= s.min_readings_per_second,
                )
            )
        checks.append(
            (
                "lost 0, duplicated 0",
                self.whistle.complete and v.lost == v.duplicated == v.unexpected == 0,
            )
        )
        if s.workers > 1:
            # Sharing the load means each message reaches exactly one worker.
            delivered = self.whistle.delivered
            shared = None not in delivered and sum(d or 0 for d in delivered) == s.messages
            checks.append(("each message delivered to one worker", shared))
        return checks

    def report(self) -> str:
        checks = self.targets()
        wanted = "; ".join(name for name, _ in checks)
        missed = [name for name, met in checks if not met]
        verdict = f"FAIL (missed: {'; '.join(missed)})" if missed else "PASS"
        return f"[{self.scenario.label}] {self.line()} | target {wanted}: {verdict}"


# --- the backlog ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Backlog:
    """N telemetry messages over S sensors; message i is sensor i mod S at base + i ms, so every
    reading has its own key (device, metric, time) and the table can be checked in SQL."""

    messages: int
    readings_per_message: int
    sensors: int
    base_ms: int

    @classmethod
    def for_scenario(cls, scenario: Scenario) -> Backlog:
        # In the past (the parser refuses times over 10 min ahead) and far inside its 30 days.
        base_ms = int(time.time() * 1000) - scenario.messages - 3_600_000
        return cls(scenario.messages, scenario.readings_per_message, scenario.sensors, base_ms)

    @staticmethod
    def value(i: int, k: int) -> int:
        # Integers: exact as JSON, as float8 and in SQL, so values can be compared with "=".
        return i % 1000 + k

    def topic(self, i: int) -> str:
        return f"whistle/{TOWNSHIP}/sensor/{sensor_code(i % self.sensors)}/telemetry"

    def payload(self, i: int) -> bytes:
        values = {f"m{k}": self.value(i, k) for k in range(self.readings_per_message)}
        return json.dumps({"ts": self.base_ms + i, "values": values}).encode()

    def build(self) -> list[tuple[str, bytes]]:
        return [(self.topic(i), self.payload(i)) for i in range(self.messages)]


def sensor_code(n: int) -> str:
    return f"s-{n:04d}"


def publish(broker: Broker, protocol: str, backlog: list[tuple[str, bytes]]) -> None:
    """Publish every message at QoS 1 as the township's gateway and wait for all PUBACKs."""
    endpoint = mqtt_drain.Endpoint.parse(broker.url_for(TOWNSHIP), protocol)
    client = mqtt_drain.new_client(
        endpoint, f"bench-publisher-{secrets.token_hex(3)}", persistent=False, manual_ack=False
    )
    client.max_inflight_messages_set(0)  # unlimited in paho: PUBLISH_WINDOW limits instead
    window = threading.BoundedSemaphore(PUBLISH_WINDOW)
    connected, all_acked = threading.Event(), threading.Event()
    state = {"acked": 0, "refused": 0}
    refusal: list[str] = []

    def on_connect(client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            refusal.append(str(reason_code))
        connected.set()

    def on_publish(client, userdata, mid, reason_code, properties) -> None:
        # MQTT 5 reports a refusal (not authorised, quota exceeded) in the PUBACK.
        if reason_code.is_failure:
            state["refused"] += 1
        state["acked"] += 1
        window.release()
        if state["acked"] == len(backlog):
            all_acked.set()

    client.on_connect = on_connect
    client.on_publish = on_publish
    mqtt_drain.connect(client, endpoint, persistent=False)
    client.loop_start()
    try:
        if not connected.wait(mqtt_drain.SETUP_TIMEOUT) or refusal:
            raise RuntimeError(f"publisher could not connect: {refusal or 'timeout'}")
        deadline = time.monotonic() + PUBLISH_TIMEOUT
        started = time.monotonic()
        for topic, payload in backlog:
            if not window.acquire(timeout=max(deadline - time.monotonic(), 0)):
                raise RuntimeError(f"publishing: no PUBACK within {PUBLISH_TIMEOUT:.0f} s")
            info = client.publish(topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"publish failed: {mqtt.error_string(info.rc)}")
        if not all_acked.wait(max(deadline - time.monotonic(), 0)):
            raise RuntimeError(f"publishing: {state['acked']}/{len(backlog)} acknowledged")
        seconds = time.monotonic() - started
        if state["refused"]:
            raise RuntimeError(f"the broker refused {state['refused']} of the published messages")
        progress(f"published {len(backlog)} messages in {seconds:.1f} s")
    finally:
        client.disconnect()
        client.loop_stop()


# --- child processes ------------------------------------------------------------------------


class Child:
    """A child process whose output lines are collected with the time each arrived."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], *, stdin: bool = False
    ) -> None:
        self.name = name
        self.spawned = time.monotonic()
        self.process = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: list[tuple[float, str]] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(stream,), name=f"{name}-out", daemon=True)
            for stream in (self.process.stdout, self.process.stderr)
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: TextIO | None) -> None:
        assert stream is not None
        for line in stream:
            with self._changed:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._changed.notify_all()

    def last(self, pattern: re.Pattern[str]) -> tuple[float, re.Match[str]] | None:
        with self._changed:
            for arrived, line in reversed(self.lines):
                match = pattern.search(line)
                if match:
                    return arrived, match
        return None

    def first(self, pattern: re.Pattern[str]) -> tuple[float, re.Match[str]] | None:
        with self._changed:
            for arrived, line in self.lines:
                match = pattern.search(line)
                if match:
                    return arrived, match
        return None

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> tuple[float, re.Match[str]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self.first(pattern)  # the condition's lock is re-entrant
                if found:
                    return found
                if self.process.poll() is not None and not any(
                    reader.is_alive() for reader in self._readers
                ):
                    raise RuntimeError(
                        f"{self.name} exited with status {self.process.returncode} before "
                        f"printing /{pattern.pattern}/:\n{self.tail()}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError(
                        f"{self.name} did not print /{pattern.pattern}/ within {timeout:.0f} s:\n"
                        f"{self.tail()}"
                    )
                self._changed.wait(min(remaining, 0.5))

    def tail(self, count: int = 15) -> str:
        with self._changed:
            return "\n".join(f"    {line}" for _, line in self.lines[-count:])

    def running(self) -> bool:
        return self.process.poll() is None

    def close_stdin(self) -> None:
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM and wait; SIGKILL if it does not stop in time. Output is read to the end."""
        if self.running():
            self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            progress(f"{self.name} ignored SIGTERM for {timeout:.0f} s; killing it")
            self.process.kill()
            self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)

    def kill(self) -> None:
        if self.running():
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)
        self.close_stdin()


@contextmanager
def children() -> Iterator[list[Child]]:
    """Every child started in the block is killed when it exits, however it exits."""
    started: list[Child] = []
    try:
        yield started
    finally:
        for child in started:
            child.kill()


# --- ceiling: the bare client ---------------------------------------------------------------


def measure_ceiling(broker: Broker, scenario: Scenario, backlog: list[tuple[str, bytes]]) -> Drain:
    url = broker.url_for(INGEST_USER)
    client_ids = [f"bench-raw-{n}" for n in range(1, scenario.workers + 1)]
    topic = TOPIC_FILTER if scenario.workers == 1 else f"$share/{RAW_SHARE_GROUP}/{TOPIC_FILTER}"
    for client_id in client_ids:
        mqtt_drain.create_session(url, scenario.protocol, client_id, topic)
    try:
        publish(broker, scenario.protocol, backlog)
        env = {**os.environ, "MQTT_URL": url}
        with children() as drains:
            for client_id in client_ids:
                argv = [sys.executable, "-m", "bench.mqtt_drain", "--client-id", client_id]
                argv += ["--protocol", scenario.protocol]
                drains.append(Child(client_id, argv, env, stdin=True))
            meter = CpuMeter([drain.process.pid for drain in drains])
            complete = _wait_for_raw_drain(drains, scenario.messages)
            cpu = meter.stop()
            for drain in drains:
                drain.close_stdin()  # tells it to disconnect and print its totals
            results = [drain.wait_for(RAW_DONE, STOP_TIMEOUT)[1] for drain in drains]
            connects = [drain.wait_for(RAW_CONNECTING, 0)[1] for drain in drains]
        received = [int(done[1]) for done in results]
        start = min(float(match[1]) for match in connects)
        if not any(received):
            raise RuntimeError("the bare clients received nothing: was the backlog queued?")
        end = max(float(done[3]) for done in results if int(done[1]))
        drain = Drain(end - start, sum(received), complete, list(received), cpu)
        progress(
            f"ceiling: {drain.messages} messages in {drain.seconds:.2f} s = {drain.rate:.0f} msg/s"
            + (f" (per client {received})" if len(received) > 1 else "")
            + (f"; CPU: {cpu.describe('bare clients')}" if cpu else "")
        )
        return drain
    finally:
        # Otherwise the sessions would queue a second copy of the backlog published for whistle.
        for client_id in client_ids:
            mqtt_drain.end_session(url, scenario.protocol, client_id)


def _wait_for_raw_drain(drains: list[Child], expected: int) -> bool:
    deadline = time.monotonic() + DRAIN_TIMEOUT
    total, changed = 0, time.monotonic()
    while True:
        counts = [drain.last(RAW_COUNT) for drain in drains]
        now_total = sum(int(found[1][1]) for found in counts if found)
        if now_total != total:
            total, changed = now_total, time.monotonic()
        if total >= expected:
            return True
        dead = [drain for drain in drains if not drain.running()]
        if dead:
            raise RuntimeError(f"{dead[0].name} exited during the drain:\n{dead[0].tail()}")
        now = time.monotonic()
        if now > deadline or now - changed > STALL_TIMEOUT:
            progress(f"ceiling: stopped at {total}/{expected} messages")
            return False
        time.sleep(POLL_INTERVAL)


# --- whistle ingest -------------------------------------------------------------------------


def whistle_executable() -> str:
    # Installed by `pip install -e .` next to the interpreter running this benchmark.
    candidate = Path(sys.executable).parent / "whistle"
    found = str(candidate) if candidate.exists() else shutil.which("whistle")
    if not found:
        raise RuntimeError("the `whistle` console script is not installed (make install)")
    return found


def whistle_command() -> list[str]:
    """``whistle`` as this checkout's code: its own interpreter, started in the checkout (the
    Child's working directory, first on ``sys.path``). The console script would import the
    packages the virtualenv's editable install points at, which may be another checkout of the
    project, newer or older than the one this benchmark migrated its database with."""
    return [sys.executable, "-c", "import sys; from command.cli import main; sys.exit(main())"]


def measure_whistle(
    broker: Broker,
    scenario: Scenario,
    backlog: list[tuple[str, bytes]],
    database_url: str,
    last_key: tuple[int, int],
) -> Drain:
    client_ids = (
        ["bench-ingest"]
        if scenario.workers == 1
        else [f"bench-ingest-{n}" for n in range(1, scenario.workers + 1)]
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MQTT_URL": broker.url_for(INGEST_USER),
        "MQTT_PROTOCOL": scenario.protocol,
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    # Set only where this benchmark wants it: sharing only with several workers, and no
    # metrics server (two workers would want the same port).
    env.pop("MQTT_SHARE_GROUP", None)
    env.pop("WHISTLE_METRICS_PORT", None)
    if scenario.workers > 1:
        env["MQTT_SHARE_GROUP"] = WHISTLE_SHARE_GROUP

    def start(workers: list[Child]) -> None:
        for client_id in client_ids:
            argv = [*whistle_command(), "ingest", "--client-id", client_id]
            workers.append(Child(client_id, [*argv, "--progress-every", "1"], env))

    # 1. Create the persistent sessions: start, wait until subscribed, stop.
    with children() as workers:
        start(workers)
        for worker in workers:
            worker.wait_for(SUBSCRIBED, START_TIMEOUT)
        for worker in workers:
            worker.stop()
    progress(f"whistle ingest sessions created ({', '.join(client_ids)}); publishing")
    publish(broker, scenario.protocol, backlog)

    # 2. Drain: start again and time from CONNECT to the last reading committed.
    with children() as workers:
        start(workers)
        drain = _wait_for_whistle_drain(workers, scenario, last_key)
        for worker in workers:
            worker.stop()
        delivered: list[int | None] = []
        for worker in workers:
            totals = worker.last(INGEST_TOTALS)
            delivered.append(int(totals[1][1]) if totals else None)
        drain.delivered = delivered
    progress(
        f"whistle: {drain.messages} messages in {drain.seconds:.2f} s = {drain.rate:.0f} msg/s"
        + (f" (delivered per worker {delivered})" if len(delivered) > 1 else "")
        + (f"; CPU: {drain.cpu.describe('whistle')}" if drain.cpu else "")
    )
    return drain


def _wait_for_whistle_drain(
    workers: list[Child], scenario: Scenario, last_key: tuple[int, int]
) -> Drain:
    """Poll the table until it holds every reading.

    A full count(*) of half a million rows takes tens of milliseconds of a core that ingest is
    using; run every 20 ms it would slow what it measures. So every 20 ms only the last
    published message's primary key is probed (one index lookup); one worker receives in order,
    so that key is stored last. Once it is there (or once a second, for progress and for
    several workers, which do not store in order) the rows are counted.
    """
    from django.db import connection

    expected = scenario.readings
    started: float | None = None
    deadline = time.monotonic() + START_TIMEOUT + DRAIN_TIMEOUT
    stored, changed, counted_at = 0, time.monotonic(), 0.0
    last_seen = False
    meter: CpuMeter | None = None
    with connection.cursor() as cursor:
        while True:
            now = time.monotonic()
            if started is None:
                connects = [found[0] for w in workers if (found := w.first(CONNECTING))]
                if connects:
                    started = min(connects)
                    changed = started
                    meter = CpuMeter([w.process.pid for w in workers])
                    progress(
                        f"whistle ingest connecting {started - workers[0].spawned:.2f} s "
                        "after it was spawned; timing from here"
                    )
            if not last_seen:
                cursor.execute(
                    "SELECT EXISTS (SELECT 1 FROM streams_reading WHERE device_id = %s "
                    "AND metric = 'm0' AND time = timestamptz 'epoch' + %s * interval '1 ms')",
                    list(last_key),
                )
                last_seen = bool(cursor.fetchone()[0])
            if last_seen or now - counted_at >= COUNT_INTERVAL:
                cursor.execute("SELECT count(*) FROM streams_reading")
                count = int(cursor.fetchone()[0])
                counted_at = time.monotonic()
                if count != stored:
                    stored, changed = count, counted_at
                    if not last_seen:
                        progress(f"whistle: {stored}/{expected} readings stored")
                if stored >= expected:
                    break
            dead = [w for w in workers if not w.running()]
            if dead:
                raise RuntimeError(f"{dead[0].name} exited during the drain:\n{dead[0].tail()}")
            if now > deadline or (started is not None and now - changed > STALL_TIMEOUT):
                progress(f"whistle: stopped waiting at {stored}/{expected} readings")
                break
            time.sleep(POLL_INTERVAL)
    cpu = meter.stop() if meter else None
    if started is None:
        started = min(w.spawned for w in workers)
        progress("whistle ingest never printed 'ingest: connecting'; timing from its spawn")
    return Drain(
        seconds=changed - started,
        messages=stored // scenario.readings_per_message,
        complete=stored >= expected,
        cpu=cpu,
    )


# --- database -------------------------------------------------------------------------------


def seed(sensors: int) -> list[int]:
    """The township and its sensors (idempotent); their ids in the order of their codes."""
    from command.org.models import Device, Township

    township, _ = Township.objects.get_or_create(
        code=TOWNSHIP, defaults={"name": "基准测试镇", "name_en": "Benchmark Town"}
    )
    Device.objects.bulk_create(
        [
            Device(
                township=township,
                code=sensor_code(n),
                kind=Device.Kind.SENSOR,
                name=f"基准传感器 {sensor_code(n)}",
                name_en=f"Benchmark sensor {sensor_code(n)}",
            )
            for n in range(sensors)
        ],
        ignore_conflicts=True,  # (township, code) is unique: a second run adds nothing
    )
    ids = dict(
        Device.objects.filter(township=township, code__startswith="s-").values_list("code", "id")
    )
    return [ids[sensor_code(n)] for n in range(sensors)]


def truncate() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE streams_reading, streams_deadletter")


_VERIFY = """
WITH published AS (
    SELECT (%(devices)s::bigint[])[i %% %(sensors)s + 1] AS device_id,
           'm' || k AS metric,
           timestamptz 'epoch' + (%(base_ms)s + i) * interval '1 ms' AS time,
           (i %% 1000 + k)::float8 AS value
    FROM generate_series(0, %(messages)s - 1) AS i,
         generate_series(0, %(readings_per_message)s - 1) AS k
)
SELECT
    (SELECT count(*) FROM streams_reading),
    (SELECT count(*) FROM (SELECT DISTINCT device_id, metric, time FROM streams_reading) AS d),
    (SELECT count(*) FROM published AS p
        LEFT JOIN streams_reading AS r USING (device_id, metric, time)
        WHERE r.value IS DISTINCT FROM p.value),
    (SELECT count(*) FROM streams_reading AS r
        LEFT JOIN published AS p USING (device_id, metric, time)
        WHERE p.device_id IS NULL),
    (SELECT count(*) FROM streams_deadletter)
"""


def verify(backlog: Backlog, devices: list[int]) -> Verification:
    """Compare the table with the published readings, recomputed in SQL from the same rule."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            _VERIFY,
            {
                "devices": devices,
                "sensors": backlog.sensors,
                "base_ms": backlog.base_ms,
                "messages": backlog.messages,
                "readings_per_message": backlog.readings_per_message,
            },
        )
        row = cursor.fetchone()
    result = Verification(*(int(value) for value in row))
    progress(
        f"verified: {result.stored} stored, {result.distinct} distinct keys, {result.lost} lost, "
        f"{result.unexpected} unexpected, {result.dead_letters} dead letters"
    )
    return result


# --- running --------------------------------------------------------------------------------


def run_scenario(scenario: Scenario, devices: list[int], database: str) -> Outcome:
    progress(f"=== {scenario.label}")
    backlog = Backlog.for_scenario(scenario)
    messages = backlog.build()
    last = scenario.messages - 1
    last_key = (devices[last % scenario.sensors], backlog.base_ms + last)
    users = {INGEST_USER: secrets.token_urlsafe(12), TOWNSHIP: secrets.token_urlsafe(12)}
    # A broker of its own per scenario: no session or queue of one scenario reaches the next.
    with (
        tempfile.TemporaryDirectory(prefix="whistle-bench-") as tmp,
        mosquitto_broker(Path(tmp), users) as broker,
    ):
        truncate()
        ceiling = measure_ceiling(broker, scenario, messages)
        whistle = measure_whistle(broker, scenario, messages, database, last_key)
    outcome = Outcome(scenario, ceiling, whistle, verify(backlog, devices))
    if ceiling.cpu and whistle.cpu:
        outcome.notes.append(
            f"CPU during the drains: {ceiling.cpu.describe('bare clients')}; "
            f"{whistle.cpu.describe('whistle')}"
        )
    if outcome.verification.dead_letters:
        outcome.notes.append(f"{outcome.verification.dead_letters} dead letters")
    if outcome.verification.unexpected:
        outcome.notes.append(f"{outcome.verification.unexpected} rows that were never published")
    if scenario.workers > 1:
        outcome.notes.extend(_sharing_notes(outcome))
    return outcome


def _sharing_notes(outcome: Outcome) -> list[str]:
    from django.conf import settings

    delivered = outcome.whistle.delivered
    notes = [f"messages delivered per worker: {delivered}"]
    if not hasattr(settings, "MQTT_SHARE_GROUP"):
        notes.append(
            "this code has no MQTT_SHARE_GROUP setting: each worker subscribes on its own, so "
            "every message goes to every worker (the table still stores it once)"
        )
    return notes


SUITE = (
    # The main scenario: last in the output.
    Scenario(messages=50_000, min_ratio=0.8),
    Scenario(messages=5_000, readings_per_message=100, min_readings_per_second=100_000),
    Scenario(messages=50_000, workers=2, min_ratio=0.8),
)


def result(line: str) -> None:
    print(line, flush=True)


def run(scenarios: Sequence[Scenario]) -> int:
    """Run ``scenarios`` (the first is the main one) and print their results."""
    sensors = max(s.sensors for s in scenarios)
    database = database_url()
    prepare_database(database)
    devices = seed(sensors)
    from django.db import connection

    engine = describe_database(connection)
    code = code_state(["streams", "command"])
    progress(f"ingest code: {code}; database {DATABASE}; {sensors} sensors; {engine}")
    outcomes: list[Outcome | None] = []
    for scenario in scenarios:
        try:
            outcomes.append(run_scenario(scenario, devices, database))
        except Exception:
            progress(f"scenario failed: {scenario.label}\n{traceback.format_exc()}")
            outcomes.append(None)
    result(f"# ingest benchmark, backlog-drain method; code {code}")
    result(f"# database: {engine}")
    # Main scenario last, so its first-class line closes the output.
    order = [*range(1, len(scenarios)), 0]
    for index in order:
        outcome = outcomes[index]
        if outcome is None:
            result(f"[{scenarios[index].label}] not measured (see the errors above) | FAIL")
            continue
        result(outcome.report())
        for note in outcome.notes:
            result(f"    note: {note}")
    main_outcome = outcomes[0]
    if main_outcome is None:
        result("ingest: not measured")
        return 1
    result(main_outcome.line())
    return 0 if all(outcomes) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--messages", type=int, default=50_000, help="N (default 50000)")
    parser.add_argument("--readings-per-message", type=int, default=1, help="K (default 1)")
    parser.add_argument("--workers", type=int, default=1, help="W ingest processes (default 1)")
    parser.add_argument("--protocol", choices=["5", "3.1.1"], default="5")
    parser.add_argument("--sensors", type=int, default=1_000, help="S (default 1000)")
    parser.add_argument(
        "--suite", action="store_true", help="the three scenarios of `make bench-ingest`"
    )
    args = parser.parse_args(argv)
    if not 0 < args.messages < BROKER_QUEUE_LIMIT:
        parser.error(f"--messages must be from 1 to {BROKER_QUEUE_LIMIT - 1} (the broker's queue)")
    if not 0 < args.readings_per_message <= MAX_READINGS_PER_MESSAGE:
        parser.error(f"--readings-per-message must be from 1 to {MAX_READINGS_PER_MESSAGE}")
    if not 0 < args.sensors < 10_000 or args.workers < 1:
        parser.error("--sensors must be from 1 to 9999 and --workers at least 1")
    if args.suite:
        scenarios: Sequence[Scenario] = [replace(s, protocol=args.protocol) for s in SUITE]
    else:
        scenarios = [
            Scenario(
                messages=args.messages,
                readings_per_message=args.readings_per_message,
                workers=args.workers,
                sensors=args.sensors,
                protocol=args.protocol,
                min_ratio=0.8 if args.readings_per_message == 1 else None,
                min_readings_per_second=100_000 if args.readings_per_message > 1 else None,
            )
        ]
    terminate_on_sigterm()
    try:
        # WHISTLE_BENCH_DB=timescaledb: on a TimescaleDB cluster of the benchmark's own.
        with database_server("bench-ingest"):
            return run(scenarios)
    except KeyboardInterrupt:
        progress("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
