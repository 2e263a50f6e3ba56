"""Topic patterns the payload formats declare (streams.adapters.registry), matched level by level
without regular expressions, and the downlink topic (docs/payloads.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Longest codes the organisation's tables hold (org.Township.code, org.Device.code): a longer
# level names nothing, so it is refused here rather than looked up.
MAX_TOWNSHIP = 40
MAX_DEVICE = 64

# The levels a pattern captures. ``{township?}`` may be empty: the topic names no township (Frigate
# with a topic_prefix of ``frigate/`` publishes ``frigate//events``).
TOWNSHIP = "township"
TOWNSHIP_OR_NONE = "township?"
DEVICE = "device"
_LIMITS = {TOWNSHIP: MAX_TOWNSHIP, TOWNSHIP_OR_NONE: MAX_TOWNSHIP, DEVICE: MAX_DEVICE}


def fits(level: str, limit: int) -> bool:
    return 0 < len(level) <= limit and "\x00" not in level and "/" not in level


@dataclass(frozen=True, slots=True)
class TopicPattern:
    """A topic with named levels: ``{MQTT_TOPIC_PREFIX}/{township}/camera/{device}/event``.

    A name in capitals is a setting, replaced by its value (which may span several levels); a
    pattern whose setting is empty is switched off. ``{township}``, ``{township?}`` and
    ``{device}`` are the levels that name the township and the device; anything else is literal.
    """

    text: str
    levels: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> TopicPattern:
        levels = tuple(text.split("/"))
        for level in levels:
            name = _placeholder(level)
            if name is None:
                if not level or "+" in level or "#" in level or "{" in level or "}" in level:
                    raise ValueError(f"topic pattern {text!r}: level {level!r} is not a literal")
            elif not (name in _LIMITS or name.isupper()):
                raise ValueError(f"topic pattern {text!r}: unknown placeholder {{{name}}}")
        return cls(text, levels)

    @property
    def settings(self) -> tuple[str, ...]:
        return tuple(
            name for level in self.levels if (name := _placeholder(level)) and name.isupper()
        )

    @property
    def captures(self) -> frozenset[str]:
        return frozenset(name for level in self.levels if (name := _placeholder(level)) in _LIMITS)

    def resolve(self, values: Mapping[str, str]) -> ResolvedPattern | None:
        """The pattern with its settings' values in, or None if one of them is empty."""
        levels: list[str] = []
        captures: list[tuple[int, str]] = []
        for level in self.levels:
            name = _placeholder(level)
            if name is None:
                levels.append(level)
            elif name in _LIMITS:
                captures.append((len(levels), name))
                levels.append("+")
            else:
                value = values.get(name, "")
                if not value:
                    return None
                levels.extend(value.split("/"))
        captured = {index for index, _ in captures}
        return ResolvedPattern(
            filter="/".join(levels),
            size=len(levels),
            literals=tuple(
                (index, level) for index, level in enumerate(levels) if index not in captured
            ),
            captures=tuple(captures),
        )

    def display(self, values: Mapping[str, str]) -> str:
        """For people: settings filled in, the captured levels named."""
        shown = []
        for level in self.levels:
            name = _placeholder(level)
            if name is None:
                shown.append(level)
            elif name in _LIMITS:
                shown.append("{" + name.rstrip("?") + "}")
            else:
                shown.append(values.get(name, "") or level)
        return "/".join(shown)


@dataclass(frozen=True, slots=True)
class ResolvedPattern:
    filter: str  # the MQTT subscription filter: captured levels are ``+``
    size: int
    literals: tuple[tuple[int, str], ...]
    captures: tuple[tuple[int, str], ...]

    def keys(self, levels: list[str]) -> tuple[str, str] | None:
        """(township, device) a topic split into ``levels`` names, or None if it does not
        match; either is ``""`` where the pattern captures none."""
        if len(levels) != self.size:
            return None
        for index, literal in self.literals:
            if levels[index] != literal:
                return None
        township = device = ""
        for index, name in self.captures:
            level = levels[index]
            if name == TOWNSHIP_OR_NONE and not level:
                continue
            if not fits(level, _LIMITS[name]):
                return None
            if name == DEVICE:
                device = level
            else:
                township = level
        return township, device


def _placeholder(level: str) -> str | None:
    if len(level) > 2 and level[0] == "{" and level[-1] == "}":
        return level[1:-1]
    return None


def dispatch_topic(township: str, department: str, prefix: str = "whistle") -> str:
    return f"{prefix}/{township}/dispatch/{department}"
