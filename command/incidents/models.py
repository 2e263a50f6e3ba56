"""The append-only timeline: one row for every state change, read by replay and assessment."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


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
    subject_type = models.CharField(_("subject"), max_length=24)  # alert, incident, whistle …
    subject_id = models.BigIntegerField(_("subject id"))
    action = models.CharField(_("action"), max_length=48)  # dotted event type: alert.raised
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
        indexes = [models.Index(fields=["subject_type", "subject_id", "time"])]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.action} {self.subject_type}#{self.subject_id}"
