"""The timeline's closed vocabulary: every action has a declared payload, the writer refuses
what is not declared, and the page reads payloads in the reader's language."""

from __future__ import annotations

import pytest
from django.utils import translation

from command.timeline.actions import (
    FIELD_LABELS,
    SCHEMAS,
    Action,
    UndeclaredPayload,
    details,
    label,
    payload_check,
)
from command.timeline.records import Row


def test_every_action_declares_its_payload_and_every_key_has_a_label():
    assert set(SCHEMAS) == set(Action)
    keys = set()
    for before, after in SCHEMAS.values():
        keys |= set(before.__annotations__) | set(after.__annotations__)
    assert keys - {"status"} <= set(FIELD_LABELS), keys - set(FIELD_LABELS)


def test_the_writer_refuses_an_unknown_action_a_stray_key_and_the_wrong_subject():
    with pytest.raises(UndeclaredPayload, match="unknown timeline action"):
        payload_check("alert.exploded", None, None)
    with pytest.raises(UndeclaredPayload, match=r"alert.dismissed after .*'colour'"):
        payload_check(Action.ALERT_DISMISSED, {"status": "new"}, {"colour": "red"})
    assert (
        payload_check("summons.escalated", {"level": 0}, {"level": 1}) is Action.SUMMONS_ESCALATED
    )
    row = Row(
        township_id=1, subject_type="alert", subject_id=1, action="summons.done", source="web"
    )
    with pytest.raises(ValueError, match="not an action on a alert"):
        row.entry()


def test_labels_and_details_read_in_the_readers_language():
    with translation.override("zh-hans"):
        assert label("alert.dismissed") != "Alert dismissed"
        assert details({"status": "dismissed", "dismiss_reason": "误报"}) == [("原因", "误报")]
    with translation.override("en"):
        assert label("alert.dismissed") == "Alert dismissed"
        assert details({"dismiss_reason": "false alarm"}) == [("reason", "false alarm")]
    assert label("something.new") == "something.new"  # a row from a newer release reads as is


def test_every_dotted_name_in_the_code_is_an_action_or_a_broadcast_type():
    """A timeline action spelled by hand somewhere (the replay year's generator included) must
    be one of the vocabulary's; the only other dotted names are the broadcast event types."""
    import ast
    from pathlib import Path

    from command.realtime import EVENT_TYPES
    from command.timeline.actions import Subject
    from tests.test_layers import PACKAGES

    root = Path(__file__).resolve().parent.parent
    subjects = tuple(f"{subject.value}." for subject in Subject)
    known = set(Action) | EVENT_TYPES
    stray = []
    for folder in (*PACKAGES, "bench"):
        for path in (root / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            # Logger names and signal ids ("whistle.worker") are names of another kind.
            other = {
                id(argument)
                for call in ast.walk(tree)
                if isinstance(call, ast.Call)
                for argument in (
                    [*call.args]
                    if getattr(call.func, "attr", getattr(call.func, "id", "")) == "getLogger"
                    else [k.value for k in call.keywords if k.arg == "dispatch_uid"]
                )
            }
            for node in ast.walk(tree):
                if (
                    id(node) not in other
                    and isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and node.value.startswith(subjects)
                    and node.value.count(".") == 1
                    and not node.value.endswith(".")
                    and node.value.replace(".", "").replace("_", "").isalpha()
                    and node.value not in known
                ):
                    stray.append(f"{path.relative_to(root)}:{node.lineno} {node.value}")
    assert not stray, "\n".join(stray)
