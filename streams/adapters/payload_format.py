"""What a payload format declares, once: its topics, its parser, how its device is found and what
its messages are stored as (like Home Assistant MQTT's table of payload schemas).

An adapter module declares its formats in a ``FORMATS`` tuple; streams.adapters.registry lists
the modules, and ingest, the subscriptions of ``whistle ingest`` and docs/payloads.md read it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams.adapters.base import CameraEvent, Detection, Presence
from streams.mqtt.topics import DEVICE, TOWNSHIP, TOWNSHIP_OR_NONE, TopicPattern


class Becomes(enum.Enum):
    """What a format's messages are stored as, and so what its parser returns."""

    READINGS = "readings"  # a list of Reading
    EVENTS = "camera events"  # a CameraEvent, or a Detection when the payload names the camera
    PRESENCE = "presence"  # a Presence; also stored as an online/offline event


@dataclass(frozen=True, slots=True)
class DeviceInTopic:
    """The topic names the township and the device's code: ``{township}`` and ``{device}``."""

    @property
    def described(self) -> str:
        return "its code is `{device}` in the topic"


@dataclass(frozen=True, slots=True)
class DeviceInPayload:
    """The payload names the device (a camera's name in its NVR): the device is the one of the
    topic's township whose ``metadata[metadata_key]`` is that name, so one township's sender
    cannot reach another's devices. The parser returns a :class:`Detection`."""

    metadata_key: str
    # For a topic that names no township (``{township?}`` empty, or no such level): the setting
    # that names the one township of the deployment, and the dead letter's reason when it is unset.
    township_setting: str = ""
    without_township: str = "the topic names no township"

    def __post_init__(self) -> None:
        # It becomes a JSON key lookup (metadata__<key>__in): a plain name, nothing else.
        if not self.metadata_key.isidentifier():
            raise ValueError(f"metadata key {self.metadata_key!r} is not a plain name")

    @property
    def described(self) -> str:
        text = f"the township's device whose `metadata.{self.metadata_key}` the payload names"
        if self.township_setting:
            text += f" (a topic without township: the township in `{self.township_setting}`)"
        return text


DeviceLookup = DeviceInTopic | DeviceInPayload

# What a parser returns for each kind of format; ingest checks it (a broken adapter's message is
# a dead letter, not a stuck batch).
_RETURNS: dict[Becomes, type] = {
    Becomes.READINGS: list,
    Becomes.EVENTS: CameraEvent,
    Becomes.PRESENCE: Presence,
}


@dataclass(frozen=True, eq=False)
class PayloadFormat:
    """One payload format. ``parse(payload, received_at)`` is pure and never raises: it returns
    what ``becomes`` says, ``Rejected(reason)``, or None for a valid message with nothing to
    store."""

    name: str
    topics: tuple[str, ...]  # TopicPattern texts; the first that matches a topic wins
    parse: Callable[[bytes, datetime], Any]
    device: DeviceLookup
    becomes: Becomes
    summary: str  # one line for the table in docs/payloads.md
    patterns: tuple[TopicPattern, ...] = field(init=False)
    returns: type = field(init=False)  # what ``parse`` returns when it accepts a message
    named: bool = field(init=False)  # whether the payload names the device

    def __post_init__(self) -> None:
        patterns = tuple(TopicPattern.parse(text) for text in self.topics)
        if not patterns:
            raise ValueError(f"format {self.name!r} declares no topic")
        named = isinstance(self.device, DeviceInPayload)
        for pattern in patterns:
            captures = pattern.captures
            if named:
                if DEVICE in captures:
                    raise ValueError(f"{pattern.text}: the payload names the device, not the topic")
            elif not ({TOWNSHIP, DEVICE} <= captures and TOWNSHIP_OR_NONE not in captures):
                raise ValueError(f"{pattern.text}: needs {{township}} and {{device}}")
        if named and self.becomes is not Becomes.EVENTS:
            raise ValueError(f"format {self.name!r}: a payload that names its camera is an event")
        object.__setattr__(self, "patterns", patterns)
        object.__setattr__(self, "returns", Detection if named else _RETURNS[self.becomes])
        object.__setattr__(self, "named", named)

    def __repr__(self) -> str:
        return f"<PayloadFormat {self.name}>"
