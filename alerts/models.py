from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Severity(models.TextChoices):
    CRITICAL = "critical", _("Critical")
    MAJOR = "major", _("Major")
    MINOR = "minor", _("Minor")
    WARNING = "warning", _("Warning")


SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.MAJOR: 1, Severity.MINOR: 2, Severity.WARNING: 3}


class Alert(models.Model):
    class Status(models.TextChoices):
        NEW = "new", _("New")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        DISMISSED = "dismissed", _("Dismissed")
        MERGED = "merged", _("Merged")
        ESCALATED = "escalated", _("Escalated to incident")
        CLEARED = "cleared", _("Cleared")

    OPEN_STATUSES = (Status.NEW, Status.ACKNOWLEDGED)

    class Source(models.TextChoices):
        CAMERA = "camera", _("Camera")
        SENSOR = "sensor", _("Sensor")
        DEVICE = "device", _("Device health")
        REPORT = "report", _("Grid report")

    township = models.ForeignKey(
        "org.Township", verbose_name=_("township"), on_delete=models.CASCADE, related_name="alerts"
    )
    category = models.ForeignKey(
        "org.Category", verbose_name=_("category"), on_delete=models.PROTECT, null=True
    )
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.NEW
    )
    source = models.CharField(_("source"), max_length=8, choices=Source.choices)
    title = models.CharField(_("title"), max_length=200)
    device = models.ForeignKey(
        "org.Device", verbose_name=_("device"), on_delete=models.SET_NULL, null=True, blank=True
    )
    grid = models.ForeignKey(
        "org.Grid", verbose_name=_("grid"), on_delete=models.SET_NULL, null=True, blank=True
    )
    # One open alert per key: repeats raise `count` instead of adding rows (OnCall's distinction).
    dedupe_key = models.CharField(_("dedupe key"), max_length=200)
    count = models.PositiveIntegerField(_("occurrences"), default=1)
    first_seen = models.DateTimeField(_("first seen"), default=timezone.now)
    last_seen = models.DateTimeField(pgettext_lazy("alert", "last seen"), default=timezone.now)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    incident = models.ForeignKey(
        "incidents.Incident",
        verbose_name=_("incident"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="alerts",
    )

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["township", "dedupe_key"],
                condition=Q(status__in=["new", "acknowledged"]),
                name="uniq_open_alert_per_key",
            )
        ]
        indexes = [models.Index(fields=["township", "status", "-last_seen"])]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def label_display(self) -> str:
        from alerts.rules import label_name

        label = self.detail.get("label") if isinstance(self.detail, dict) else None
        return label_name(label) if label else ""


class Delivery(models.Model):
    """One push to a department's own system (webhook or MQTT downlink), keyed by the state
    change that caused it so a retried transaction or job never sends it twice."""

    class Channel(models.TextChoices):
        WEBHOOK = "webhook", _("Webhook")
        MQTT = "mqtt", _("MQTT downlink")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    key = models.CharField(_("key"), max_length=120, unique=True)
    department = models.ForeignKey(
        "org.Department",
        verbose_name=_("department"),
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    event = models.CharField(_("event"), max_length=48)
    payload = models.JSONField(_("payload"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event} → {self.department} ({self.get_channel_display()})"
