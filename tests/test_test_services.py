"""The services the tests start themselves when the machine does not provide them."""

from __future__ import annotations

from pathlib import Path

import redis

from tests.brokers import redis_installed, redis_server
from tests.conftest import need_service


def test_own_redis_answers_and_is_gone_afterwards(tmp_path: Path) -> None:
    """What `redis_url` falls back to when REDIS_URL is unset or does not answer (a fresh
    clone's `make test`): a Redis of the tests' own on a free local port."""
    if not redis_installed():
        need_service("redis-server is not installed (apt-get install redis-server)")
    with redis_server(tmp_path) as url:
        client = redis.Redis.from_url(url, socket_timeout=5)
        assert client.ping()
        client.set("whistle-test", "1")
        assert client.get("whistle-test") == b"1"
        client.close()
    gone = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        gone.ping()
    except redis.ConnectionError:
        pass
    else:
        raise AssertionError(f"the tests' Redis at {url} still answers after the block")
    finally:
        gone.close()
