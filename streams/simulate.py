"""The demo township's gateways: camera events, sensor telemetry and gateway presence over MQTT.

`whistle simulate` runs it against any broker; `whistle demo` runs it in-process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

from command.org.models import Device
from streams.mqtt.client import connect, make_client

log = logging.getLogger("whistle.simulate")

# What the demo's cameras see, weighted so the queue looks like a real township's day.
CAMERA_LABELS = [
    ("illegal_parking", 30),
    ("garbage", 20),
    ("street_vendor", 14),
    ("debris", 10),
    ("crowd", 8),
    ("straw_burning", 6),
    ("smoke", 4),
    ("excavator", 5),
    ("fire", 2),
    ("fight", 1),
]

SENSOR_BASELINES = {
    "water_level": ("water_level", 2.0, 0.4),
    "smoke": ("smoke_density", 0.02, 0.01),
    "gas": ("methane_ppm", 5.0, 2.0),
    "aqi": ("pm25", 45.0, 15.0),
    "temperature": ("temperature", 12.0, 4.0),
    "rainfall": ("rainfall_mm_h", 0.5, 0.5),
}


@dataclass(frozen=True)
class SimDevice:
    code: str
    kind: str
    sensor_type: str
    gateway: str | None
    zones: tuple[str, ...]


def load_devices(township: str) -> list[SimDevice]:
    rows = Device.objects.filter(township__code=township).select_related("gateway")
    return [
        SimDevice(
            code=d.code,
            kind=d.kind,
            sensor_type=d.sensor_type,
            gateway=d.gateway.code if d.gateway else None,
            zones=tuple(d.metadata.get("zones", [])) if isinstance(d.metadata, dict) else (),
        )
        for d in rows
    ]


class Simulator:
    def __init__(
        self,
        *,
        township: str = "qingshui",
        camera_interval: float = 4.0,
        telemetry_interval: float = 15.0,
        seed: int | None = None,
    ) -> None:
        self.township = township
        self.camera_interval = camera_interval
        self.telemetry_interval = telemetry_interval
        self.random = random.Random(seed)
        self.prefix = settings.MQTT_TOPIC_PREFIX
        self._stop = threading.Event()
        self.published = 0

    def stop(self) -> None:
        self._stop.set()

    def topic(self, kind: str, device: str, leaf: str) -> str:
        return f"{self.prefix}/{self.township}/{kind}/{device}/{leaf}"

    def camera_event(self, device: SimDevice) -> tuple[str, bytes]:
        labels, weights = zip(*CAMERA_LABELS, strict=True)
        label = self.random.choices(labels, weights=weights)[0]
        if "quarry-pit" in device.zones:
            label = "excavator"
        payload = {
            "id": uuid.uuid4().hex[:16],
            "ts": int(time.time() * 1000),
            "label": label,
            "score": round(self.random.uniform(0.62, 0.98), 2),
            "zones": list(device.zones),
        }
        return self.topic("camera", device.code, "event"), json.dumps(payload).encode()

    def telemetry(self, device: SimDevice, now: float) -> tuple[str, bytes]:
        metric, base, spread = SENSOR_BASELINES.get(device.sensor_type, ("value", 1.0, 0.2))
        # A slow daily wave plus noise, so charts look like a real sensor's.
        wave = math.sin(now / 3600 * math.pi / 12) * spread
        value = round(max(0.0, base + wave + self.random.gauss(0, spread / 4)), 3)
        payload = {"ts": int(now * 1000), "values": {metric: value}}
        return self.topic("sensor", device.code, "telemetry"), json.dumps(payload).encode()

    def run(self) -> None:
        devices = load_devices(self.township)
        cameras = [d for d in devices if d.kind == Device.Kind.CAMERA]
        sensors = [d for d in devices if d.kind == Device.Kind.SENSOR]
        gateways = sorted({d.gateway for d in devices if d.gateway})
        if not cameras and not sensors:
            raise RuntimeError(
                f"township {self.township!r} has no devices: run `whistle seed-demo` first"
            )
        client, config = make_client(f"whistle-sim-{self.township}")
        # One connection stands for all the demo's gateways; its will marks them offline.
        for gateway in gateways[:1]:
            client.will_set(
                self.topic("gateway", gateway, "status"), b"offline", qos=1, retain=True
            )
        connect(client, config)
        client.loop_start()
        try:
            for gateway in gateways:
                client.publish(self.topic("gateway", gateway, "status"), b"online", 1, retain=True)
            log.info(
                "simulating %d cameras and %d sensors of %s on %s",
                len(cameras),
                len(sensors),
                self.township,
                config.display,
            )
            next_camera = time.monotonic()
            next_telemetry = time.monotonic()
            while not self._stop.is_set():
                now = time.monotonic()
                if cameras and now >= next_camera:
                    topic, payload = self.camera_event(self.random.choice(cameras))
                    client.publish(topic, payload, qos=1)
                    self.published += 1
                    next_camera = now + self.random.uniform(0.5, 1.5) * self.camera_interval
                if sensors and now >= next_telemetry:
                    wall = time.time()
                    for sensor in sensors:
                        topic, payload = self.telemetry(sensor, wall)
                        client.publish(topic, payload, qos=1)
                        self.published += 1
                    next_telemetry = now + self.telemetry_interval
                self._stop.wait(max(0.05, min(next_camera, next_telemetry) - time.monotonic()))
        finally:
            for gateway in gateways:
                client.publish(self.topic("gateway", gateway, "status"), b"offline", 1, retain=True)
            client.disconnect()
            client.loop_stop()


# --- a whole district ------------------------------------------------------------------------

# Camera bursts: a township's cameras are quiet most of the time; now and then something happens
# (a market closes, a fire starts) and a few cameras see it at once, each firing several events
# within seconds.
BURST_CAMERAS = (2, 4)
BURST_EVENTS = (3, 6)  # per camera
BURST_SPREAD = 3.0  # seconds over which a burst's events arrive
PUBLISH_TICK = 0.002  # seconds: the longest a due reading waits for its turn
PUBLISH_WINDOW = 1000  # QoS 1 messages in flight per township's connection
STOP_TIMEOUT = 15.0  # seconds to wait for the broker's PUBACKs of what was published


@dataclass(frozen=True)
class DistrictTownship:
    code: str
    sensors: tuple[tuple[str, str], ...]  # (code, sensor type)
    cameras: tuple[str, ...]
    gateways: tuple[str, ...]


@dataclass(frozen=True)
class DistrictPlan:
    """What one district simulation publishes: every sensor one reading per ``sensor_interval``
    seconds, evenly spread over the interval (sensor phases are spread over the whole district,
    so the broker sees a steady stream, not a lump every 10 s), and camera bursts about every
    ``burst_every`` seconds per township."""

    townships: tuple[DistrictTownship, ...]
    sensor_interval: float = 10.0
    burst_every: float = 30.0
    prefix: str = "whistle"
    # Each township's gateways log in as the township (its code as MQTT username, the password
    # of MQTT_URL), as deploy/mosquitto/acl confines them; otherwise all as MQTT_URL's user.
    township_logins: bool = False
    seed: int = 1

    @property
    def sensors(self) -> int:
        return sum(len(t.sensors) for t in self.townships)

    @property
    def offered_rate(self) -> float:
        """Readings per second the plan offers (camera events come on top, in bursts)."""
        return self.sensors / self.sensor_interval

    @property
    def interval_ms(self) -> int:
        return round(self.sensor_interval * 1000)

    def phase_ms(self, township_index: int, sensor_index: int) -> int:
        """When in each interval this sensor publishes (ms): one slot of the district's
        schedule. Slots are spread by the golden ratio, so consecutive ones belong to different
        townships and connections and the whole district fills the interval evenly."""
        position = sum(len(t.sensors) for t in self.townships[:township_index]) + sensor_index
        return int(position * 0.6180339887 % 1.0 * self.interval_ms)


def load_district(codes: list[str]) -> tuple[DistrictTownship, ...]:
    """The devices of these townships as the database holds them (seed_district made them)."""
    townships = []
    for code in codes:
        rows = list(
            Device.objects.filter(township__code=code)
            .order_by("code")
            .values_list("code", "kind", "sensor_type")
        )
        if not rows:
            raise RuntimeError(f"township {code!r} has no devices: run with --seed first")
        townships.append(
            DistrictTownship(
                code=code,
                sensors=tuple((c, t) for c, k, t in rows if k == Device.Kind.SENSOR),
                cameras=tuple(c for c, k, _t in rows if k == Device.Kind.CAMERA),
                gateways=tuple(c for c, k, _t in rows if k == Device.Kind.GATEWAY),
            )
        )
    return tuple(townships)


@dataclass
class PublisherReport:
    """What one publisher process published, to check against what was stored."""

    start_ms: int = 0
    # Per township, per sensor code: how many readings it published (the k-th at
    # start_ms + phase + k * interval).
    readings: dict[str, dict[str, int]] = field(default_factory=dict)
    # (township, camera, event id, ts ms, label)
    camera_events: list[tuple[str, str, str, int, str]] = field(default_factory=list)
    statuses: int = 0
    acked: int = 0
    published: int = 0
    refused: int = 0
    error: str = ""


def reading_time_ms(start_ms: int, phase_ms: int, k: int, interval_ms: int) -> int:
    """The time stamp of a sensor's k-th reading, in whole milliseconds (the same sum in SQL)."""
    return start_ms + phase_ms + k * interval_ms


