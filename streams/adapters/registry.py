"""The payload formats Whistle reads, in one table: ingest dispatches on it, ``whistle ingest``
subscribes to its topics, and docs/payloads.md prints it (tests/streams/test_formats.py checks).

A new format (another camera vendor, another gateway) is a module in streams/adapters that
declares ``FORMATS`` (streams.adapters.payload_format) and one line below.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings

from streams.adapters import frigate, native
from streams.adapters.payload_format import Becomes, PayloadFormat
from streams.mqtt.topics import ResolvedPattern

# The dead letter's reason for a topic no format declares.
UNKNOWN_TOPIC = "topic matches no known format"


@dataclass(frozen=True, slots=True)
class TopicMatch:
    format: PayloadFormat
    township: str  # "" where the topic names none
    device: str  # the device's code; "" where the payload names the device


class Router:
    """The formats' topics with the settings of one moment filled in: topic → match.

    Matches are kept per topic (a deployment has as many topics as devices), so a message costs a
    dict lookup; a topic not seen yet is split once and compared level by level.
    """

    MAX_TOPICS = 65_536

    def __init__(self, formats: list[PayloadFormat], values: dict[str, str]) -> None:
        self._by_size: dict[int, list[tuple[ResolvedPattern, PayloadFormat]]] = {}
        self.subscriptions: list[str] = []
        # What each filter's messages become (events, readings, presence).
        self.becomes: dict[str, Becomes] = {}
        for payload_format in formats:
            for pattern in payload_format.patterns:
                resolved = pattern.resolve(values)
                if resolved is None:
                    continue  # a setting it needs is empty: switched off
                self._by_size.setdefault(resolved.size, []).append((resolved, payload_format))
                if resolved.filter not in self.subscriptions:
                    self.subscriptions.append(resolved.filter)
                    self.becomes[resolved.filter] = payload_format.becomes
        self._matches: dict[str, TopicMatch | None] = {}

    def match(self, topic: str) -> TopicMatch | None:
        try:
            return self._matches[topic]
        except KeyError:
            pass
        found = None
        levels = topic.split("/")
        for pattern, payload_format in self._by_size.get(len(levels), ()):
            keys = pattern.keys(levels)
            if keys is not None:
                found = TopicMatch(payload_format, *keys)
                break
        if len(self._matches) >= self.MAX_TOPICS:
            self._matches.clear()  # a flood of made-up topics must not grow memory for ever
        self._matches[topic] = found
        return found


class Formats:
    """The registry: formats by name, in the order their topics are tried."""

    def __init__(self, *formats: PayloadFormat) -> None:
        self._formats: dict[str, PayloadFormat] = {}
        self._settings: tuple[str, ...] = ()
        self._router: tuple[tuple[str, ...], Router] | None = None
        self._lock = threading.Lock()
        self.register(*formats)

    def register(self, *formats: PayloadFormat) -> None:
        with self._lock:
            for payload_format in formats:
                if payload_format.name in self._formats:
                    raise ValueError(f"a payload format named {payload_format.name!r} exists")
                self._formats[payload_format.name] = payload_format
            self._changed()

    def unregister(self, *names: str) -> None:
        with self._lock:
            for name in names:
                del self._formats[name]
            self._changed()

    def _changed(self) -> None:
        self._settings = tuple(
            sorted(
                {
                    name
                    for payload_format in self._formats.values()
                    for pattern in payload_format.patterns
                    for name in pattern.settings
                }
            )
        )
        self._router = None

    def __getitem__(self, name: str) -> PayloadFormat:
        return self._formats[name]

    def __iter__(self) -> Iterator[PayloadFormat]:
        return iter(list(self._formats.values()))

    def __len__(self) -> int:
        return len(self._formats)

    def router(self) -> Router:
        """The router for the settings as they are now: read once per batch, not per message,
        and not once at start-up (tests and a reconfigured deployment change them)."""
        with self._lock:
            values = tuple(_setting(name) for name in self._settings)
            if self._router is None or self._router[0] != values:
                filled = dict(zip(self._settings, values, strict=True))
                self._router = (values, Router(list(self._formats.values()), filled))
            return self._router[1]

    def match(self, topic: str) -> TopicMatch | None:
        return self.router().match(topic)

    def subscriptions(self, *, events: bool | None = None) -> list[str]:
        """The MQTT topic filters ``whistle ingest`` subscribes to; ``events=True``: only those
        of camera events, ``False``: all the others."""
        router = self.router()
        if events is None:
            return list(router.subscriptions)
        return [f for f in router.subscriptions if (router.becomes[f] is Becomes.EVENTS) == events]

    def table(self) -> str:
        """The formats as a Markdown table, for docs/payloads.md."""
        rows = [
            "| format | topic | device | stored as | what |",
            "| --- | --- | --- | --- | --- |",
        ]
        for payload_format in self:
            values = {
                name: _setting(name)
                for pattern in payload_format.patterns
                for name in pattern.settings
            }
            shown = ", ".join(f"`{pattern.display(values)}`" for pattern in payload_format.patterns)
            rows.append(
                f"| `{payload_format.name}` | {shown} | {payload_format.device.described} "
                f"| {payload_format.becomes.value} | {payload_format.summary} |"
            )
        return "\n".join(rows) + "\n"


def _setting(name: str) -> str:
    return str(getattr(settings, name, "") or "")


FORMATS = Formats(
    *native.FORMATS,
    *frigate.FORMATS,
)
