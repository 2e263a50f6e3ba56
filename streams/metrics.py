"""Prometheus metrics of the ingest path. `whistle ingest --metrics-port` serves them; the web
process serves its own registry at /metrics (in `whistle demo` that includes ingest)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_RECEIVED = Counter(
    "whistle_ingest_messages_received", "MQTT messages handed to ingest by the client"
)
MESSAGES_STORED = Counter(
    "whistle_ingest_messages_stored", "Messages committed to the database and acknowledged"
)
DEAD_LETTERS = Counter("whistle_ingest_dead_letters", "Messages kept as dead letters")
READINGS_STORED = Counter("whistle_ingest_readings_stored", "New sensor readings stored")
EVENTS_STORED = Counter("whistle_ingest_events_stored", "New device events stored")
DUPLICATES = Counter("whistle_ingest_duplicates", "Redelivered events that changed nothing")
ALERTS_RAISED = Counter("whistle_ingest_alerts_raised", "Alerts raised by ingest")
BATCH_SIZE = Histogram(
    "whistle_ingest_batch_size",
    "Messages per stored batch",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000),
)
BATCH_SECONDS = Histogram(
    "whistle_ingest_batch_seconds",
    "Time to parse, store and commit one batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
STORE_FAILURES = Counter("whistle_ingest_store_failures", "Batches that failed and were retried")
BROKER_STORED = Gauge(
    "whistle_mqtt_broker_stored_messages",
    "Messages the broker holds (retained and queued for sessions), from $SYS where it reports it",
)
