"""Dispatch benchmark (``make bench-dispatch``): from the officer's HTTP request that blows a
whistle to the summons frame on each summoned department's console websocket.

Everything real: ``whistle serve`` (daphne) in its own process, the Redis channel layer, the
PostgreSQL database ``whistle_bench_dispatch``, made afresh for every run (migrated, the demo
seeded): each run leaves W open summonses per department, and a console's state grows with
them, so a second run on the same data would measure something else. This process holds one
websocket per department (the console of a logged-in member) and, for each of W whistles, opens
an incident (not timed), then
times the POST that blows the whistle until each of the D departments' sockets has received the
frame carrying its new summons.

    python -m bench.dispatch [--whistles 200] [--departments 5]

The last line is ``dispatch: p50 <a> ms, p99 <b> ms to <n> department consoles``; the target
is p99 < 100 ms. The ceiling line before it is a bare Redis round trip through the channel
layer's group send, measured in the same run: the floor any push over it stands on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.common import database_url, drop_database, free_port, prepare_demo

TARGET_P99_MS = 100.0
DATABASE = "whistle_bench_dispatch"
DEPARTMENTS = (
    "chengguan",
    "police",
    "traffic",
    "market",
    "qs-zhifa",
    "natural-resources",
    "ecology",
    "water",
    "emergency",
    "fire-rescue",
)


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def sessions(codes: list[str]) -> tuple[str, dict[str, str]]:
    """An API token for the duty officer and a session cookie per department member."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from command.org.models import Department, User
    from command.org.tokens import api_token_create

    duty = User.objects.get(username="duty")
    token = api_token_create(user=duty, name="bench-dispatch")[1]
    cookies = {}
    for code in codes:
        user, _ = User.objects.get_or_create(
            username=f"bench-{code}",
            defaults={
                "role": User.Role.DEPARTMENT_MEMBER,
                "department": Department.objects.get(code=code),
            },
        )
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        cookies[code] = f"sessionid={store.session_key}"
    return token, cookies


def post(base: str, token: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{base}/api/v1{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def start_server(port: int) -> subprocess.Popen:
    whistle = str(Path(sys.executable).parent / "whistle")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "ALLOWED_HOSTS": "127.0.0.1,localhost"}
    process = subprocess.Popen(
        [whistle, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("whistle serve did not answer /healthz in 30 s")


async def channel_layer_floor(samples: int = 200) -> list[float]:
    """Round trips of one group_send through Redis to a receiver in this process."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("bench.floor", channel)
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        await layer.group_send("bench.floor", {"type": "ping"})
        await layer.receive(channel)
        times.append((time.perf_counter() - started) * 1000)
    await layer.group_discard("bench.floor", channel)
    return times


async def run(port: int, token: str, cookies: dict[str, str], whistles: int) -> list[float]:
    from websockets.asyncio.client import connect

    base = f"http://127.0.0.1:{port}"
    sockets = {}
    for code, cookie in cookies.items():
        sockets[code] = await connect(
            f"ws://127.0.0.1:{port}/ws/dept/{code}/",
            additional_headers={"Cookie": cookie, "Origin": base},
            open_timeout=10,
        )
        # The full inbox on connect: as many frames as it takes, the open count last.
        while "summons-open-count" not in await sockets[code].recv():
            pass
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    codes = list(cookies)
    try:
        for n in range(whistles):
            incident = await loop.run_in_executor(
                None,
                post,
                base,
                token,
                "/incidents",
                {
                    "township": "qingshui",
                    "category": "illegal-mining",
                    "severity": "critical",
                    "title": f"基准测试 {n}",
                },
            )
            waiters = {code: asyncio.create_task(_first_summons(sockets[code])) for code in codes}
            started = time.perf_counter()
            whistle = await loop.run_in_executor(
                None,
                post,
                base,
                token,
                f"/incidents/{incident['id']}/whistles",
                {
                    "kind": "emergency",
                    "purpose": "emergency_response",
                    "departments": [{"department": c, "reason": "基准测试"} for c in codes],
                },
            )
            expected = {s["department"]: s["id"] for s in whistle["summonses"]}
            for code, task in waiters.items():
                summons_id, arrived = await asyncio.wait_for(task, timeout=10)
                if summons_id != expected[code]:
                    raise RuntimeError(f"{code} got summons {summons_id}, not {expected[code]}")
                latencies.append((arrived - started) * 1000)
            if (n + 1) % 50 == 0:
                progress(f"{n + 1}/{whistles} whistles")
    finally:
        for ws in sockets.values():
            await ws.close()
    return latencies


async def _first_summons(ws) -> tuple[int, float]:
    """Wait for the frame that inserts a new summons row; return its id and arrival time."""
    while True:
        frame = await ws.recv()
        arrived = time.perf_counter()
        found = re.search(r'<li id="summons-(\d+)" class="summons', frame)
        if found and "beforeend:#summons-inbox" in frame:
            return int(found.group(1)), arrived


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--whistles", type=int, default=200)
    parser.add_argument("--departments", type=int, default=5)
    args = parser.parse_args(argv)
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    url = database_url(DATABASE)
    progress(f"database {DATABASE} (fresh), Redis {os.environ['REDIS_URL']}")
    drop_database(url)
    prepare_demo(url)
    codes = list(DEPARTMENTS[: args.departments])
    token, cookies = sessions(codes)
    port = free_port()
    server = start_server(port)
    try:
        floor = asyncio.run(channel_layer_floor())
        latencies = asyncio.run(run(port, token, cookies, args.whistles))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(15)
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    verdict = "PASS" if p99 < TARGET_P99_MS else "FAIL"
    print(
        f"floor: Redis channel-layer round trip p50 {statistics.median(floor):.2f} ms, "
        f"p99 {percentile(floor, 0.99):.2f} ms"
    )
    print(
        f"[{args.whistles} whistles x {len(codes)} departments] mean "
        f"{statistics.mean(latencies):.1f} ms, max {max(latencies):.1f} ms | target p99 < "
        f"{TARGET_P99_MS:.0f} ms: {verdict}"
    )
    print(f"dispatch: p50 {p50:.1f} ms, p99 {p99:.1f} ms to {len(latencies)} department consoles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
