"""`whistle`: demo, serve, ingest, worker, simulate, and every Django management command."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import secrets
import sys
import threading
from collections.abc import Callable, Sequence

log = logging.getLogger("whistle.cli")

OWN_COMMANDS = ("demo", "serve", "ingest", "worker", "simulate", "healthcheck")
NEEDS_MQTT = ("demo", "ingest", "simulate")


def say(message: str) -> None:
    print(message, flush=True)


def _ensure_mqtt(command: str) -> object | None:
    """Start the embedded broker when MQTT_URL is unset; returns it so the caller can stop it."""
    if os.environ.get("MQTT_URL") or command not in NEEDS_MQTT:
        return None
    from command import embedded

    # amqtt speaks MQTT 3.1.1 only.
    os.environ["MQTT_PROTOCOL"] = "3.1.1"
    running = embedded.running_embedded_broker_url()
    if running and command != "demo":
        os.environ["MQTT_URL"] = running
        say(f"MQTT: using the embedded broker another whistle process runs at {running}")
        return None
    broker = embedded.EmbeddedBroker().start()
    os.environ["MQTT_URL"] = broker.url
    say(f"MQTT: MQTT_URL is not set; embedded broker listening on {broker.url}")
    return broker


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "command.settings")
    import django

    django.setup()
    from django.conf import settings

    if not os.environ.get("DATABASE_URL"):
        say("PostgreSQL: DATABASE_URL is not set; using the embedded server in the data dir")
    if not settings.REDIS_URL:
        say(
            "Channel layer: REDIS_URL is not set; using the in-memory layer "
            "(single process only: web, ingest and worker must run in this one process)"
        )


def _thread(name: str, target: Callable[[], None]) -> threading.Thread:
    def runner() -> None:
        try:
            target()
        except Exception:
            log.exception("%s stopped with an error", name)
        finally:
            from django.db import connection

            connection.close()

    thread = threading.Thread(target=runner, name=name, daemon=True)
    thread.start()
    return thread


def serve(host: str, port: int, on_ready: Callable[[], None] | None = None) -> None:
    """Daphne in this process, until Ctrl-C / SIGTERM."""
    import asyncio

    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server  # installs the asyncio reactor

    from command import realtime
    from command.asgi import application

    realtime.set_server_loop(asyncio.get_event_loop())
    server = Server(
        application=application,
        endpoints=build_endpoint_description_strings(host=host, port=port),
        signal_handlers=True,
        verbosity=0,
        ready_callable=on_ready,
        server_name="whistle",
    )
    server.run()


def demo_passwords() -> dict[str, str]:
    """Demo passwords are random per data dir, kept there so a restart prints the same ones."""
    from command import embedded
    from demo.data import DEMO_USERNAMES

    path = embedded.data_dir() / "demo-accounts.json"
    kept = json.loads(path.read_text()) if path.exists() else {}
    if all(name in kept for name in DEMO_USERNAMES):
        return kept
    # An account the demo gained since the file was written gets a password of its own.
    passwords = {name: kept.get(name) or secrets.token_urlsafe(9) for name in DEMO_USERNAMES}
    path.write_text(json.dumps(passwords, indent=2))
    path.chmod(0o600)
    return passwords


def _demo_mail() -> None:
    """Without a mail server configured, the demo's pages by e-mail are written as files in the
    data directory (``mail/``), where they can be read, instead of failing on localhost:25."""
    if os.environ.get("EMAIL_HOST") or os.environ.get("EMAIL_BACKEND"):
        return
    from command import embedded

    folder = embedded.data_dir() / "mail"
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.filebased.EmailBackend"
    os.environ["EMAIL_FILE_PATH"] = str(folder)
    say(f"E-mail: EMAIL_HOST is not set; the demo's e-mails are written to {folder}")


def cmd_demo(args: argparse.Namespace) -> int:
    from django.core.management import call_command

    from demo.past import seed_demo_past
    from demo.seed import seed_demo
    from streams.mqtt.client import IngestWorker
    from streams.simulate import Simulator

    say("Preparing the database (migrate)…")
    call_command("migrate", interactive=False, verbosity=0)
    say("Seeding the demo township 清水镇 (Qingshui Town)…")
    summary = seed_demo(passwords=demo_passwords())
    past = seed_demo_past()
    if past.written:
        say(
            f"Wrote the last {(past.end - past.start).days} days of its past in"
            f" {past.seconds:.1f} s: {past.incidents} incidents, {past.alerts} alerts,"
            f" {past.summonses} summonses, {past.readings:,} readings."
        )

    stop_worker = threading.Event()
    ingest_worker = IngestWorker(progress=lambda line: log.info(line), progress_every=30)
    simulator = Simulator(township=summary.township, camera_interval=args.camera_interval)
    from command.worker import run_worker

    threads = [
        _thread("ingest", ingest_worker.run),
        _thread("worker", lambda: run_worker(stop_worker)),
    ]
    if not args.no_simulate:
        ingest_worker.wait_subscribed(10)
        threads.append(_thread("simulate", simulator.run))

    url = f"http://{args.host}:{args.port}/"

    def ready() -> None:
        say("")
        say(f"Whistle demo is running: open {url}")
        say("Demo accounts (username / password / role):")
        for username, role, password in summary.accounts:
            say(f"  {username:<11} {password or '(unchanged)':<14} {role}")
        say("Sign in as 'duty' to watch the duty board. Ctrl-C stops everything.")

    try:
        serve(args.host, args.port, on_ready=ready)
    finally:
        say("Stopping…")
        gc.disable()  # see RUNS_DAPHNE: no collection of daphne's leftovers while stopping
        simulator.stop()
        ingest_worker.stop()
        stop_worker.set()
        for thread in threads:
            thread.join(10)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import daphne.server  # noqa: F401  (imported before the freeze below, with the rest)

    # What start-up allocated (Django, the apps, daphne: most of the heap) lives as long as
    # the process: out of the collector's sight, a full collection walks only what serving
    # made. Walking it all paused every thread of a serve process for 150-260 ms every 40 s
    # or so in bench-district, each pause a stall of every board's frames.
    gc.collect()
    gc.freeze()
    serve(args.host, args.port, on_ready=lambda: say(f"serving on http://{args.host}:{args.port}/"))
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    import signal

    from streams.mqtt.client import IngestWorker, tune_garbage_collector

    worker = IngestWorker(
        args.client_id, progress=say, progress_every=args.progress_every, events=False
    )
    # Camera events on a session of their own, in a thread: under a backlog of readings they
    # waited in the broker's queue behind it (bench-district's alert→board).
    events = IngestWorker(
        f"{worker.client_id}-events",
        progress=lambda line: say(line.replace("ingest:", "ingest (camera events):", 1)),
        progress_every=args.progress_every,
        events=True,
    )
    tune_garbage_collector()

    def stop(*_: object) -> None:
        worker.stop()
        events.stop()

    signal.signal(signal.SIGTERM, stop)
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr=args.metrics_host)
        say(f"ingest: Prometheus metrics on http://{args.metrics_host}:{args.metrics_port}/metrics")
    say(f"ingest: connecting to {worker.config.display} as {worker.client_id} (readings, presence)")
    say(f"ingest: and as {events.client_id} (camera events)")

    def run_events() -> None:
        events.run()
        if events.failure:
            worker.stop()  # one process, one exit status: compose restarts both

    lane = _thread("ingest-events", run_events)
    try:
        worker.run()
    except KeyboardInterrupt:
        pass
    stop()
    lane.join(10)
    say(worker.progress_line(events))
    failure = worker.failure or events.failure
    if failure:
        say(f"ingest: stopped: {failure}")
        return 1
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from command.worker import run_worker

    queues = [q.strip() for q in (args.queues or "").split(",") if q.strip()] or None
    say(
        "worker: running jobs from the PostgreSQL queue, "
        + (f"queues {','.join(queues)}" if queues else "every queue in three pools")
        + " (Ctrl-C stops)"
    )
    run_worker(queues=queues, concurrency=args.concurrency)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    if args.district:
        return _simulate_district(args)
    import signal

    from streams.simulate import Simulator

    simulator = Simulator(
        township=args.township,
        camera_interval=args.camera_interval,
        telemetry_interval=args.telemetry_interval,
    )
    signal.signal(signal.SIGTERM, lambda *_: simulator.stop())
    try:
        simulator.run()
    except KeyboardInterrupt:
        simulator.stop()
    say(f"simulate: published {simulator.published} messages")
    return 0


def _simulate_district(args: argparse.Namespace) -> int:
    import signal
    import time
    from pathlib import Path

    from demo.district import seed_district, township_code
    from streams.simulate import DistrictPlan, DistrictSimulator, load_district

    if args.seed:
        began = time.monotonic()
        summary = seed_district(
            townships=args.townships, sensors=args.sensors, cameras=args.cameras
        )
        say(
            f"simulate: seeded the district {summary.district} in {time.monotonic() - began:.1f} s"
            f" ({summary.created} rows added)"
        )
    codes = [township_code(n) for n in range(1, args.townships + 1)]
    from django.conf import settings

    plan = DistrictPlan(
        townships=load_district(codes),
        sensor_interval=args.sensor_interval,
        burst_every=args.burst_every,
        prefix=settings.MQTT_TOPIC_PREFIX,
        township_logins=args.township_logins,
    )
    simulator = DistrictSimulator(
        plan, processes=args.processes, progress=say, progress_every=args.progress_every
    )
    signal.signal(signal.SIGTERM, lambda *_: simulator.stop())
    say(
        f"simulate: {len(codes)} townships, {plan.sensors} sensors every {plan.sensor_interval:g} s"
        f" = {plan.offered_rate:.0f} readings/s offered, camera bursts about every"
        f" {plan.burst_every:g} s per township, {simulator.processes} publisher processes"
    )
    began = time.monotonic()
    try:
        reports = simulator.run(duration=args.duration)
    except KeyboardInterrupt:
        simulator.stop()
        reports = simulator.reports
    seconds = time.monotonic() - began
    summary_json = simulator.report_json()
    if args.report:
        Path(args.report).write_text(json.dumps(summary_json))
    acked = int(summary_json["acked"])  # type: ignore[call-overload]
    say(
        f"simulate: published {summary_json['published']} messages in {seconds:.1f} s"
        f" ({acked / seconds if seconds else 0:.0f} msg/s acknowledged),"
        f" {len(summary_json['camera_events'])} camera events"  # type: ignore[arg-type]
    )
    errors = [report.error for report in reports if report.error]
    for error in errors:
        say(f"simulate: a publisher failed: {error}")
    return 1 if errors or len(reports) < simulator.processes else 0


def cmd_healthcheck(args: argparse.Namespace) -> int:
    from command import health

    alive, line = health.check(args.process, stale_after=args.stale_after)
    say(line)
    return 0 if alive else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whistle",
        description="Whistle township command center. Any other command is a Django "
        "management command (migrate, createsuperuser, seed-demo …).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    port = int(os.environ.get("PORT", "8000"))
    demo = sub.add_parser("demo", help="everything in one process, with the demo township")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=port)
    demo.add_argument("--no-simulate", action="store_true", help="do not run the gateways")
    demo.add_argument("--camera-interval", type=float, default=4.0, help="seconds, on average")
    demo.set_defaults(func=cmd_demo)
    serve_parser = sub.add_parser("serve", help="web and websockets (daphne)")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=port)
    serve_parser.set_defaults(func=cmd_serve)
    ingest_parser = sub.add_parser("ingest", help="MQTT ingest worker")
    ingest_parser.add_argument("--client-id", default=None)
    ingest_parser.add_argument("--progress-every", type=float, default=5.0)
    ingest_parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("WHISTLE_METRICS_PORT") or 0),
        help="serve Prometheus metrics on this port (0: off)",
    )
    ingest_parser.add_argument(
        "--metrics-host", default=os.environ.get("WHISTLE_METRICS_HOST", "127.0.0.1")
    )
    ingest_parser.set_defaults(func=cmd_ingest)
    worker = sub.add_parser(
        "worker", help="job queue worker (deadlines, webhooks, notifications, sweeps)"
    )
    worker.add_argument(
        "--queues",
        default=os.environ.get("WHISTLE_WORKER_QUEUES", ""),
        help="comma-separated queues to serve (deadlines,default; deliveries; notifications); "
        "default: all of them, deadlines, deliveries and notifications in separate pools",
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="jobs at once (default: 2 for deadlines, WHISTLE_DELIVERY_CONCURRENCY for deliveries)",
    )
    worker.set_defaults(func=cmd_worker)
    healthcheck = sub.add_parser(
        "healthcheck", help="exit 0 if the process beat recently (compose's healthcheck)"
    )
    healthcheck.add_argument("process", choices=["ingest", "worker"])
    healthcheck.add_argument("--stale-after", type=float, default=60.0, help="seconds")
    healthcheck.set_defaults(func=cmd_healthcheck)
    simulate = sub.add_parser(
        "simulate", help="the demo township's gateways, or a whole district's (--district)"
    )
    simulate.add_argument("--township", default="qingshui")
    simulate.add_argument("--camera-interval", type=float, default=4.0)
    simulate.add_argument("--telemetry-interval", type=float, default=15.0)
    simulate.add_argument(
        "--district",
        action="store_true",
        help="the gateways of a simulated district (townships sim-01 …, demo/district.py)",
    )
    simulate.add_argument("--townships", type=int, default=30)
    simulate.add_argument("--sensors", type=int, default=1000, help="per township")
    simulate.add_argument("--cameras", type=int, default=50, help="per township")
    simulate.add_argument(
        "--sensor-interval", type=float, default=10.0, help="seconds between a sensor's readings"
    )
    simulate.add_argument(
        "--burst-every",
        type=float,
        default=30.0,
        help="seconds between a township's camera bursts, on average",
    )
    simulate.add_argument(
        "--processes", type=int, default=2, help="publisher processes (one core each at most)"
    )
    simulate.add_argument(
        "--seed", action="store_true", help="create the district's townships first (idempotent)"
    )
    simulate.add_argument(
        "--township-logins",
        action="store_true",
        help="log each township's gateways in as the township (its code as MQTT username, "
        "MQTT_URL's password), as deploy/mosquitto/acl expects",
    )
    simulate.add_argument("--duration", type=float, default=None, help="seconds, then stop")
    simulate.add_argument("--progress-every", type=float, default=5.0)
    simulate.add_argument(
        "--report", default="", help="write what was published to this JSON file at the end"
    )
    simulate.set_defaults(func=cmd_simulate)
    return parser


# Commands that run daphne in this process. When daphne stops it leaves the coroutines of
# finished connections suspended on its loop; collecting them during the interpreter's
# teardown crashed now and then (a segfault in the collector, in asyncio's Queue.get, seen
# under load in the demo's shutdown test). Everything is stopped by then, so these commands
# run the exit handlers (the embedded PostgreSQL stops in one) and leave without a teardown.
RUNS_DAPHNE = ("demo", "serve")


def _exit_now(code: int) -> None:
    import atexit

    gc.disable()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "command.settings")
    if not argv or argv[0] in ("-h", "--help") or argv[0] in OWN_COMMANDS:
        args = build_parser().parse_args(argv)
        broker = _ensure_mqtt(args.command)
        if args.command == "demo":
            _demo_mail()
        _setup_django()
        logging.getLogger("whistle").setLevel(logging.INFO)
        try:
            code = int(args.func(args) or 0)
        except KeyboardInterrupt:
            code = 130
        finally:
            if broker is not None:
                broker.stop()  # type: ignore[attr-defined]
        if args.command in RUNS_DAPHNE:
            _exit_now(code)
        return code
    from django.core.management import execute_from_command_line

    # `whistle seed-demo` reads better than seed_demo; Django's names use underscores.
    if argv and not argv[0].startswith("-"):
        argv[0] = argv[0].replace("-", "_")
    execute_from_command_line(["whistle", *argv])
    return 0
