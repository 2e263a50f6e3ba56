"""Incidents, the whistles blown for them and each summoned department's summons. Their
append-only history is the timeline (``command.timeline``)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import DateTimeRangeField
from django.contrib.postgres.indexes import GistIndex
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alerts.models import Severity


def handled_during() -> models.Func:
    """From opened to resolved (open-ended while unresolved) as a range: which incidents were
    being handled at a moment of the past, answered by an index (replay)."""
    return models.Func(
        "opened_at",
        "resolved_at",
        models.Value("[)"),
        function="tstzrange",
        output_field=DateTimeRangeField(),
    )


class Incident(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DISPATCHED = "dispatched", _("Dispatched")
        ON_SITE = "on_site", _("On site")
        RESOLVED = "resolved", _("Resolved")
        CLOSED = "closed", _("Closed")

    # Still being handled: whistles may be blown, it may be resolved.
    ACTIVE_STATUSES = (Status.OPEN, Status.DISPATCHED, Status.ON_SITE)

    class SettledLevel(models.TextChoices):
        """The 631 rule: where a matter was settled."""

        GRID = "grid", _("Grid / village")
        TOWNSHIP = "township", _("Township")
        COUNTY = "county", _("County")

    township = models.ForeignKey(
        "org.Township",
        verbose_name=_("township"),
        on_delete=models.PROTECT,
        related_name="incidents",
    )
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    category = models.ForeignKey(
        "org.Category", verbose_name=_("category"), on_delete=models.PROTECT
    )
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.OPEN
    )
    grid = models.ForeignKey(
        "org.Grid", verbose_name=_("grid"), on_delete=models.SET_NULL, null=True, blank=True
    )
    latitude = models.FloatField(_("latitude"), null=True, blank=True)
    longitude = models.FloatField(_("longitude"), null=True, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("opened by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    opened_at = models.DateTimeField(_("opened at"), default=timezone.now)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    feedback = models.TextField(_("feedback"), blank=True)
    # Snapshots from the alerts it was opened from, photos and links added since:
    # [{"kind": "snapshot" | "photo" | "link", "url": …, "caption": …, "added_by": …}]
    evidence = models.JSONField(_("evidence"), default=list, blank=True)
    settled_level = models.CharField(
        _("settled at"), max_length=10, choices=SettledLevel.choices, blank=True
    )

    class Satisfaction(models.TextChoices):
        NONE = "", _("Not asked yet")
        SATISFIED = "satisfied", _("Satisfied")
        BASIC = "basic", _("Basically satisfied")
        UNSATISFIED = "unsatisfied", _("Not satisfied")

    # What a callback can answer (the choices less "not asked yet").
    SATISFACTION_ANSWERS = [(v, label) for v, label in Satisfaction.choices if v]

    # 回访: what the person who raised it said of the outcome, asked after closing.
    satisfaction = models.CharField(
        _("satisfaction"), max_length=12, choices=Satisfaction.choices, blank=True
    )
    callback_at = models.DateTimeField(_("called back at"), null=True, blank=True)
    callback_note = models.TextField(_("callback note"), blank=True)
    reopened_count = models.PositiveSmallIntegerField(_("times reopened"), default=0)

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        ordering = ["-opened_at"]
        indexes = [
            models.Index(fields=["township", "status", "-opened_at"]),
            models.Index(fields=["grid", "opened_at"]),  # the heat map's count per grid
            GistIndex(handled_during(), name="incidents_handled_during"),
            # The case library's pages, newest first (keyset on opened_at, id).
            models.Index(fields=["opened_at", "id"], name="incidents_opened_id"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def display_title(self) -> str:
        """The title in the reader's language. One typed by a person reads as typed; one the
        board copied from the alert it was opened from is that alert's, composed again from
        its facts in the reader's language (for a list, prefetch
        ``incidents.selectors.alerts_for_titles()``).
        """
        for alert in self.alerts.all():
            if alert.title == self.title:
                return alert.display_title
        return self.title

    @property
    def display_evidence(self) -> list[dict]:
        """The evidence with the captions copied from an alert's title read in the reader's
        language, as ``display_title`` reads; the rest as they were written."""
        alerts = {f"alert:{alert.pk}": alert for alert in self.alerts.all()}
        shown = []
        for item in self.evidence:
            alert = alerts.get(item.get("source")) if isinstance(item, dict) else None
            if alert is not None and item.get("caption") == alert.title:
                item = {**item, "caption": alert.display_title}
            shown.append(item)
        return shown


class Whistle(models.Model):
    """吹哨: the township summons departments for an incident, with a report deadline."""

    class Kind(models.TextChoices):
        GENERAL = "general", _("General whistle")
        TOUGH = "tough", _("Tough-problem whistle")
        EMERGENCY = "emergency", _("Emergency whistle")

    class Purpose(models.TextChoices):
        JOINT_ENFORCEMENT = "joint_enforcement", _("Joint enforcement")
        KEY_TASK = "key_task", _("Key task")
        EMERGENCY_RESPONSE = "emergency_response", _("Emergency response")

    incident = models.ForeignKey(
        Incident, verbose_name=_("incident"), on_delete=models.CASCADE, related_name="whistles"
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    purpose = models.CharField(_("purpose"), max_length=20, choices=Purpose.choices)
    # 联合哨: a neighbouring township blowing together, for a problem on the border.
    joint_township = models.ForeignKey(
        "org.Township",
        verbose_name=_("joint with township"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    # The other township confirms a joint whistle before its own offices are summoned (its
    # duty officer on its board or API; a district role's joint whistle is confirmed at once).
    class JointStatus(models.TextChoices):
        NONE = "", _("Not joint")
        PENDING = "pending", _("Awaiting the other township")
        CONFIRMED = "confirmed", _("Confirmed by the other township")
        DECLINED = "declined", _("Declined by the other township")

    joint_status = models.CharField(
        _("joint status"), max_length=10, choices=JointStatus.choices, default="", blank=True
    )
    # The other township's departments waiting for its confirmation: [{"department": id,
    # "reason": str}]; summoned (and emptied) when it confirms.
    joint_pending = models.JSONField(_("awaiting confirmation"), default=list, blank=True)
    joint_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("confirmed or declined by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    joint_decided_at = models.DateTimeField(_("confirmed or declined at"), null=True, blank=True)
    blown_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("blown by"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    blown_at = models.DateTimeField(_("blown at"), default=timezone.now)
    report_within = models.DurationField(_("report on site within"))
    # 限时办结: from blowing to finishing, accepted by the township. Null on whistles blown
    # before finishing deadlines existed.
    finish_within = models.DurationField(_("finish within"), null=True, blank=True)
    # Escalation runs from this copy, so editing the policy later does not change a running
    # escalation (Grafana OnCall's escalation snapshot).
    escalation_policy = models.JSONField(_("escalation policy (snapshot)"), default=list)
    # Who is paged until a department acknowledges, step by step (the township's escalation
    # chain for this kind, copied when blown): [{"action": "notify_on_call"}, {"action":
    # "wait", "minutes": 5}, …]. Empty on whistles blown before chains existed.
    escalation_chain = models.JSONField(_("escalation chain (snapshot)"), default=list)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("whistle")
        verbose_name_plural = _("whistles")
        ordering = ["-blown_at"]
        # The department table of a period reads the whistles blown in it, not every one kept.
        indexes = [models.Index(fields=["blown_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.incident}"


class Summons(models.Model):
    """One summoned department: notified → acknowledged → checked in on site → done → accepted
    by the township (验收), or returned to work; or released by the township at any point."""

    class Status(models.TextChoices):
        NOTIFIED = "notified", _("Notified")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        CHECKED_IN = "checked_in", _("On site")
        DONE = "done", _("Done, awaiting acceptance")
        ACCEPTED = "accepted", _("Accepted")
        RELEASED = "released", _("Released")

    # Not on site yet: the check-in deadline still applies.
    WAITING_STATUSES = (Status.NOTIFIED, Status.ACKNOWLEDGED)
    # Not finished yet: the finishing deadline still applies.
    WORKING_STATUSES = (*WAITING_STATUSES, Status.CHECKED_IN)
    # Still the department's and the township's business: the incident cannot be resolved.
    OPEN_STATUSES = (*WORKING_STATUSES, Status.DONE)

    whistle = models.ForeignKey(
        Whistle, verbose_name=_("whistle"), on_delete=models.CASCADE, related_name="summonses"
    )
    department = models.ForeignKey(
        "org.Department",
        verbose_name=_("department"),
        on_delete=models.PROTECT,
        related_name="summonses",
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.NOTIFIED
    )
    check_in_deadline = models.DateTimeField(_("check-in deadline"))
    # Set when a department is summoned for a category not on its responsibility list.
    off_list_reason = models.CharField(_("reason (not on the list)"), max_length=300, blank=True)
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    checked_in_at = models.DateTimeField(_("checked in at"), null=True, blank=True)
    checked_in_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("checked in by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    check_in_latitude = models.FloatField(_("check-in latitude"), null=True, blank=True)
    check_in_longitude = models.FloatField(_("check-in longitude"), null=True, blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    done_note = models.TextField(_("done note"), blank=True)
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)
    release_reason = models.CharField(_("release reason"), max_length=300, blank=True)
    overdue = models.BooleanField(_("overdue"), default=False)
    escalation_level = models.PositiveSmallIntegerField(_("escalation level"), default=0)
    finish_deadline = models.DateTimeField(_("finishing deadline"), null=True, blank=True)
    finish_overdue = models.BooleanField(_("finishing overdue"), default=False)
    finish_escalation_level = models.PositiveSmallIntegerField(
        _("finishing escalation level"), default=0
    )
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("accepted by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # How many times the township sent the work back, and why the last time.
    returned_count = models.PositiveSmallIntegerField(_("times returned"), default=0)
    return_reason = models.CharField(_("return reason"), max_length=300, blank=True)
    # The escalation chain's progress: how many of its notification steps have run, and when
    # the next one is due (null once acknowledged or when the chain has run out).
    page_step = models.PositiveSmallIntegerField(_("escalation chain step"), default=0)
    page_at = models.DateTimeField(_("next escalation step at"), null=True, blank=True)

    class Meta:
        verbose_name = _("summons")
        verbose_name_plural = _("summonses")
        ordering = ["check_in_deadline"]
        constraints = [
            models.UniqueConstraint(fields=["whistle", "department"], name="uniq_summons")
        ]
        # The chains' sweep reads the few summonses with a step due, not every open one.
        indexes = [
            models.Index(
                fields=["page_at"],
                name="summons_page_due",
                condition=models.Q(page_at__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.department} · {self.whistle}"


class EscalationChain(models.Model):
    """Who is paged, and when, until a summoned department acknowledges (Grafana OnCall's
    escalation chain). A township has one per whistle kind, or one for every kind; a chain
    without a township serves every township that has none of its own. Each whistle runs
    from a copy made when it is blown, so editing a chain changes only later whistles."""

    township = models.ForeignKey(
        "org.Township",
        verbose_name=_("township"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="escalation_chains",
        help_text=_("Empty: the district's chain, for townships without their own."),
    )
    kind = models.CharField(
        _("whistle kind"),
        max_length=10,
        choices=Whistle.Kind.choices,
        blank=True,
        help_text=_("Empty: every kind without a chain of its own."),
    )
    name = models.CharField(_("name"), max_length=120)

    class Meta:
        verbose_name = _("escalation chain")
        verbose_name_plural = _("escalation chains")
        ordering = ["township", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["township", "kind"], name="uniq_escalation_chain", nulls_distinct=False
            )
        ]

    def __str__(self) -> str:
        return self.name

    def snapshot(self) -> list[dict]:
        return [step.as_dict() for step in self.steps.all()]


class EscalationStep(models.Model):
    class Action(models.TextChoices):
        NOTIFY_ON_CALL = "notify_on_call", _("Notify the summoned department's on-call (A)")
        NOTIFY_BACKUP = "notify_backup", _("Notify its backup (B)")
        NOTIFY_HEAD = "notify_head", _("Notify the department head")
        NOTIFY_TOWNSHIP_SUPERVISORS = (
            "notify_township_supervisors",
            _("Notify the township's supervisors"),
        )
        NOTIFY_DISTRICT_SUPERVISORS = (
            "notify_district_supervisors",
            _("Notify the district's supervisors"),
        )
        NOTIFY_DISCIPLINE = "notify_discipline", _("Notify the discipline office (纪委)")
        WAIT = "wait", _("Wait")
        REPEAT = "repeat", _("Repeat from the first step")

    NOTIFY_ACTIONS = [a for a in Action.values if a.startswith("notify_")]

    chain = models.ForeignKey(
        EscalationChain, verbose_name=_("chain"), on_delete=models.CASCADE, related_name="steps"
    )
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    action = models.CharField(_("step"), max_length=32, choices=Action.choices)
    minutes = models.PositiveSmallIntegerField(
        _("minutes"), null=True, blank=True, help_text=_("For a wait: 1 to 1440.")
    )
    times = models.PositiveSmallIntegerField(
        _("times"), null=True, blank=True, help_text=_("For a repeat: 1 to 10.")
    )
    all_channels = models.BooleanField(
        _("by every channel"),
        default=False,
        help_text=_("Reach each person by all their channels at once, not the first that works."),
    )

    class Meta:
        verbose_name = _("escalation step")
        verbose_name_plural = _("escalation steps")
        ordering = ["chain", "position", "pk"]

    def __str__(self) -> str:
        return self.get_action_display()

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.action == self.Action.WAIT and not (self.minutes and 1 <= self.minutes <= 1440):
            raise ValidationError({"minutes": _("A wait lasts 1 to 1440 minutes.")})
        if self.action == self.Action.REPEAT and not (self.times and 1 <= self.times <= 10):
            raise ValidationError({"times": _("Repeat 1 to 10 times.")})

    def as_dict(self) -> dict:
        step: dict = {"action": self.action}
        if self.action == self.Action.WAIT:
            step["minutes"] = self.minutes
        elif self.action == self.Action.REPEAT:
            step["times"] = self.times
        elif self.all_channels:
            step["all_channels"] = True
        return step


class SupervisionOrder(models.Model):
    """督办单: a supervisor's written order to a department on an incident (or one overdue
    summons): what to do and by when. The department acknowledges it and answers it."""

    class Status(models.TextChoices):
        ISSUED = "issued", _("Issued, not acknowledged")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        ANSWERED = "answered", _("Answered")

    OPEN_STATUSES = (Status.ISSUED, Status.ACKNOWLEDGED)

    township = models.ForeignKey(
        "org.Township", verbose_name=_("township"), on_delete=models.PROTECT, related_name="+"
    )
    incident = models.ForeignKey(
        Incident,
        verbose_name=_("incident"),
        on_delete=models.CASCADE,
        related_name="supervision_orders",
    )
    summons = models.ForeignKey(
        Summons,
        verbose_name=_("summons"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="supervision_orders",
    )
    department = models.ForeignKey(
        "org.Department",
        verbose_name=_("to department"),
        on_delete=models.PROTECT,
        related_name="supervision_orders",
    )
    instruction = models.TextField(_("what is to be done"))
    due_at = models.DateTimeField(_("by when"))
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("issued by"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    issued_at = models.DateTimeField(_("issued at"), default=timezone.now)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.ISSUED
    )
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("acknowledged by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    answer = models.TextField(_("answer"), blank=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("answered by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("supervision order (督办单)")
        verbose_name_plural = _("supervision orders (督办单)")
        ordering = ["-issued_at"]
        indexes = [models.Index(fields=["department", "status"])]

    def __str__(self) -> str:
        return f"督办 #{self.pk} → {self.department}"


def _photo_path(photo: Photo, filename: str) -> str:
    return f"photos/{photo.uploaded_at:%Y/%m}/{photo.pk}{photo.extension}"


class Photo(models.Model):
    """A photo taken on site: a grid officer's report, a department's finished work. Served only
    to those who may see the township's matters (``/photos/<id>``), never as a public file."""

    TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Set when the photo is attached to a township's report or incident; until then only the
    # one who took it (and their department) can see it.
    township = models.ForeignKey(
        "org.Township", verbose_name=_("township"), on_delete=models.CASCADE, null=True
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    uploaded_at = models.DateTimeField(_("uploaded at"), default=timezone.now)
    content_type = models.CharField(_("type"), max_length=20)
    size = models.PositiveIntegerField(_("size (bytes)"))
    file = models.FileField(_("file"), upload_to=_photo_path)

    class Meta:
        verbose_name = _("photo")
        verbose_name_plural = _("photos")

    def __str__(self) -> str:
        return self.url

    @property
    def extension(self) -> str:
        return self.TYPES[self.content_type]

    @property
    def url(self) -> str:
        return f"/photos/{self.pk}"