def sensor_value(sensor_type: str, k: int, n: int) -> tuple[str, float]:
    """A normal value for the sensor type: a slow wave and a little noise, well inside every
    threshold of the demo's rules, so readings raise no alert."""
    metric, base, spread = SENSOR_BASELINES.get(sensor_type, ("value", 1.0, 0.2))
    wave = math.sin((k + n) / 30.0) * spread / 2
    jitter = ((k * 7919 + n * 104729) % 1000 / 1000 - 0.5) * spread / 4
    return metric, round(max(0.0, base + wave + jitter), 3)


def publish_district(
    plan: DistrictPlan,
    config: object,
    indexes: list[int],
    stop: threading.Event | object,
    counters: object,
    start_ms: int,
    started: float,
) -> PublisherReport:
    """Publish ``plan``'s townships at ``indexes`` until ``stop`` is set; one thread drives every
    township's connection (paho without its network thread: a publish is written to the socket at
    once, and one ``select`` reads every connection's PUBACKs), which costs a fraction of the CPU
    of a paho thread per connection. ``counters``: shared (published, acked, refused)."""
    import select

    import paho.mqtt.client as mqtt

    report = PublisherReport(start_ms=start_ms)
    rng = random.Random(plan.seed * 1000 + (indexes[0] if indexes else 0))
    clients: dict[str, mqtt.Client] = {}
    inflight: dict[str, int] = {}
    published, acked, refused = counters  # type: ignore[misc]
    connected: set[str] = set()

    for index in indexes:
        township = plan.townships[index]
        username = township.code if plan.township_logins else None
        client, _ = make_client(
            f"whistle-sim-{township.code}-{uuid.uuid4().hex[:6]}",
            config=config,  # type: ignore[arg-type]
        )
        if username is not None:
            client.username_pw_set(username, config.password)  # type: ignore[attr-defined]
        # Unlimited in paho, which rescans its whole window on every PUBACK (slow once a busy
        # broker lets thousands pile up); ``send`` keeps the window instead.
        client.max_inflight_messages_set(0)

        def on_connect(client, userdata, flags, reason_code, properties, code=township.code):
            if reason_code.is_failure:
                report.error = f"{code}: connect refused: {reason_code}"
            else:
                connected.add(code)

        def on_publish(client, userdata, mid, reason_code, properties, code=township.code):
            if reason_code.is_failure:
                refused.value += 1
            acked.value += 1
            inflight[code] -= 1

        client.on_connect = on_connect
        client.on_publish = on_publish
        connect(client, config)  # type: ignore[arg-type]
        clients[township.code] = client
        inflight[township.code] = 0

    def pump(timeout: float) -> None:
        sockets = {client.socket(): client for client in clients.values() if client.socket()}
        writers = [sock for sock, client in sockets.items() if client.want_write()]
        readable, writable, _ = select.select(list(sockets), writers, [], timeout)
        for sock in readable:
            sockets[sock].loop_read()
        for sock in writable:
            sockets[sock].loop_write()

    deadline = time.monotonic() + 10
    while len(connected) < len(clients) and not report.error:
        if time.monotonic() > deadline:
            report.error = f"not connected within 10 s: {sorted(set(clients) - connected)}"
            break
        pump(0.05)
    if report.error:
        for client in clients.values():
            client.disconnect()
        return report

    def send(code: str, topic: str, payload: bytes, *, retain: bool = False) -> None:
        client = clients[code]
        while inflight[code] >= PUBLISH_WINDOW:  # the broker is behind: wait for its PUBACKs
            pump(0.01)
        info = client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish on {topic} failed: {mqtt.error_string(info.rc)}")
        inflight[code] += 1
        published.value += 1
        report.published += 1

    prefix = plan.prefix
    for index in indexes:
        township = plan.townships[index]
        for gateway in township.gateways:
            send(township.code, f"{prefix}/{township.code}/gateway/{gateway}/status", b"online",
                 retain=True)  # fmt: skip
            report.statuses += 1
        report.readings[township.code] = {code: 0 for code, _type in township.sensors}

    # The schedule of one interval: (phase, township index, sensor index), in time order.
    slots = sorted(
        (plan.phase_ms(index, n), index, n)
        for index in indexes
        for n in range(len(plan.townships[index].sensors))
    )
    interval_ms = plan.interval_ms
    cycle, position = 0, 0
    # Camera bursts: per township, the next burst's start; events waiting to go, by time.
    next_burst = {index: started + rng.expovariate(1 / plan.burst_every) for index in indexes}
    pending_events: list[tuple[float, int, str, str]] = []
    labels, weights = zip(*CAMERA_LABELS, strict=True)
    sequence = 0
    last_misc = time.monotonic()
    try:
        while not stop.is_set():  # type: ignore[attr-defined]
            now = time.monotonic()
            elapsed = now - started
            # Readings due by now, in schedule order.
            while slots:
                phase_ms, index, n = slots[position]
                if (cycle * interval_ms + phase_ms) / 1000 > elapsed:
                    break
                township = plan.townships[index]
                code, sensor_type = township.sensors[n]
                metric, value = sensor_value(sensor_type, cycle, n)
                ts = reading_time_ms(start_ms, phase_ms, cycle, interval_ms)
                payload = b'{"ts":%d,"values":{"%s":%s}}' % (
                    ts,
                    metric.encode(),
                    repr(value).encode(),
                )
                send(township.code, f"{prefix}/{township.code}/sensor/{code}/telemetry", payload)
                report.readings[township.code][code] += 1
                position += 1
                if position == len(slots):
                    position, cycle = 0, cycle + 1
            # Bursts that start now: a few cameras, each with several events over a few seconds.
            for index, moment in next_burst.items():
                if moment > now:
                    continue
                township = plan.townships[index]
                if township.cameras:
                    label = rng.choices(labels, weights=weights)[0]
                    count = min(len(township.cameras), rng.randint(*BURST_CAMERAS))
                    for camera in rng.sample(township.cameras, count):
                        for _ in range(rng.randint(*BURST_EVENTS)):
                            at = now + rng.uniform(0, BURST_SPREAD)
                            pending_events.append((at, index, camera, label))
                    pending_events.sort()
                next_burst[index] = now + rng.expovariate(1 / plan.burst_every)
            while pending_events and pending_events[0][0] <= now:
                _at, index, camera, label = pending_events.pop(0)
                code = plan.townships[index].code
                sequence += 1
                event_id = f"{code}-{camera}-{start_ms}-{sequence}"
                ts = int(time.time() * 1000)
                payload = json.dumps(
                    {"id": event_id, "ts": ts, "label": label,
                     "score": round(rng.uniform(0.62, 0.98), 2), "zones": []}
                ).encode()  # fmt: skip
                send(code, f"{prefix}/{code}/camera/{camera}/event", payload)
                report.camera_events.append((code, camera, event_id, ts, label))
            if now - last_misc >= 1.0:
                for client in clients.values():
                    client.loop_misc()  # keepalive pings
                last_misc = now
            # Sleep until the next reading is due (at most a tick), reading PUBACKs meanwhile.
            if slots:
                due = started + (cycle * interval_ms + slots[position][0]) / 1000
                pump(min(max(due - time.monotonic(), 0.0), PUBLISH_TICK))
            else:
                pump(PUBLISH_TICK)
        # Stopped: wait for the broker to acknowledge everything published.
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(inflight.values()) and time.monotonic() < deadline:
            pump(0.05)
        if any(inflight.values()):
            report.error = f"{sum(inflight.values())} messages unacknowledged at the stop"
    except Exception as exc:  # reported to the parent, which says what went wrong
        report.error = repr(exc)
        log.exception("district publisher failed")
    finally:
        for client in clients.values():
            client.disconnect()
            with contextlib.suppress(Exception):
                client.loop_write()
    report.acked = int(acked.value)
    report.refused = int(refused.value)
    return report


