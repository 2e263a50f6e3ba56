from __future__ import annotations

from django.contrib.postgres.fields import DateTimeRangeField
from django.contrib.postgres.indexes import GistIndex
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from alerts.labels import label_name
from alerts.titles import alert_title
from command.org.models import BilingualName
from command.timeline.actions import Action, Subject
from command.timeline.models import TimelineEntry


class Severity(models.TextChoices):
    CRITICAL = "critical", _("Critical")
    MAJOR = "major", _("Major")
    MINOR = "minor", _("Minor")
    WARNING = "warning", _("Warning")


SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.MAJOR: 1, Severity.MINOR: 2, Severity.WARNING: 3}


# Closed alerts' closed_at from their timeline: the time of the row that took them out of the
# queue. For rows written before the column existed, and for data loaded in bulk.
_CLOSING = (
    Action.ALERT_DISMISSED,
    Action.ALERT_MERGED,
    Action.ALERT_ESCALATED,
    Action.ALERT_CLEARED,
)
CLOSED_AT_FROM_TIMELINE = f"""
UPDATE alerts_alert a SET closed_at = t.closed
  FROM (SELECT subject_id, max(time) AS closed FROM {TimelineEntry._meta.db_table}
         WHERE subject_type = '{Subject.ALERT.value}'
           AND action IN ({", ".join(f"'{action.value}'" for action in _CLOSING)})
         GROUP BY subject_id) t
 WHERE t.subject_id = a.id AND a.closed_at IS NULL AND a.status NOT IN ('new', 'acknowledged')
"""


