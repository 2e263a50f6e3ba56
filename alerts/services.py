"""Services that change alerts. Each writes a timeline row and broadcasts on commit."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from psycopg.types.json import Jsonb

from alerts.rules import AlertSpec
from command import realtime
from command.incidents.services import timeline_record

_UPSERT = """
INSERT INTO alerts_alert (township_id, category_id, severity, status, source, title, device_id,
                          grid_id, dedupe_key, count, first_seen, last_seen, detail)
VALUES (%s, (SELECT id FROM org_category WHERE code = %s), %s, 'new', %s, %s, %s, %s, %s, 1,
        %s, %s, %s)
ON CONFLICT (township_id, dedupe_key) WHERE status IN ('new', 'acknowledged')
DO UPDATE SET count = alerts_alert.count + 1,
              last_seen = GREATEST(alerts_alert.last_seen, EXCLUDED.last_seen),
              detail = EXCLUDED.detail
RETURNING id, (xmax = 0) AS created, count,
          (SELECT code FROM org_township WHERE id = alerts_alert.township_id)
"""


def alert_raise(*, spec: AlertSpec, source: str = "mqtt") -> tuple[int, bool]:
    """Raise an alert or count a repeat of the open one with the same key.

    Race-safe across ingest workers: the partial unique index decides, not a read-then-write.
    Returns ``(alert_id, created)``.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _UPSERT,
            [
                spec.township_id,
                spec.category_code,
                spec.severity,
                spec.source,
                spec.title,
                spec.device_id,
                spec.grid_id,
                spec.dedupe_key,
                spec.time,
                spec.time,
                Jsonb(spec.detail or {}),
            ],
        )
        alert_id, created, count, township = cursor.fetchone()
        action = "alert.raised" if created else "alert.updated"
        after: dict[str, Any] = {"status": "new", "count": count, "severity": spec.severity}
        timeline_record(
            township_id=spec.township_id,
            subject_type="alert",
            subject_id=alert_id,
            action=action,
            source=source,
            after=after,
            time=spec.time,
        )
        realtime.broadcast_on_commit(
            realtime.board_group(township),
            {"type": action, "alert_id": alert_id},
        )
    return alert_id, created
