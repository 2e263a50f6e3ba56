"""The append-only timeline: one row for every state change of an alert, incident, whistle or
summons (Grafana OnCall's ``AlertGroupLogRecord``). Replay, the timeline page, CAP, the API and
assessment read it; ``command.timeline.records`` is its one writer."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from command.timeline.actions import Action, Subject


class TimelineEntry(models.Model):
    class Source(models.TextChoices):
        WEB = "web", _("Web")
        API = "api", _("API")
        MQTT = "mqtt", _("MQTT")
        SYSTEM = "system", _("System")

    # The time column is part of the key so the table can become a hypertable (see
    # streams.timeseries); the uuid makes two entries in the same microsecond distinct.
    pk = models.CompositePrimaryKey("time", "id")
    id = models.UUIDField(default=uuid.uuid4, editable=False)
    time = models.DateTimeField(_("time"), default=timezone.now)
    township = models.ForeignKey(
        "org.Township", verbose_name=_("township"), on_delete=models.CASCADE, db_constraint=False
    )
    subject_type = models.CharField(_("subject"), max_length=24, choices=Subject.choices)
    subject_id = models.BigIntegerField(_("subject id"))
    action = models.CharField(_("action"), max_length=48, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_constraint=False,
    )
    source = models.CharField(_("source"), max_length=8, choices=Source.choices)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)

    class Meta:
        verbose_name = _("timeline entry")
        verbose_name_plural = _("timeline")
        # The table and index kept their names when the model moved here from incidents.
        db_table = "incidents_timelineentry"
        indexes = [
            models.Index(
                fields=["subject_type", "subject_id", "time"], name="incidents_t_subject_2e66cb_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.action} {self.subject_type}#{self.subject_id}"


# Rows written by one change share its moment. Within a moment they are read in the order the
# change made them: the whistle, then its summonses, then the incident's new status (dispatched,
# on site), then the alerts it absorbed (escalated). SQL for ORDER BY after ``time``.
TIMELINE_TIE_RANKS = {Subject.WHISTLE: 0, Subject.SUMMONS: 1, Subject.INCIDENT: 2}  # alerts: 3
TIMELINE_TIE_RANK = (
    "CASE subject_type "
    + " ".join(f"WHEN '{kind.value}' THEN {rank}" for kind, rank in TIMELINE_TIE_RANKS.items())
    + " ELSE 3 END"
)
TIMELINE_TIE_ORDER = f"{TIMELINE_TIE_RANK}, subject_id, action"