def open_during() -> models.Func:
    """From first seen to closed (open-ended while open), as a range."""
    return models.Func(
        "first_seen",
        "closed_at",
        models.Value("[)"),
        function="tstzrange",
        output_field=DateTimeRangeField(),
    )


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
        # A call, a hotline ticket, a mailbox message: the item's channel is in the detail.
        INTAKE = "intake", _("Intake desk")

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
    # When it left the queue (dismissed, merged, escalated, cleared); empty while open.
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
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
        indexes = [
            models.Index(fields=["township", "status", "-last_seen"]),
            # Alerts of a period whatever their status: a replay's queue (those first seen in
            # the day before its moment), today's figures, a year of history.
            models.Index(fields=["township", "first_seen"]),
            models.Index(fields=["grid", "first_seen"]),  # the heat map's count per grid
            # Open from first seen until closed: the alerts on the board at a moment of the
            # past (replay), answered from the index.
            GistIndex(open_during(), name="alerts_open_during"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def display_title(self) -> str:
        """The title in the reader's language, composed from the facts the alert kept; a grid
        report's or an intake item's title is a person's own words and reads as written, and so
        does an older alert's whose facts do not suffice."""
        if self.source in (self.Source.REPORT, self.Source.INTAKE):
            return self.title
        detail = self.detail if isinstance(self.detail, dict) else {}
        code = detail.get("device_code") or (self.device.code if self.device_id else "")
        return alert_title(detail, device_code=code) or self.title

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def incident_body(self) -> dict:
        """What the board posts to open an incident from this alert."""
        return {
            "township": self.township.code,
            "category": self.category.code if self.category else "",
            "severity": self.severity,
            "title": self.title,
            "grid": self.grid.code if self.grid else None,
            "alerts": [self.pk],
        }

    @property
    def label_display(self) -> str:
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


class Notification(models.Model):
    """One message to one person on one channel (督办 reaching people): paged by an escalation
    chain's step, an overdue level or a supervision order. Console notifications show on the
    person's live page; the others are sent by the job queue, each attempt recorded here, and
    one that fails for good hands over to the next channel of the person's list (``fallback``).
    """

    class Channel(models.TextChoices):
        CONSOLE = "console", _("Console")
        SMS = "sms", _("SMS")
        EMAIL = "email", _("E-mail")
        ROBOT = "robot", _("Work group robot")
        SYSTEM = "system", _("Department's system")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    # The moment it was caused and by what (the summons' chain step, the order …), the person
    # and the channel: the same cause never notifies the same person twice on one channel.
    key = models.CharField(_("key"), max_length=160, unique=True)
    user = models.ForeignKey(
        "org.User",
        verbose_name=_("person"),
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    township = models.ForeignKey(
        "org.Township", verbose_name=_("township"), on_delete=models.CASCADE, related_name="+"
    )
    # What it is about: a summons or a supervision order (their timeline rows say so too).
    subject_type = models.CharField(_("subject type"), max_length=20, choices=Subject.choices)
    subject_id = models.BigIntegerField(_("subject id"))
    incident_id = models.BigIntegerField(_("incident"), null=True, blank=True)
    # Why this person: on_call, backup, head, township_supervisors, district_supervisors,
    # discipline, order.
    reason = models.CharField(_("reason"), max_length=32)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    # What it says, in the township's language (Chinese), and where its link leads.
    text = models.CharField(_("text"), max_length=500)
    link = models.CharField(_("link"), max_length=200)
    # The channels still to try, in order, if this one fails for good.
    fallback = models.JSONField(_("then"), default=list, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    # Seen on the console, or its link opened (from an SMS, an e-mail, the work group).
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["subject_type", "subject_id"]),
            models.Index(fields=["user", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} → {self.user}"


class AlertRule(BilingualName):
    """A township's rule that turns events or readings into alerts (editable in the admin).
    Its name is kept in Chinese and English; an alert it raises keeps both, and reads in its
    reader's language (alerts.titles)."""

    class Kind(models.TextChoices):
        CAMERA_LABEL = "camera_label", _("Camera detection")
        THRESHOLD = "threshold", _("Sensor threshold held for a duration")
        RATE_OF_CHANGE = "rate_of_change", _("Sensor rising or falling fast")
        DEVICE_OFFLINE = "device_offline", _("Device offline")

    class Operator(models.TextChoices):
        ABOVE = "above", _("above")
        BELOW = "below", _("below")

    township = models.ForeignKey(
        "org.Township",
        verbose_name=_("township"),
        on_delete=models.CASCADE,
        related_name="alert_rules",
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    enabled = models.BooleanField(_("enabled"), default=True)
    category = models.ForeignKey(
        "org.Category", verbose_name=_("category"), on_delete=models.PROTECT
    )
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    device = models.ForeignKey(
        "org.Device",
        verbose_name=_("only this device"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
    )
    # camera detection
    labels = models.JSONField(
        _("labels"), default=list, blank=True, help_text=_('e.g. ["excavator", "dump_truck"]')
    )
    min_score = models.FloatField(_("minimum score"), null=True, blank=True)
    zones = models.JSONField(
        _("zones"), default=list, blank=True, help_text=_("Any of these zones; empty: anywhere.")
    )
    active_from = models.TimeField(
        _("active from"),
        null=True,
        blank=True,
        help_text=_(
            "Local time; with 'active until' earlier than this, the window spans midnight."
        ),
    )
    active_until = models.TimeField(_("active until"), null=True, blank=True)
    # sensor threshold
    metric = models.CharField(_("metric"), max_length=48, blank=True)
    operator = models.CharField(
        _("operator"), max_length=5, choices=Operator.choices, default=Operator.ABOVE
    )
    threshold = models.FloatField(_("threshold"), null=True, blank=True)
    clear_at = models.FloatField(
        _("clear at"),
        null=True,
        blank=True,
        help_text=_("Hysteresis: the alert clears only once the value is back past this."),
    )
    hold_seconds = models.PositiveIntegerField(
        _("held for (seconds)"),
        default=0,
        help_text=_("The threshold must be crossed for this long before the alert is raised."),
    )
    per_seconds = models.PositiveIntegerField(
        _("per (seconds)"),
        default=60,
        help_text=_("Rate of change: the threshold is the change allowed in this many seconds."),
    )
    # device offline
    device_kinds = models.JSONField(
        _("device kinds"), default=list, blank=True, help_text=_('e.g. ["camera", "gateway"]')
    )

    class Meta:
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        ordering = ["township", "kind", "name"]

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors: dict[str, str] = {}
        if self.kind == self.Kind.CAMERA_LABEL:
            if not self.labels or not all(isinstance(x, str) and x for x in self.labels):
                errors["labels"] = _("List at least one label, as strings.")
            if self.min_score is not None and not 0 <= self.min_score <= 1:
                errors["min_score"] = _("A score is between 0 and 1.")
            if not isinstance(self.zones, list) or not all(isinstance(z, str) for z in self.zones):
                errors["zones"] = _("Zones are a list of strings.")
            if (self.active_from is None) != (self.active_until is None):
                errors["active_until"] = _("Give both ends of the time window, or neither.")
        elif self.kind == self.Kind.THRESHOLD:
            if not self.metric:
                errors["metric"] = _("Name the metric, e.g. water_level.")
            if self.threshold is None:
                errors["threshold"] = _("Give the threshold.")
            elif self.clear_at is not None:
                wrong_side = (
                    self.clear_at > self.threshold
                    if self.operator == self.Operator.ABOVE
                    else self.clear_at < self.threshold
                )
                if wrong_side:
                    errors["clear_at"] = _(
                        "The clearing value must lie on the safe side of the threshold."
                    )
        elif self.kind == self.Kind.RATE_OF_CHANGE:
            if not self.metric:
                errors["metric"] = _("Name the metric, e.g. water_level.")
            if self.threshold is None or self.threshold <= 0:
                errors["threshold"] = _("Give the change allowed, a positive number.")
            elif self.clear_at is not None and not 0 <= self.clear_at < self.threshold:
                errors["clear_at"] = _("The clearing rate must be below the threshold.")
            if not self.per_seconds:
                errors["per_seconds"] = _("Give the time the change is measured over.")
        elif self.kind == self.Kind.DEVICE_OFFLINE:
            kinds = {"camera", "sensor", "gateway"}
            if not self.device_kinds or not set(self.device_kinds) <= kinds:
                errors["device_kinds"] = _("Choose among camera, sensor and gateway.")
        if errors:
            raise ValidationError(errors)


class RuleState(models.Model):
    """Where a threshold rule stands for one device: kept in the database so a duration being
    timed, or an alert being held, survives a restart of the ingest worker.

    A rate-of-change rule's state is written with every reading (it needs the last value); a
    threshold rule's only when it changes, so its ``last_value``/``updated_at`` are those of the
    reading that changed it, and a device that never breached has no row."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="states")
    device = models.ForeignKey("org.Device", on_delete=models.CASCADE)
    breached_since = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=False)
    last_value = models.FloatField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "device"], name="uniq_rule_state")]

    def __str__(self) -> str:
        return f"{self.rule} · device {self.device_id}: {'active' if self.active else 'quiet'}"
