"""Jobs are deferred in the transaction of the change that causes them, in the web process
(procrastinate's Django connector) and in the worker (whose app has a pool of its own)."""

from __future__ import annotations

import contextlib

import psycopg
import pytest
from django.db import connection, transaction
from procrastinate.contrib.django import app

from command import jobs
from tests.incidents.test_deadlines import database_url

pytestmark = pytest.mark.django_db(transaction=True)

TASK = "incidents.tasks.summons_page"


def seen_from_outside(lock: str) -> bool:
    with psycopg.connect(database_url()) as other:
        row = other.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = %s", [lock]
        ).fetchone()
        return bool(row[0])


@contextlib.contextmanager
def as_in_the_worker():
    """The connector the worker runs with (command.worker), its pool open, for the block."""
    with app.replace_connector(app.connector.get_worker_connector()):
        app.open()
        try:
            yield
        finally:
            app.close()


@pytest.mark.parametrize("place", ["web", "worker"])
def test_a_job_commits_with_the_change_that_defers_it_or_not_at_all(place):
    context = as_in_the_worker() if place == "worker" else contextlib.nullcontext()
    with context:
        with transaction.atomic():
            jobs.defer(TASK, queueing_lock=f"defer-test-{place}-1", summons_id=0, step=0)
            # Not visible to anyone (a worker) before the change commits …
            assert not seen_from_outside(f"defer-test-{place}-1")
        assert seen_from_outside(f"defer-test-{place}-1")
        # … and gone with it when it rolls back.
        with contextlib.suppress(RuntimeError), transaction.atomic():
            jobs.defer(TASK, queueing_lock=f"defer-test-{place}-2", summons_id=0, step=0)
            raise RuntimeError("the change failed")
        assert not seen_from_outside(f"defer-test-{place}-2")
    assert connection.connection is not None
