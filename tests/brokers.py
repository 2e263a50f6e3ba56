"""A real Mosquitto (and a real Redis) for tests, started by the tests themselves.

``render_test_config`` takes ``deploy/mosquitto/mosquitto.conf`` and changes only the listener
and the paths, so the queue limits, persistence and ACL the tests run against are the ones
compose.yaml deploys: one configuration, not a production file and a test file that drift.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parent.parent
MOSQUITTO_DIR = REPO_ROOT / "deploy" / "mosquitto"
MOSQUITTO_CONF = MOSQUITTO_DIR / "mosquitto.conf"
MOSQUITTO_ACL = MOSQUITTO_DIR / "acl"

INSTALL_HINT = "apt-get install mosquitto mosquitto-clients"
START_TIMEOUT = 10.0  # seconds; mosquitto is listening in well under one on any machine
STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    url: str
    users: dict[str, str] = field(default_factory=dict)

    def url_for(self, username: str) -> str:
        """An MQTT_URL that logs in as ``username``."""
        credentials = f"{quote(username, safe='')}:{quote(self.users[username], safe='')}"
        return f"mqtt://{credentials}@{self.host}:{self.port}"


def _substitute(text: str, directive: str, value: str) -> str:
    """Replace the one line that sets ``directive``; fail if the shared file no longer has it."""
    pattern = re.compile(rf"^{re.escape(directive)}\s+.*$", re.MULTILINE)
    replaced, count = pattern.subn(lambda _match: f"{directive} {value}", text)
    if count != 1:
        raise ValueError(
            f"{MOSQUITTO_CONF.name} must set `{directive}` on exactly one line, found {count}"
        )
    return replaced


def render_test_config(port: int, data_dir: Path, passwd: Path, acl: Path) -> str:
    """The production mosquitto.conf listening on ``127.0.0.1:port`` with the given files."""
    text = MOSQUITTO_CONF.read_text()
    text = _substitute(text, "listener", f"{port} 127.0.0.1")
    text = _substitute(text, "password_file", str(passwd))
    text = _substitute(text, "acl_file", str(acl))
    # Mosquitto joins the database file name to this path without adding a separator.
    text = _substitute(text, "persistence_location", f"{data_dir}{os.sep}")
    if os.geteuid() == 0:
        # Started as root, mosquitto switches to the `mosquitto` user before it reads the
        # password file, which then cannot open files in the test's private temporary directory.
        text += "\n# tests run as root: stay root so the temporary files stay readable\nuser root\n"
    return text


def _executable(name: str, *fallbacks: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in fallbacks:
        if os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        f"`{name}` is not installed; the MQTT tests need a real Mosquitto 2 ({INSTALL_HINT})"
    )


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def write_password_file(path: Path, users: dict[str, str]) -> None:
    """Write ``users`` as a mosquitto password file (hashed in place by ``mosquitto_passwd -U``)."""
    for username in users:
        if not username or any(char in username for char in ":/+#"):
            raise ValueError(f"not a usable MQTT username: {username!r}")
    path.write_text("".join(f"{name}:{password}\n" for name, password in users.items()))
    path.chmod(0o600)
    mosquitto_passwd = _executable("mosquitto_passwd", "/usr/bin/mosquitto_passwd")
    subprocess.run([mosquitto_passwd, "-U", str(path)], check=True, capture_output=True, timeout=30)


def _wait_until_listening(
    process: subprocess.Popen[bytes], host: str, port: int, log_path: Path, name: str = "mosquitto"
) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"{name} exited with status {process.returncode} while starting:\n"
                f"{log_path.read_text(errors='replace')}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{name} did not listen on {host}:{port} within {START_TIMEOUT:.0f} s:\n"
                f"{log_path.read_text(errors='replace')}"
            )
        time.sleep(0.02)  # poll interval, bounded by the deadline above


@contextmanager
def mosquitto_broker(
    tmp_path: Path, users: dict[str, str], *, acl: Path = MOSQUITTO_ACL
) -> Iterator[Broker]:
    """Run Mosquitto with the project's configuration and ACL, and ``users`` in its password file.

    The broker's log is kept in ``tmp_path/mosquitto/mosquitto.log`` and included in any start-up
    error. The broker is terminated (and killed if it does not stop) when the block exits.
    """
    mosquitto = _executable("mosquitto", "/usr/sbin/mosquitto")
    root = tmp_path / "mosquitto"
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    passwd = root / "passwd"
    write_password_file(passwd, users)
    acl_copy = root / "acl"
    shutil.copyfile(acl, acl_copy)
    host = "127.0.0.1"
    port = _free_port(host)
    config = root / "mosquitto.conf"
    config.write_text(render_test_config(port, data_dir, passwd, acl_copy))
    log_path = root / "mosquitto.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [mosquitto, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_listening(process, host, port, log_path)
        yield Broker(host=host, port=port, url=f"mqtt://{host}:{port}", users=dict(users))
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


def redis_installed() -> bool:
    return shutil.which("redis-server") is not None or os.access("/usr/bin/redis-server", os.X_OK)


@contextmanager
def redis_server(tmp_path: Path) -> Iterator[str]:
    """Run a throw-away Redis on a free local port; yields its URL (database 0).

    No persistence (the channel layer's messages live seconds), bound to loopback only. Its log
    is kept in ``tmp_path/redis/redis.log`` and included in any start-up error."""
    redis = _executable("redis-server", "/usr/bin/redis-server")
    root = tmp_path / "redis"
    root.mkdir(parents=True, exist_ok=True)
    host = "127.0.0.1"
    port = _free_port(host)
    log_path = root / "redis.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                redis,
                "--bind", host,
                "--port", str(port),
                "--save", "",
                "--appendonly", "no",
                "--dir", str(root),
                "--daemonize", "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_until_listening(process, host, port, log_path, "redis-server")
        yield f"redis://{host}:{port}/0"
    finally:
        _stop(process)
