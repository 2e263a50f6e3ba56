"""Escalation benchmark (part of ``make bench-dispatch``): from the moment a summons becomes
overdue to the first notification of its escalation leaving for a person's phone.

Everything real: ``whistle worker`` in its own process (all three pools, as production runs
them), the PostgreSQL job queue, and an SMS gateway: a local HTTP server speaking Alibaba
Cloud's SendSms answer format, which the worker's SMS channel posts to. The township's
supervisor is reached by SMS. N summonses are made overdue at moments 0.2 s apart, each with
its level-1 escalation job deferred for its deadline, as blowing a whistle defers it; the
worker picks each up when it polls, escalates it, pages the supervisor (the console at once,
the SMS by a job on the notifications queue), and the gateway answers. The figure for each
summons is the SMS notification's ``sent_at`` (after the gateway's answer) less the deadline.

The ceiling line before it is the gateway's own round trip from this process (a POST and its
answer), measured in the same run: the part of the figure that is the gateway's.

    python -m bench.escalation [--summonses 150]

The last line is ``escalation: overdue → first notification sent p50 <a> ms, p99 <b> ms over
<n> summonses``; the target is p99 < 1,000 ms past the deadline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.common import database_url, drop_database, free_port, prepare_demo

TARGET_P99_MS = 1000.0
DATABASE = "whistle_bench_escalation"
ARTIFACTS = Path("test-artifacts")
SPACING = 0.2  # seconds between two summonses' deadlines
LEAD = 8.0  # seconds from setting the deadlines to the first one: the worker is up by then


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class Gateway(BaseHTTPRequestHandler):
    """Answers every SendSms like the real gateway when it accepts a message."""

    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        type(self).received += 1
        body = json.dumps(
            {"Code": "OK", "Message": "OK", "BizId": "bench", "RequestId": "bench"}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


def gateway_floor(url: str, samples: int = 100) -> list[float]:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(url, data=b"x"), timeout=5) as r:
            r.read()
        times.append((time.perf_counter() - started) * 1000)
    return times


def sms_env(url: str) -> dict[str, str]:
    return {
        "WHISTLE_SMS_PROVIDER": "aliyun",
        "WHISTLE_SMS_URL": url,
        "WHISTLE_SMS_KEY_ID": "bench-key",
        "WHISTLE_SMS_KEY_SECRET": "bench-secret",
        "WHISTLE_SMS_SIGN_NAME": "Whistle",
        "WHISTLE_SMS_TEMPLATE": "SMS_000000",
        "WEBHOOK_ALLOW_PRIVATE": "true",
    }


def prepare(count: int) -> list[int]:
    """The township supervisor reached by SMS; ``count`` overdue-to-be summonses whose chains
    page nobody during the run; returns their ids."""
    from procrastinate.contrib.django.models import ProcrastinateJob

    from command.org.models import Category, Department, Township, User
    from incidents.models import EscalationChain, EscalationStep, Whistle
    from incidents.services.incidents import incident_open
    from incidents.services.whistles import SummonedDepartment, whistle_blow

    township = Township.objects.get(code="qingshui")
    User.objects.update_or_create(
        username="bench-supervisor",
        defaults={
            "role": User.Role.SUPERVISOR,
            "township": township,
            "phone": "13800000000",
            "notify_by": ["sms"],
            "first_name": "督办",
        },
    )
    # Only the overdue escalation pages: the chain waits a day before its one step.
    chain, _ = EscalationChain.objects.get_or_create(township=township, kind="", name="bench")
    chain.steps.all().delete()
    EscalationStep.objects.create(chain=chain, position=0, action="wait", minutes=1440)
    EscalationStep.objects.create(chain=chain, position=1, action="notify_head")
    duty = User.objects.get(username="duty")
    police = Department.objects.get(code="police")
    ids = []
    for n in range(count):
        incident = incident_open(
            actor=duty,
            township=township,
            category=Category.objects.get(code="illegal-mining"),
            severity="critical",
            title=f"督办基准 {n}",
        )
        whistle = whistle_blow(
            actor=duty,
            incident=incident,
            kind=Whistle.Kind.EMERGENCY,
            purpose=Whistle.Purpose.EMERGENCY_RESPONSE,
            departments=[SummonedDepartment(police)],
        )
        ids.append(whistle.summonses.get().pk)
    # Their own deadline jobs (the reminder first) wait half an hour: replaced below.
    ProcrastinateJob.objects.filter(queue_name="deadlines", status="todo").delete()
    return ids


def set_deadlines(ids: list[int]) -> None:
    """Deadlines LEAD s from now, SPACING apart, each with its level-1 job deferred for it."""
    from django.db import transaction

    from command import clock
    from incidents.models import Summons
    from incidents.services.deadlines import schedule_deadline_step

    start = clock.now() + timedelta(seconds=LEAD)
    with transaction.atomic():
        for n, summons_id in enumerate(ids):
            deadline = start + timedelta(seconds=n * SPACING)
            Summons.objects.filter(pk=summons_id).update(check_in_deadline=deadline)
            # Step 1 is level 1 at the deadline (step 0, the reminder, is skipped).
            schedule_deadline_step(summons_id, 1, deadline)


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / "bench-escalation-worker.log").open("w")
    whistle = str(Path(sys.executable).parent / "whistle")
    return subprocess.Popen(
        [whistle, "worker"],
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def latencies(ids: list[int], timeout: float) -> list[float]:
    from alerts.models import Notification
    from incidents.models import Summons

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sent = Notification.objects.filter(
            subject_type="summons", subject_id__in=ids, channel="sms", status="sent"
        ).count()
        if sent >= len(ids):
            break
        time.sleep(0.5)
    deadlines = dict(Summons.objects.filter(pk__in=ids).values_list("pk", "check_in_deadline"))
    first: dict[int, float] = {}
    for summons_id, sent_at in Notification.objects.filter(
        subject_type="summons", subject_id__in=ids, channel="sms", status="sent"
    ).values_list("subject_id", "sent_at"):
        late = (sent_at - deadlines[summons_id]).total_seconds() * 1000
        first[summons_id] = min(first.get(summons_id, late), late)
    missing = len(ids) - len(first)
    if missing:
        raise RuntimeError(f"{missing} of {len(ids)} summonses sent no SMS in {timeout:.0f} s")
    return list(first.values())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summonses", type=int, default=150)
    args = parser.parse_args(argv)
    url = database_url(DATABASE)
    progress(f"database {DATABASE} (fresh)")
    drop_database(url)
    prepare_demo(url)
    ids = prepare(args.summonses)
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gateway = f"http://127.0.0.1:{server.server_address[1]}/"
    floor = gateway_floor(gateway)
    worker = start_worker({**sms_env(gateway), "DATABASE_URL": url})
    try:
        set_deadlines(ids)
        progress(f"{len(ids)} summonses overdue {SPACING:g} s apart from {LEAD:g} s on")
        figures = latencies(ids, timeout=LEAD + len(ids) * SPACING + 30)
    finally:
        worker.terminate()
        worker.wait(30)
        server.shutdown()
    p50, p99 = percentile(figures, 0.5), percentile(figures, 0.99)
    verdict = "PASS" if p99 < TARGET_P99_MS else "FAIL"
    print(
        f"ceiling: SMS gateway round trip p50 {statistics.median(floor):.2f} ms, "
        f"p99 {percentile(floor, 0.99):.2f} ms"
    )
    print(
        f"[{len(figures)} summonses] mean {statistics.mean(figures):.0f} ms, max "
        f"{max(figures):.0f} ms, min {min(figures):.0f} ms | target p99 < "
        f"{TARGET_P99_MS:.0f} ms past the deadline: {verdict}"
    )
    print(
        f"escalation: overdue → first notification sent p50 {p50:.0f} ms, p99 {p99:.0f} ms "
        f"over {len(figures)} summonses"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