def _publisher_main(
    plan: DistrictPlan,
    config: object,
    indexes: list[int],
    stop: object,
    counters: tuple[object, object, object],
    start_ms: int,
    started: float,
    results: object,
) -> None:
    report = publish_district(plan, config, indexes, stop, counters, start_ms, started)
    results.send(report)  # type: ignore[attr-defined]
    results.close()  # type: ignore[attr-defined]


class DistrictSimulator:
    """The gateways of a whole district, in ``processes`` publisher processes (each township's
    connection in one of them), until :meth:`stop`.

    ``run`` returns the reports of every publisher: what each sensor and camera published, to be
    checked against what was stored."""

    def __init__(
        self,
        plan: DistrictPlan,
        *,
        processes: int = 2,
        progress: Callable[[str], None] | None = None,
        progress_every: float = 5.0,
    ) -> None:
        self.plan = plan
        self.processes = max(1, min(processes, len(plan.townships)))
        self._progress = progress
        self._progress_every = progress_every
        self._stop = threading.Event()
        import multiprocessing

        # Forked: the children need Django's settings (paho's client wrapper) but no database.
        self._context = multiprocessing.get_context("fork")
        self._child_stop = self._context.Event()
        self.counters = [
            tuple(self._context.Value("q", 0, lock=False) for _ in range(3))
            for _ in range(self.processes)
        ]
        self.reports: list[PublisherReport] = []
        self.start_ms = 0

    def stop(self) -> None:
        self._stop.set()

    def published(self) -> int:
        return sum(int(c[0].value) for c in self.counters)  # type: ignore[attr-defined]

    def acked(self) -> int:
        return sum(int(c[1].value) for c in self.counters)  # type: ignore[attr-defined]

    def run(self, duration: float | None = None) -> list[PublisherReport]:
        from django.db import connections

        from streams.mqtt.client import broker_config

        config = broker_config()
        connections.close_all()  # nothing of the database crosses the fork
        self.start_ms = int(time.time() * 1000)
        started = time.monotonic()
        shares = [
            list(range(n, len(self.plan.townships), self.processes)) for n in range(self.processes)
        ]
        children = []
        for n, indexes in enumerate(shares):
            receive, send = self._context.Pipe(duplex=False)
            process = self._context.Process(
                target=_publisher_main,
                args=(self.plan, config, indexes, self._child_stop, self.counters[n],
                      self.start_ms, started, send),
                name=f"whistle-sim-{n + 1}",
                daemon=True,
            )  # fmt: skip
            process.start()
            send.close()
            children.append((process, receive))
        log.info(
            "simulating %d townships: %d sensors every %g s (%.0f readings/s), camera bursts "
            "about every %g s per township, in %d publisher processes, on %s",
            len(self.plan.townships),
            self.plan.sensors,
            self.plan.sensor_interval,
            self.plan.offered_rate,
            self.plan.burst_every,
            self.processes,
            config.display,
        )
        if self._progress:
            # The readings' time stamps follow from this (bench.district checks them by it).
            self._progress(f"simulate: readings scheduled from {self.start_ms} ms")
        last = (time.monotonic(), 0)
        try:
            while not self._stop.wait(min(self._progress_every, 0.5)):
                now = time.monotonic()
                if duration is not None and now - started >= duration:
                    break
                if not all(process.is_alive() for process, _ in children):
                    log.error("a publisher process stopped; stopping the others")
                    break
                if self._progress and now - last[0] >= self._progress_every:
                    acked = self.acked()
                    self._progress(
                        f"simulate: {acked / 1:.0f} acknowledged, "
                        f"{(acked - last[1]) / (now - last[0]):.0f} msg/s"
                    )
                    last = (now, acked)
        finally:
            self._child_stop.set()
            for process, receive in children:
                if receive.poll(STOP_TIMEOUT + 10):
                    with contextlib.suppress(EOFError):
                        self.reports.append(receive.recv())
                process.join(5)
                if process.is_alive():
                    process.kill()
        return self.reports

    def report_json(self) -> dict[str, object]:
        """Everything published, for a check against the tables (bench.district)."""
        phases = {
            (township.code, code): self.plan.phase_ms(index, n)
            for index, township in enumerate(self.plan.townships)
            for n, (code, _type) in enumerate(township.sensors)
        }
        return {
            "start_ms": self.start_ms,
            "interval_ms": self.plan.interval_ms,
            "readings": [
                [township, code, count, phases[township, code]]
                for report in self.reports
                for township, counts in report.readings.items()
                for code, count in counts.items()
            ],
            "camera_events": [list(e) for report in self.reports for e in report.camera_events],
            "statuses": sum(r.statuses for r in self.reports),
            "published": sum(r.published for r in self.reports),
            "acked": sum(r.acked for r in self.reports),
            "refused": sum(r.refused for r in self.reports),
            "errors": [r.error for r in self.reports if r.error],
        }
