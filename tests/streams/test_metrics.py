import json
import re
import time

import pytest

from streams.models import DeviceEvent
from tests.conftest import wait_for

pytestmark = pytest.mark.services


def sample(client, name: str) -> float:
    body = client.get("/metrics").content.decode()
    found = re.search(rf"^{name} ([0-9.e+]+)$", body, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_metrics_count_what_ingest_did(client, demo_committed, ingest_worker, publish_mqtt):
    received = sample(client, "whistle_ingest_messages_received_total")
    dead = sample(client, "whistle_ingest_dead_letters_total")
    events = sample(client, "whistle_ingest_events_stored_total")
    publish_mqtt("whistle/qingshui/camera/cam-04/event", b"not json")
    payload = {"id": "metrics-1", "ts": int(time.time() * 1000), "label": "garbage"}
    publish_mqtt("whistle/qingshui/camera/cam-04/event", json.dumps(payload))
    wait_for(lambda: DeviceEvent.objects.filter(event_id="metrics-1").exists())
    wait_for(lambda: sample(client, "whistle_ingest_events_stored_total") == events + 1)
    assert sample(client, "whistle_ingest_messages_received_total") == received + 2
    assert sample(client, "whistle_ingest_dead_letters_total") == dead + 1
    assert "whistle_ingest_batch_seconds_bucket" in client.get("/metrics").content.decode()


def test_metrics_need_the_token_from_elsewhere(client, settings, db):
    settings.METRICS_TOKEN = "scrape-secret"
    remote = {"REMOTE_ADDR": "10.1.2.3"}
    assert client.get("/metrics", **remote).status_code == 403
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope", **remote)
    assert wrong.status_code == 403
    good = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret", **remote)
    assert good.status_code == 200 and b"whistle_ingest" in good.content


def test_metrics_relayed_by_a_local_proxy_are_not_local(client, settings, db):
    """A reverse proxy on the same host connects from 127.0.0.1 on behalf of anyone."""
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    relayed = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert relayed.status_code == 403
    forwarded = client.get("/metrics", REMOTE_ADDR="::1", HTTP_FORWARDED="for=203.0.113.9")
    assert forwarded.status_code == 403
    # Once a token is set, this host presents it too.
    settings.METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
