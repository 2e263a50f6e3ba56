"""`whistle demo` with nothing configured: embedded PostgreSQL, embedded MQTT broker, in-memory
channel layer, all in one process — a new user's first command."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from command.embedded import free_port
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(180)


class DemoProcess:
    def __init__(self, data_dir: Path, port: int) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "REDIS_URL", "MQTT_URL", "MQTT_PROTOCOL"}
            and not k.startswith("DJANGO_")
            and not k.startswith("PYTEST")
        }
        # A native crash prints every thread's stack into the output the assertions show.
        env.update(WHISTLE_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "whistle"),
                "demo",
                "--port",
                str(port),
                "--camera-interval",
                "0.3",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def demo_process(tmp_path: Path):
    port = free_port()
    (tmp_path / "data").mkdir()
    demo = DemoProcess(tmp_path / "data", port)
    demo.port = port  # type: ignore[attr-defined]
    yield demo
    if demo.process.poll() is None:
        demo.process.kill()
        demo.process.wait(10)


def login(base: str, username: str, password: str) -> http.cookiejar.CookieJar:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login/").read().decode()
    assert "<form" in page
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token}
    ).encode()
    request = urllib.request.Request(f"{base}/login/", data=data, headers={"Referer": base + "/"})
    landed = opener.open(request)
    assert landed.geturl().endswith("/board/qingshui/"), landed.geturl()
    return jar


def test_whistle_demo_runs_on_embedded_services_and_streams_alerts(demo_process, tmp_path):
    from websockets.sync.client import connect

    wait_for(
        lambda: (
            "Whistle demo is running" in demo_process.output()
            or demo_process.process.poll() is not None
        ),
        timeout=120,
        what="the demo to start",
    )
    out = demo_process.output()
    assert demo_process.process.poll() is None, out
    assert "embedded broker listening on mqtt://127.0.0.1:" in out
    assert "using the embedded server in the data dir" in out
    assert "in-memory layer" in out
    # No mail server: pages by e-mail are kept as files in the data directory.
    assert f"e-mails are written to {tmp_path / 'data' / 'mail'}" in out
    duty = re.search(r"^\s+duty\s+(\S+)\s+duty_officer", out, re.MULTILINE)
    assert duty, out
    # A first run comes with a past, written within a few seconds of start-up.
    past = re.search(r"Wrote the last 90 days of its past in ([\d.]+) s: 500 incidents", out)
    assert past, out
    assert float(past.group(1)) < 20, past.group(0)

    base = f"http://127.0.0.1:{demo_process.port}"
    jar = login(base, "duty", duty.group(1))
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    with connect(
        f"ws://127.0.0.1:{demo_process.port}/ws/board/qingshui/",
        additional_headers={"Cookie": cookie, "Origin": base},
        open_timeout=10,
    ) as socket:
        first = socket.recv(timeout=10)
        assert 'id="alert-queue"' in first
        # The simulated gateways publish every ~0.3 s; a pushed row must arrive without asking.
        deadline = time.monotonic() + 30
        pushed = ""
        while "afterbegin:#alert-queue" not in pushed:
            assert time.monotonic() < deadline, "no alert was pushed within 30 s"
            pushed = socket.recv(timeout=max(0.1, deadline - time.monotonic()))
        assert re.search(r'id="alert-\d+"', pushed)

    # The supervisor's performance page has the past's departments on it.
    supervisor = re.search(r"^\s+supervisor\s+(\S+)\s+supervisor", out, re.MULTILINE)
    assert supervisor, out
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(login(base, "supervisor", supervisor.group(1)))
    )
    page = opener.open(f"{base}/supervise/qingshui/").read().decode()
    assert len(re.findall(r'<tr data-department="', page)) >= 5, page[:2000]

    # Ctrl-C stops everything, the embedded PostgreSQL included.
    demo_process.process.send_signal(signal.SIGINT)
    assert demo_process.process.wait(30) in (0, 130), demo_process.output()
    assert "Stopping" in demo_process.output()
    # pg_ctl removes postmaster.pid once the server has shut down.
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
    pid_file = tmp_path / "data" / "postgres" / "postmaster.pid"
    # Its shutdown checkpoint writes out the demo's past (a few hundred thousand rows), which
    # took more than 15 s on a machine whose disk other processes kept busy.
    wait_for(lambda: not pid_file.exists(), timeout=60, what="postmaster.pid removed")
