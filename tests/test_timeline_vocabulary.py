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
