"""The hand-over from paho's thread is bounded: a slow database stops reading, memory stays flat."""

import threading

from streams.mqtt.client import MessageBuffer


def test_put_blocks_when_full_until_the_batcher_takes():
    buffer = MessageBuffer(limit=3)
    for i in range(3):
        buffer.put((1, i))
    blocked = threading.Event()
    done = threading.Event()

    def producer() -> None:
        blocked.set()
        buffer.put((1, 3))
        done.set()

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    assert blocked.wait(5)
    assert not done.wait(0.3), "put must wait while the buffer is full"
    assert len(buffer) == 3
    assert buffer.take(2, first_wait=1, fill_wait=0) == [(1, 0), (1, 1)]
    assert done.wait(5), "put must go on once there is room"
    assert buffer.take(10, first_wait=1, fill_wait=0) == [(1, 2), (1, 3)]


def test_take_waits_for_the_first_item_then_returns_what_is_there():
    buffer = MessageBuffer(limit=10)
    assert buffer.take(5, first_wait=0.05, fill_wait=0) == []
    buffer.put((1, "a"))
    assert buffer.take(5, first_wait=1, fill_wait=0.01) == [(1, "a")]


def test_close_releases_a_blocked_producer():
    buffer = MessageBuffer(limit=1)
    buffer.put((1, 0))
    done = threading.Event()
    thread = threading.Thread(target=lambda: (buffer.put((1, 1)), done.set()), daemon=True)
    thread.start()
    buffer.close()
    assert done.wait(5)
