"""The production deployment files: compose.yaml's shape, and Mosquitto's config and ACL on a
real broker (started by tests/brokers.py from the same files compose.yaml mounts)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.brokers import MOSQUITTO_CONF, REPO_ROOT, Broker, mosquitto_broker, render_test_config

pytestmark = pytest.mark.services

APP_SERVICES = {"migrate", "web", "ingest", "worker", "deliveries", "notifications"}
# The `scaled` profile's services (compose --profile scaled): more of each kind, and the proxy.
SCALED_APP_SERVICES = {"web-scaled", "ingest-2", "worker-scaled"}
HAPROXY_CFG = REPO_ROOT / "deploy" / "haproxy" / "haproxy.cfg"
WAIT = 10.0  # seconds; every wait below ends as soon as its condition holds


# --- compose.yaml ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())


def healthcheck_command(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def test_compose_services(compose: dict[str, Any]) -> None:
    assert "version" not in compose  # obsolete in the Compose specification
    assert set(compose["services"]) == {
        "db", "redis", "mqtt", "proxy", *APP_SERVICES, *SCALED_APP_SERVICES
    }  # fmt: skip
    unprofiled = {name for name, s in compose["services"].items() if not s.get("profiles")}
    assert unprofiled == {"db", "redis", "mqtt", *APP_SERVICES}


def test_compose_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "pg_isready" in healthcheck_command(services["db"])
    assert "redis-cli" in healthcheck_command(services["redis"])
    assert "ping" in healthcheck_command(services["redis"])
    mqtt_check = healthcheck_command(services["mqtt"])
    assert "mosquitto_sub" in mqtt_check
    # `$$` is compose's escape for a literal `$`: a bare `$SYS` would be interpolated to `/…`.
    assert "$$SYS/broker/uptime" in mqtt_check
    web_check = healthcheck_command(services["web"])
    assert "urllib" in web_check
    assert "/healthz" in web_check


def test_compose_app_services_share_the_image_and_environment(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in APP_SERVICES:
        service = services[name]
        assert service["build"], name
        environment = service["environment"]
        assert environment["WHISTLE_ENV"] == "production", name
        assert environment["DATABASE_URL"].endswith("@db:5432/whistle"), name
        assert environment["MQTT_URL"].startswith("mqtt://whistle-ingest:"), name
        assert environment["MQTT_URL"].endswith("@mqtt:1883"), name
        assert environment["REDIS_URL"] == "redis://redis:6379/0", name
    assert services["migrate"]["command"] == ["whistle", "migrate"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("web", "ingest", "worker", "deliveries", "notifications"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
        assert services[name]["restart"] == "unless-stopped", name
    assert services["ingest"]["depends_on"]["mqtt"]["condition"] == "service_healthy"
    # Deadlines and deliveries in separate workers: a slow department never delays a deadline.
    assert services["worker"]["command"] == ["whistle", "worker", "--queues", "deadlines,default"]
    assert services["deliveries"]["command"] == [
        "whistle",
        "worker",
        "--queues",
        "deliveries,reports",
    ]
    # Pages to people in a worker of their own: a slow SMS gateway delays neither.
    assert services["notifications"]["command"] == [
        "whistle", "worker", "--queues", "notifications"
    ]  # fmt: skip


def test_compose_scaled_profile(compose: dict[str, Any]) -> None:
    """More processes of each kind and the proxy, only with `--profile scaled`; the proxy runs
    the same haproxy.cfg the district benchmark measures."""
    services = compose["services"]
    for name in ("proxy", *SCALED_APP_SERVICES):
        assert services[name]["profiles"] == ["scaled"], name
        assert services[name]["restart"] == "unless-stopped", name
    proxy = services["proxy"]
    assert proxy["image"].startswith("haproxy:2.")
    assert "./deploy/haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in proxy["volumes"]
    assert str(proxy["ports"][0]).startswith("${PROXY_PUBLISH_ADDRESS:-127.0.0.1}:")
    assert str(proxy["ports"][0]).endswith(":8080")
    assert "WHISTLE_HEALTH_HOST" in proxy["environment"]
    # Every serve process answers to the one name the proxy's server-template resolves.
    template = next(
        line.split()
        for line in HAPROXY_CFG.read_text().splitlines()
        if line.strip().startswith("server-template")
    )
    alias, port = template[3].split(":")
    assert port == "8000"
    for name in ("web", "web-scaled"):
        assert alias in services[name]["networks"]["default"]["aliases"], name
        assert services[name]["command"][-1] == port, name
    assert services["web-scaled"]["deploy"]["replicas"] == "${WEB_REPLICAS:-1}"
    assert "ports" not in services["web-scaled"]  # reached through the proxy only
    assert services["web-scaled"]["healthcheck"] == services["web"]["healthcheck"]
    # Two ingest workers split one shared subscription, each with a session of its own.
    first, second = services["ingest"]["environment"], services["ingest-2"]["environment"]
    assert first["MQTT_SHARE_GROUP"] == second["MQTT_SHARE_GROUP"] != ""
    assert first["MQTT_CLIENT_ID"] != second["MQTT_CLIENT_ID"]
    assert services["ingest-2"]["command"] == services["ingest"]["command"]
    assert services["worker-scaled"]["command"] == services["worker"]["command"]
    assert services["worker-scaled"]["deploy"]["replicas"] == "${WORKER_REPLICAS:-1}"


def haproxy_settings(text: str) -> list[str]:
    return [
        " ".join(line.split())
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def test_haproxy_config_serves_boards() -> None:
    """Websockets as tunnels for hours, health checks on /healthz, boards spread by how many
    connections each process holds, a dead process's new connections retried elsewhere."""
    settings = haproxy_settings(HAPROXY_CFG.read_text())
    for wanted in (
        "mode http",
        "timeout tunnel 1h",
        "balance leastconn",
        "option httpchk",
        "option redispatch 1",
        "option forwardfor",
        "http-check expect status 200",
    ):
        assert wanted in settings, wanted
    check = next(line for line in settings if line.startswith("http-check send"))
    assert "uri /healthz" in check and "${WHISTLE_HEALTH_HOST}" in check
    assert not any(line.startswith(("stick", "cookie", "balance source")) for line in settings)


