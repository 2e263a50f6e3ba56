"""Time-series tables (hypertables on TimescaleDB) and the dead-letter table."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from command.text import phone_masked


class DeviceEvent(models.Model):
    """A camera detection or device occurrence. The natural key makes redelivery harmless."""

    pk = models.CompositePrimaryKey("device_id", "time", "event_id")
    time = models.DateTimeField(_("time"))
    # Time-series rows skip the FK constraint: checking it on every insert costs ingest speed
    # and devices are never deleted while their history is kept.
    device = models.ForeignKey(
        "org.Device", verbose_name=_("device"), on_delete=models.DO_NOTHING, db_constraint=False
    )
    event_id = models.CharField(_("event id"), max_length=64)
    township = models.ForeignKey(
        "org.Township", verbose_name=_("township"), on_delete=models.DO_NOTHING, db_constraint=False
    )
    label = models.CharField(_("label"), max_length=48, blank=True)
    score = models.FloatField(_("score"), null=True, blank=True)
    zones = models.JSONField(_("zones"), default=list, blank=True)
    payload = models.JSONField(_("payload"), default=dict)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)

    class Meta:
        verbose_name = _("device event")
        verbose_name_plural = _("device events")

    def __str__(self) -> str:
        return f"{self.device_id} {self.label} {self.time:%Y-%m-%d %H:%M:%S}"


class Reading(models.Model):
    pk = models.CompositePrimaryKey("device_id", "metric", "time")
    time = models.DateTimeField(_("time"))
    device = models.ForeignKey(
        "org.Device", verbose_name=_("device"), on_delete=models.DO_NOTHING, db_constraint=False
    )
    metric = models.CharField(_("metric"), max_length=48)
    value = models.FloatField(_("value"))

    class Meta:
        verbose_name = _("reading")
        verbose_name_plural = _("readings")

    def __str__(self) -> str:
        return f"{self.device_id} {self.metric}={self.value}"


class DeadLetter(models.Model):
    """A message ingest could not store, kept with the reason so nothing is lost."""

    received_at = models.DateTimeField(_("received at"), default=timezone.now, db_index=True)
    topic = models.CharField(_("topic"), max_length=512)
    payload = models.BinaryField(_("raw payload"))
    reason = models.CharField(_("reason"), max_length=500)
    replayed_at = models.DateTimeField(_("replayed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("dead letter")
        verbose_name_plural = _("dead letters")
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.topic}: {self.reason}"


class GridReport(models.Model):
    """An intake item (民情受理): a matter the public or a grid officer raised, by whatever
    channel it came (a grid officer's patrol, a call to the duty desk, a 12345 or 12315 ticket,
    a mailbox message, someone at the counter). Each one becomes an alert on the duty board."""

    class Channel(models.TextChoices):
        GRID = "grid", _("Grid officer")
        PHONE = "phone", _("Call to the duty desk")
        HOTLINE_12345 = "12345", _("12345 hotline")
        HOTLINE_12315 = "12315", _("12315 hotline")
        MAILBOX = "jiyu", _("Mailbox message")
        WALK_IN = "walk_in", _("Walk-in")
        OTHER = "other", _("Other")

    township = models.ForeignKey(
        "org.Township",
        verbose_name=_("township"),
        on_delete=models.PROTECT,
        related_name="reports",
    )
    channel = models.CharField(
        pgettext_lazy("intake", "channel"),
        max_length=8,
        choices=Channel.choices,
        default=Channel.GRID,
    )
    grid = models.ForeignKey(
        "org.Grid", verbose_name=_("grid"), on_delete=models.SET_NULL, null=True, blank=True
    )
    # Who filed it: the grid officer, the duty officer who took the call, the hotline's account.
    reporter = models.ForeignKey(
        "org.User",
        verbose_name=_("reported by"),
        on_delete=models.PROTECT,
        related_name="reports",
    )
    # The person who raised it, for the callback (回访). Screens show the phone masked; only the
    # township's duty officers see it whole (command.org.policy.can_see_caller).
    caller_name = models.CharField(_("caller's name"), max_length=60, blank=True)
    caller_phone = models.CharField(_("caller's phone"), max_length=40, blank=True)
    # The hotline system's own ticket number: the same ticket filed twice is one item.
    external_id = models.CharField(_("ticket number"), max_length=64, blank=True)
    category = models.ForeignKey(
        "org.Category", verbose_name=_("category"), on_delete=models.PROTECT
    )
    description = models.TextField(_("description"))
    latitude = models.FloatField(_("latitude"), null=True, blank=True)
    longitude = models.FloatField(_("longitude"), null=True, blank=True)
    created_at = models.DateTimeField(_("reported at"), default=timezone.now)
    # Addresses of the photos taken with the report (``/photos/<id>``).
    photos = models.JSONField(_("photos"), default=list, blank=True)
    alert = models.OneToOneField(
        "alerts.Alert",
        verbose_name=_("alert"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="report",
    )

    class Meta:
        verbose_name = _("intake item")
        verbose_name_plural = _("intake items")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["township", "channel", "external_id"],
                condition=~models.Q(external_id=""),
                name="uniq_intake_ticket",
            )
        ]

    def __str__(self) -> str:
        return f"{self.category} · {self.description[:30]}"

    @property
    def caller_phone_masked(self) -> str:
        return phone_masked(self.caller_phone)
