"""The organisation of a township: who is who, where, and who is responsible for what."""

from __future__ import annotations

import functools
import logging
import secrets
import zoneinfo
from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class BilingualName(models.Model):
    """Names are kept in Chinese (the official one) and English; display follows the language."""

    name = models.CharField(_("name (Chinese)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        language = get_language() or "zh-hans"
        if language.startswith("en") and self.name_en:
            return self.name_en
        return self.name


DEFAULT_TIME_ZONE = "Asia/Shanghai"


def validate_time_zone(value: str) -> None:
    from django.core.exceptions import ValidationError

    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            _("%(zone)s is not an IANA time zone (e.g. Asia/Shanghai)."),
            code="time_zone",
            params={"zone": value},
        ) from None


@functools.lru_cache(maxsize=64)
def township_zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone named ``name``, or the default one when the name is none (a row written before
    the field was validated, or by hand): rules and pages go on in the township's usual time
    instead of failing on every message."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        logging.getLogger("whistle.org").error(
            "time zone %r is not an IANA zone; using %s", name, DEFAULT_TIME_ZONE
        )
        return zoneinfo.ZoneInfo(DEFAULT_TIME_ZONE)


class District(BilingualName):
    """A district (区): one platform for its 10–30 townships. Its duty officers and supervisors
    watch every township of it (the district board); its assessment scheme rates the
    departments that serve them. A city runs several districts on one deployment."""

    code = models.SlugField(_("code"), max_length=40, unique=True)

    class Meta:
        verbose_name = _("district")
        verbose_name_plural = _("districts")
        ordering = ["code"]


