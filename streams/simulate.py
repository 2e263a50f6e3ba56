"""The demo township's gateways: camera events, sensor telemetry and gateway presence over MQTT.

`whistle simulate` runs it against any broker; `whistle demo` runs it in-process.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
import uuid
from dataclasses import dataclass

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