def test_bench_renders_haproxy_config_changing_only_listener_and_servers() -> None:
    from bench.district import render_haproxy_config

    production = haproxy_settings(HAPROXY_CFG.read_text())
    rendered = haproxy_settings(render_haproxy_config(18080, [("web1", 18001), ("web2", 18002)]))
    resolvers = production[production.index("resolvers docker") :]
    resolvers = resolvers[: next(i for i, line in enumerate(resolvers) if line == "defaults")]
    assert set(production) - set(rendered) == {
        "bind :8080",
        *resolvers,
        next(line for line in production if line.startswith("server-template")),
    }
    assert set(rendered) - set(production) == {
        "bind 127.0.0.1:18080",
        "server web1 127.0.0.1:18001",
        "server web2 127.0.0.1:18002",
    }


@pytest.mark.parametrize("rendered", [False, True], ids=["compose", "bench"])
def test_haproxy_accepts_the_config(tmp_path: Path, rendered: bool) -> None:
    from bench.district import haproxy_executable, render_haproxy_config
    from tests.conftest import need_service

    if not (shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")):
        need_service("haproxy is not installed (make system-packages installs it)")

    config = HAPROXY_CFG
    if rendered:
        config = tmp_path / "haproxy.cfg"
        config.write_text(render_haproxy_config(18080, [("web1", 18001)]))
    checked = subprocess.run(
        [haproxy_executable(), "-c", "-f", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "WHISTLE_HEALTH_HOST": "localhost"},
        timeout=30,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "[WARNING]" not in checked.stdout + checked.stderr


def test_compose_mqtt_mounts_the_project_config(compose: dict[str, Any]) -> None:
    volumes = compose["services"]["mqtt"]["volumes"]
    mounts = {
        volume.split(":")[1]: volume.split(":")[0] for volume in volumes if isinstance(volume, str)
    }
    assert mounts["/mosquitto/config/mosquitto.conf"] == "./deploy/mosquitto/mosquitto.conf"
    assert mounts["/mosquitto/config/acl"] == "./deploy/mosquitto/acl"
    assert mounts["/mosquitto/config/passwd"] == "./deploy/mosquitto/passwd"
    assert mounts["/mosquitto/data"] in compose["volumes"]


def test_test_config_differs_from_production_only_in_listener_and_paths(tmp_path: Path) -> None:
    production = MOSQUITTO_CONF.read_text().splitlines()
    rendered = render_test_config(
        18830, tmp_path / "data", tmp_path / "passwd", tmp_path / "acl"
    ).splitlines()
    changed = {
        line.split()[0]
        for line in set(production) ^ set(rendered)
        if line and not line.startswith("#")
    }
    assert changed - {"user"} == {"listener", "password_file", "acl_file", "persistence_location"}
    assert "listener 18830 127.0.0.1" in rendered


# --- Mosquitto with the project's configuration and ACL -------------------------------------


class Client:
    """A paho MQTT 5 client whose callbacks only record; tests wait on what was recorded."""

    def __init__(self, broker: Broker, username: str, client_id: str | None = None) -> None:
        self._condition = threading.Condition()
        self.messages: list[tuple[str, bytes]] = []
        self.acks: dict[int, ReasonCode] = {}
        self.subscribed: list[int] = []
        self.connect_result: ReasonCode | None = None
        self._broker = broker
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(username, broker.users[username])
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe

    def _record(self, action: Callable[[], object]) -> None:
        with self._condition:
            action()
            self._condition.notify_all()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._record(lambda: setattr(self, "connect_result", reason_code))

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self._record(lambda: self.messages.append((message.topic, message.payload)))

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._record(lambda: self.acks.__setitem__(mid, reason_code))

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        self._record(lambda: self.subscribed.append(mid))

    def wait_for(self, predicate: Callable[[], object], what: str, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        with self._condition:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
                self._condition.wait(remaining)

    def connect(self, *, persistent: bool = False) -> Client:
        properties = Properties(PacketTypes.CONNECT)
        if persistent:
            properties.SessionExpiryInterval = 3600
        self.connect_result = None
        self.client.connect(
            self._broker.host,
            self._broker.port,
            keepalive=30,
            clean_start=not persistent,
            properties=properties,
        )
        self.client.loop_start()
        self.wait_for(lambda: self.connect_result is not None, "CONNACK")
        assert self.connect_result is not None and not self.connect_result.is_failure, (
            self.connect_result
        )
        return self

    def subscribe(self, topic: str) -> None:
        _result, mid = self.client.subscribe(topic, qos=1)
        self.wait_for(lambda: mid in self.subscribed, f"SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """Publish at QoS 1 and return the broker's PUBACK reason code."""
        info = self.client.publish(topic, payload, qos=1)
        self.wait_for(lambda: info.mid in self.acks, f"PUBACK for {topic}")
        return self.acks[info.mid]

    def received(self, topic: str) -> list[bytes]:
        with self._condition:
            return [payload for got, payload in self.messages if got == topic]

    def wait_for_message(self, topic: str, payload: bytes) -> None:
        self.wait_for(lambda: (topic, payload) in self.messages, f"{payload!r} on {topic}")

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


USERS = {
    "qingshui": "gateway-" + uuid.uuid4().hex,
    "whistle-ingest": "ingest-" + uuid.uuid4().hex,
    "healthcheck": "health-" + uuid.uuid4().hex,
}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with mosquitto_broker(tmp_path, USERS) as running:
        yield running


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    opened: list[Client] = []
    yield opened
    for client in opened:
        client.disconnect()


def test_gateway_publishes_only_under_its_own_township(
    broker: Broker, clients: list[Client]
) -> None:
    ingest = Client(broker, "whistle-ingest").connect()
    clients.append(ingest)
    ingest.subscribe("whistle/#")
    gateway = Client(broker, "qingshui", client_id="gw-qingshui-01").connect()
    clients.append(gateway)

    # Refused publishes first: the broker delivers one publisher's messages in order, so once
    # the permitted one has arrived a refused one that had slipped through would be there too.
    foreign = "whistle/baihe/sensor/level-01/telemetry"
    forged = "whistle/qingshui/dispatch/police"
    assert gateway.publish(foreign, b"foreign").is_failure
    assert gateway.publish(forged, b"forged").is_failure
    own = "whistle/qingshui/sensor/level-01/telemetry"
    assert not gateway.publish(own, b"own").is_failure

    ingest.wait_for_message(own, b"own")
    assert ingest.received(foreign) == []
    assert ingest.received(forged) == []


def test_township_receives_its_dispatches(broker: Broker, clients: list[Client]) -> None:
    gateway = Client(broker, "qingshui").connect()
    clients.append(gateway)
    gateway.subscribe("whistle/qingshui/dispatch/#")
    ingest = Client(broker, "whistle-ingest").connect()
    clients.append(ingest)

    topic = "whistle/qingshui/dispatch/police"
    assert not ingest.publish(topic, b"summons").is_failure
    gateway.wait_for_message(topic, b"summons")


def test_healthcheck_user_reads_uptime_and_cannot_pose_as_a_township(
    broker: Broker, clients: list[Client]
) -> None:
    health = Client(broker, "healthcheck").connect()
    clients.append(health)
    # $SYS values are retained, so the subscription answers at once (the compose healthcheck
    # relies on this with `mosquitto_sub -C 1`).
    health.subscribe("$SYS/broker/uptime")
    health.wait_for(lambda: health.received("$SYS/broker/uptime"), "$SYS/broker/uptime")
    assert health.publish("whistle/healthcheck/sensor/x/telemetry", b"x").is_failure


def test_persistent_session_keeps_messages_while_ingest_is_away(
    broker: Broker, clients: list[Client]
) -> None:
    ingest = Client(broker, "whistle-ingest", client_id="whistle-ingest").connect(persistent=True)
    clients.append(ingest)
    ingest.subscribe("whistle/+/sensor/+/telemetry")
    ingest.disconnect()

    gateway = Client(broker, "qingshui").connect()
    clients.append(gateway)
    topic = "whistle/qingshui/sensor/level-01/telemetry"
    payloads = [f"reading-{index}".encode() for index in range(200)]
    for payload in payloads:
        assert not gateway.publish(topic, payload).is_failure

    back = Client(broker, "whistle-ingest", client_id="whistle-ingest").connect(persistent=True)
    clients.append(back)
    back.wait_for(lambda: len(back.received(topic)) >= len(payloads), "the queued readings")
    assert back.received(topic) == payloads


def test_compose_publishes_ports_on_loopback_unless_told(compose: dict[str, Any]) -> None:
    """Nothing listens on every interface by default: the web port is for the TLS proxy, the
    broker for the gateways' network, each named by an address in .env."""
    for name in ("web", "mqtt"):
        for mapping in compose["services"][name].get("ports", []):
            assert str(mapping).startswith(
                ("${WEB_PUBLISH_ADDRESS:-127.0.0.1}:", "${MQTT_PUBLISH_ADDRESS:-127.0.0.1}:")
            ), (name, mapping)