class Township(BilingualName):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    district = models.ForeignKey(
        District,
        verbose_name=_("district"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="townships",
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default=DEFAULT_TIME_ZONE,
        validators=[validate_time_zone],
        help_text=_("IANA name, e.g. Asia/Shanghai."),
    )
    # Minutes to report on site per whistle kind, where this township differs from the defaults
    # (emergency 30, general 120, tough 1440), e.g. {"general": 60}.
    report_deadlines = models.JSONField(
        _("report deadlines (minutes)"),
        default=dict,
        blank=True,
        help_text=_('Overrides per whistle kind, e.g. {"general": 60, "tough": 720}.'),
    )
    # Minutes to finish (限时办结) per whistle kind where this township differs from the
    # defaults (emergency 240, general 4320, tough 21600).
    finish_deadlines = models.JSONField(
        _("finishing deadlines (minutes)"),
        default=dict,
        blank=True,
        help_text=_('Overrides per whistle kind, e.g. {"emergency": 120, "general": 2880}.'),
    )

    class Meta:
        verbose_name = _("township")
        verbose_name_plural = _("townships")
        ordering = ["code"]

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The zone its people read clocks in (command.org.localtime shows every time in it)."""
        return township_zone(self.time_zone)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        kinds = {"emergency", "general", "tough"}
        # Arriving within a week; finishing within a year (a tough problem can take months).
        for field, most in (("report_deadlines", 7 * 24 * 60), ("finish_deadlines", 366 * 24 * 60)):
            deadlines = getattr(self, field) or {}
            if (
                not isinstance(deadlines, dict)
                or not set(deadlines) <= kinds
                or not all(
                    isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= most
                    for v in deadlines.values()
                )
            ):
                raise ValidationError(
                    {
                        field: _(
                            "Give whole minutes (1 to %(most)d) for emergency, general or tough."
                        )
                        % {"most": most}
                    }
                )


class Category(BilingualName):
    """A kind of matter (盗采, 违建, 火情 …); the responsibility list maps it to departments."""

    code = models.SlugField(_("code"), max_length=40, unique=True)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["code"]


class Department(BilingualName):
    class Kind(models.TextChoices):
        OFFICE = "office", _("Township office")
        STATION = "station", _("Township station")
        DISTRICT = "district", _("District department")

    code = models.SlugField(_("code"), max_length=40, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    # A district department serves several townships; township offices belong to one.
    township = models.ForeignKey(
        Township,
        verbose_name=_("township"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="departments",
    )
    contact_name = models.CharField(_("contact"), max_length=60, blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=40, blank=True)
    # The department's own system: summons are POSTed there, signed with the secret.
    webhook_url = models.URLField(_("webhook URL"), blank=True)
    webhook_secret = models.CharField(
        _("webhook secret"),
        max_length=64,
        blank=True,
        help_text=_(
            "Generated when a webhook URL is saved; the receiver checks signatures with it."
        ),
    )
    mqtt_downlink = models.BooleanField(
        _("MQTT downlink"),
        default=False,
        help_text=_("Also publish summons to whistle/{township}/dispatch/{department}."),
    )
    # Paged when the on-call and the backup have not answered (an escalation chain's step).
    head = models.ForeignKey(
        "User",
        verbose_name=_("department head"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="headed_departments",
    )

    class Robot(models.TextChoices):
        NONE = "", _("None")
        DINGTALK = "dingtalk", _("DingTalk group robot")
        WECOM = "wecom", _("WeCom group robot")

    # The department's work group (钉钉 / 企业微信 群机器人): people who choose "work group" are
    # @-mentioned there by their phone number.
    robot = models.CharField(
        _("work group robot"), max_length=10, choices=Robot.choices, blank=True
    )
    robot_url = models.URLField(
        _("robot webhook URL"),
        blank=True,
        help_text=_("The robot's address with its access_token (DingTalk) or key (WeCom)."),
    )
    robot_secret = models.CharField(
        _("robot signing secret"),
        max_length=100,
        blank=True,
        help_text=_("DingTalk's 加签 secret (SEC…); WeCom robots have none."),
    )
    categories = models.ManyToManyField(
        Category,
        verbose_name=_("responsible for"),
        through="Responsibility",
        related_name="departments",
        blank=True,
    )

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["kind", "code"]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.webhook_url and not self.webhook_secret:
            self.webhook_secret = secrets.token_urlsafe(32)
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "webhook_secret"}
        super().save(*args, **kwargs)


class Responsibility(models.Model):
    """One line of the responsibility list (清单): this department handles this category."""

    department = models.ForeignKey(
        Department, verbose_name=_("department"), on_delete=models.CASCADE
    )
    category = models.ForeignKey(Category, verbose_name=_("category"), on_delete=models.CASCADE)
    lead = models.BooleanField(_("lead department"), default=False)

    class Meta:
        verbose_name = _("responsibility")
        verbose_name_plural = _("responsibility list")
        constraints = [
            models.UniqueConstraint(fields=["department", "category"], name="uniq_responsibility")
        ]

    def __str__(self) -> str:
        return f"{self.category} → {self.department}"


class NotifyChannel(models.TextChoices):
    """The ways a person can be reached, besides the console that is always used."""

    SMS = "sms", _("SMS")
    EMAIL = "email", _("E-mail")
    ROBOT = "robot", _("Work group (DingTalk / WeCom)")
    SYSTEM = "system", _("The department's own system")


# A person who has chosen nothing is reached by SMS, then by e-mail.
DEFAULT_NOTIFY_BY = [NotifyChannel.SMS.value, NotifyChannel.EMAIL.value]


def validate_notify_by(value: Any) -> None:
    from django.core.exceptions import ValidationError

    if not isinstance(value, list) or any(v not in NotifyChannel.values for v in value):
        raise ValidationError(
            _("List channels from %(channels)s, in order."),
            code="notify_by",
            params={"channels": ", ".join(NotifyChannel.values)},
        )
    if len(set(value)) != len(value):
        raise ValidationError(_("Name each channel once."), code="notify_by")


class User(AbstractUser):
    class Role(models.TextChoices):
        DUTY_OFFICER = "duty_officer", _("Duty officer")
        DEPARTMENT_MEMBER = "department_member", _("Department member")
        SUPERVISOR = "supervisor", _("Supervisor")
        GRID_OFFICER = "grid_officer", _("Grid officer")
        ADMINISTRATOR = "administrator", _("Administrator")
        # A hotline's system (12345, 12315 …) filing its tickets by Open311 with an API key.
        HOTLINE = "hotline", _("Hotline system")

    role = models.CharField(_("role"), max_length=24, choices=Role.choices, blank=True)
    township = models.ForeignKey(
        Township,
        verbose_name=_("township"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="users",
        help_text=_(
            "Scope of a duty officer, grid officer, township supervisor or hotline system."
        ),
    )
    # A duty officer, supervisor or administrator with a district and no township watches every
    # township of that district; with neither, a supervisor or administrator watches them all.
    district = models.ForeignKey(
        District,
        verbose_name=_("district"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="users",
        help_text=_(
            "Scope of a district duty officer, supervisor or administrator (every township of "
            "the district). Leave empty for a township's people."
        ),
    )
    department = models.ForeignKey(
        Department,
        verbose_name=_("department"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="members",
    )
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    # A district supervisor of the discipline inspection office (纪委), paged by the chains'
    # last steps; scoped as any supervisor.
    discipline = models.BooleanField(_("discipline inspection office (纪委)"), default=False)
    # How this person is reached, in order (Grafana OnCall's personal notification policy):
    # the first channel that can reach them is used, the next one when it fails for good. The
    # console (a live page, with the browser's notification) is always used as well.
    notify_by = models.JSONField(
        _("notify me by"),
        default=list,
        blank=True,
        validators=[validate_notify_by],
        help_text=_('In order, from "sms", "email", "robot" (work group), "system".'),
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        super().clean()
        if self.township_id and self.district_id:
            # A township's people are in its district already; both would be two scopes.
            raise ValidationError(
                {"district": _("Give a township or a district, not both.")}, code="two_scopes"
            )

    @property
    def display_name(self) -> str:
        """王晓明 for Chinese names (family name first, no space), Ann Lee otherwise."""
        first, last = self.first_name.strip(), self.last_name.strip()
        if not (first or last):
            return self.username
        if any("\u4e00" <= ch <= "\u9fff" for ch in first + last):
            return f"{last}{first}"
        return f"{first} {last}".strip()


class Grid(BilingualName):
    class Kind(models.TextChoices):
        COMPREHENSIVE = "comprehensive", _("Comprehensive grid")
        DEDICATED = "dedicated", _("Dedicated grid")

    township = models.ForeignKey(
        Township, verbose_name=_("township"), on_delete=models.CASCADE, related_name="grids"
    )
    code = models.CharField(_("unified code"), max_length=40, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    polygon = models.JSONField(_("boundary (GeoJSON Polygon)"), default=dict, blank=True)
    head = models.ForeignKey(
        User,
        verbose_name=_("grid head"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="headed_grids",
    )
    members = models.ManyToManyField(
        User, verbose_name=_("grid members"), related_name="grids", blank=True
    )

    class Meta:
        verbose_name = _("grid")
        verbose_name_plural = _("grids")
        ordering = ["code"]


class Device(BilingualName):
    class Kind(models.TextChoices):
        CAMERA = "camera", _("Camera")
        SENSOR = "sensor", _("Sensor")
        GATEWAY = "gateway", _("Gateway")

    township = models.ForeignKey(
        Township, verbose_name=_("township"), on_delete=models.CASCADE, related_name="devices"
    )
    # The id a gateway puts in the topic: whistle/{township}/camera/{code}/event.
    code = models.SlugField(_("device id"), max_length=64)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    sensor_type = models.CharField(
        _("sensor type"), max_length=32, blank=True, help_text=_("water_level, smoke, gas, aqi …")
    )
    grid = models.ForeignKey(
        Grid,
        verbose_name=_("grid"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="devices",
    )
    gateway = models.ForeignKey(
        "self",
        verbose_name=_("gateway"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="children",
    )
    latitude = models.FloatField(_("latitude"), null=True, blank=True)
    longitude = models.FloatField(_("longitude"), null=True, blank=True)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    online = models.BooleanField(_("online"), default=False)
    last_seen = models.DateTimeField(_("last seen"), null=True, blank=True)

    class Meta:
        verbose_name = _("device")
        verbose_name_plural = _("devices")
        ordering = ["township", "code"]
        constraints = [
            models.UniqueConstraint(fields=["township", "code"], name="uniq_device_code")
        ]


class ApiToken(models.Model):
    """A system's credential for the JSON API, acting as its user. Only a hash is stored; the
    token is shown once, when it is created (`whistle create-api-token`)."""

    user = models.ForeignKey(
        User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=12, unique=True)
    key_hash = models.CharField(_("key hash"), max_length=64)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked = models.BooleanField(_("revoked"), default=False)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class OnCall(models.Model):
    """Who answers for a department (AB岗): the on-call and the backup who stands in."""

    primary = models.ForeignKey(
        User, verbose_name=_("on call (A)"), on_delete=models.CASCADE, related_name="+"
    )
    backup = models.ForeignKey(
        User,
        verbose_name=_("backup (B)"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        abstract = True

    def clean(self) -> None:
        """Whoever is on call must belong to the department: its console is where they
        answer."""
        from django.core.exceptions import ValidationError

        errors = {}
        for field in ("primary", "backup"):
            person = getattr(self, field, None)
            department_id = getattr(self, "department_id", None)
            if person is not None and department_id and person.department_id != department_id:
                errors[field] = _("%(person)s is not a member of this department.") % {
                    "person": person.display_name
                }
        if errors:
            raise ValidationError(errors)


class OnCallShift(OnCall):
    """One line of a department's weekly on-call rota (值班表, AB岗): on these weekdays, from
    ``starts`` to ``ends`` on the township's clock (past midnight when ``ends`` is not after
    ``starts``), ``primary`` answers and ``backup`` stands in."""

    department = models.ForeignKey(
        Department,
        verbose_name=_("department"),
        on_delete=models.CASCADE,
        related_name="on_call_shifts",
    )
    # ISO weekdays, 1 Monday … 7 Sunday; empty means every day.
    weekdays = models.JSONField(
        _("weekdays"),
        default=list,
        blank=True,
        help_text=_("1 Monday … 7 Sunday, e.g. [1, 2, 3, 4, 5]; empty means every day."),
    )
    starts = models.TimeField(_("from"))
    ends = models.TimeField(
        _("until"), help_text=_("Not after 'from': the shift runs past midnight.")
    )

    class Meta:
        verbose_name = _("on-call shift")
        verbose_name_plural = _("on-call rota")
        ordering = ["department", "starts"]

    def __str__(self) -> str:
        return f"{self.department} {self.starts:%H:%M}–{self.ends:%H:%M}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        days = self.weekdays
        if not isinstance(days, list) or any(
            not isinstance(d, int) or isinstance(d, bool) or not 1 <= d <= 7 for d in days
        ):
            raise ValidationError({"weekdays": _("Give weekdays as numbers 1 (Monday) to 7.")})
        super().clean()


class OnCallOverride(OnCall):
    """A change to the rota for a while (leave, a swap): from ``starts_at`` to ``ends_at`` these
    people are on call instead of the rota's."""

    department = models.ForeignKey(
        Department,
        verbose_name=_("department"),
        on_delete=models.CASCADE,
        related_name="on_call_overrides",
    )
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("on-call override")
        verbose_name_plural = _("on-call overrides (leave, swaps)")
        ordering = ["department", "-starts_at"]
        indexes = [models.Index(fields=["department", "starts_at", "ends_at"])]

    def __str__(self) -> str:
        return f"{self.department} {self.starts_at:%Y-%m-%d %H:%M} → {self.primary}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": _("The override must end after it starts.")})
        super().clean()
