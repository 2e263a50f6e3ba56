"""Assessment (督查考核): how a district combines a department's score, the criteria a
township marks departments on, the ratings a township gives for a period, and the
department's written objections to them (以下评上: the township rates the departments that
serve it)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from command.org.models import BilingualName, Department, Township

# The measured figures of a department's score, in the order they are shown, with their
# default weights within the measured part (they sum to 1).
MEASURED_DEFAULTS = {
    "on_time_arrival": Decimal("0.30"),
    "on_time_finishing": Decimal("0.25"),
    "first_time": Decimal("0.20"),
    "satisfaction": Decimal("0.15"),
    "orders": Decimal("0.10"),
}
_WEIGHT = {"max_digits": 4, "decimal_places": 2, "validators": [MinValueValidator(0)]}


class Period(models.TextChoices):
    MONTH = "month", _("month")
    QUARTER = "quarter", _("quarter")
    YEAR = "year", _("year")


class AssessmentScheme(models.Model):
    """How a district combines a department's score (考核办法): the share of the townships'
    own marks, and the weights of the measured figures within the rest. The scheme without a
    district is the one every district without its own uses."""

    district = models.ForeignKey(
        "org.District",
        verbose_name=_("district"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="assessment_schemes",
        help_text=_("Empty: every district without a scheme of its own."),
    )
    township_share = models.DecimalField(
        _("townships' marks share"),
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.30"),
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text=_("Of a department's score, from 0 to 1 (0.30: the townships weigh 30%)."),
    )
    on_time_arrival = models.DecimalField(
        _("weight: on-time arrival"), default=MEASURED_DEFAULTS["on_time_arrival"], **_WEIGHT
    )
    on_time_finishing = models.DecimalField(
        _("weight: on-time finishing"), default=MEASURED_DEFAULTS["on_time_finishing"], **_WEIGHT
    )
    first_time = models.DecimalField(
        _("weight: accepted first time"), default=MEASURED_DEFAULTS["first_time"], **_WEIGHT
    )
    satisfaction = models.DecimalField(
        _("weight: satisfaction"), default=MEASURED_DEFAULTS["satisfaction"], **_WEIGHT
    )
    orders = models.DecimalField(
        _("weight: supervision orders"), default=MEASURED_DEFAULTS["orders"], **_WEIGHT
    )
    order_penalty = models.PositiveSmallIntegerField(
        _("points off per supervision order"),
        default=20,
        validators=[MaxValueValidator(100)],
        help_text=_("The supervision-order figure starts at 100 and loses this per order."),
    )
    objection_days = models.PositiveSmallIntegerField(
        _("days to object"),
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
        help_text=_("A department may object in writing this many days after it is rated."),
    )

    class Meta:
        verbose_name = _("assessment scheme")
        verbose_name_plural = _("assessment schemes")
        ordering = ["district__code"]
        constraints = [
            # One scheme for every district: NULL is one value here, not many.
            models.UniqueConstraint(
                fields=["district"], name="one_scheme_per_district", nulls_distinct=False
            )
        ]

    def __str__(self) -> str:
        return str(self.district) if self.district_id else str(_("every district"))

    @property
    def measured_weights(self) -> dict[str, Decimal]:
        return {name: getattr(self, name) for name in MEASURED_DEFAULTS}

    def clean(self) -> None:
        total = sum(self.measured_weights.values(), Decimal(0))
        if total != 1:
            raise ValidationError(
                _("The measured figures' weights must add up to 1 (now %(total)s).")
                % {"total": total}
            )


class AssessmentCriterion(BilingualName):
    """A township's own criterion (配合度 cooperation, 办理质量 quality …), marked 0–100."""

    township = models.ForeignKey(
        Township,
        verbose_name=_("township"),
        on_delete=models.CASCADE,
        related_name="assessment_criteria",
    )
    weight = models.DecimalField(
        _("weight"),
        max_digits=4,
        decimal_places=2,
        default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("Relative to the township's other criteria."),
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    active = models.BooleanField(_("in use"), default=True)

    class Meta:
        verbose_name = _("assessment criterion")
        verbose_name_plural = _("assessment criteria")
        ordering = ["township", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["township", "name"], name="criterion_unique_name")
        ]


class DepartmentRating(models.Model):
    """A township's rating of a department for a period: its marks, and the combined score
    with how it was computed (the measured figures as they were when it was rated)."""

    township = models.ForeignKey(
        Township, verbose_name=_("township"), on_delete=models.PROTECT, related_name="ratings"
    )
    department = models.ForeignKey(
        Department, verbose_name=_("department"), on_delete=models.PROTECT, related_name="ratings"
    )
    period = models.CharField(_("period"), max_length=8, choices=Period.choices)
    period_start = models.DateField(_("period starts"))
    comment = models.TextField(_("comment"), blank=True)
    measured = models.JSONField(_("measured figures"), default=dict)
    score = models.DecimalField(_("score"), max_digits=5, decimal_places=2)
    # Each part's figure, points, weight and contribution: the department reads how its score
    # was reached (supervision.assessment.Computation).
    computation = models.JSONField(_("computation"), default=dict)
    rated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("rated by"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    rated_at = models.DateTimeField(_("rated at"))
    objection_until = models.DateTimeField(_("objections until"))

    class Meta:
        verbose_name = _("department rating")
        verbose_name_plural = _("department ratings")
        ordering = ["-period_start", "township", "department"]
        constraints = [
            models.UniqueConstraint(
                fields=["township", "department", "period", "period_start"],
                name="rating_once_per_period",
            )
        ]
        indexes = [models.Index(fields=["period", "period_start"], name="rating_period")]

    def __str__(self) -> str:
        return f"{self.township} → {self.department} {self.period} {self.period_start}"


class RatingMark(models.Model):
    rating = models.ForeignKey(DepartmentRating, on_delete=models.CASCADE, related_name="marks")
    criterion = models.ForeignKey(
        AssessmentCriterion, verbose_name=_("criterion"), on_delete=models.PROTECT
    )
    mark = models.DecimalField(
        _("mark"),
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )

    class Meta:
        verbose_name = _("mark")
        verbose_name_plural = _("marks")
        constraints = [
            models.UniqueConstraint(fields=["rating", "criterion"], name="mark_once_per_criterion")
        ]

    def __str__(self) -> str:
        return f"{self.criterion}: {self.mark}"


class RatingObjection(models.Model):
    """A department's written objection to a rating (申诉), and the township's answer."""

    class Outcome(models.TextChoices):
        PENDING = "", _("awaiting the answer")
        UPHELD = "upheld", _("upheld: the rating is revised")
        REJECTED = "rejected", _("rejected: the rating stands")

    rating = models.ForeignKey(
        DepartmentRating, on_delete=models.CASCADE, related_name="objections"
    )
    text = models.TextField(_("objection"))
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    raised_at = models.DateTimeField(_("raised at"))
    answer = models.TextField(_("answer"), blank=True)
    outcome = models.CharField(
        _("outcome"), max_length=8, choices=Outcome.choices, blank=True, default=""
    )
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("objection")
        verbose_name_plural = _("objections")
        ordering = ["raised_at"]

    def __str__(self) -> str:
        return f"{self.rating}: {self.get_outcome_display()}"


class MonthlyReport(models.Model):
    """A township's monthly report (月度报表) as generated and sent: its figures, the workbook,
    and whether its supervisors have been sent it. One per township and month: generating the
    month again replaces the figures and the workbook, and a report sent is never sent again."""

    class Status(models.TextChoices):
        GENERATED = "generated", _("Generated")
        SENT = "sent", _("Sent")

    township = models.ForeignKey(
        Township, verbose_name=_("township"), on_delete=models.CASCADE, related_name="+"
    )
    month = models.CharField(_("month"), max_length=7, help_text=_("YYYY-MM"))
    generated_at = models.DateTimeField(_("generated at"))
    language = models.CharField(_("language"), max_length=16)
    # What the pages and the e-mail show, as generated: the figures and the workbook's bytes
    # (tens of kilobytes: kept in the row, so a report needs no storage of its own to back up).
    figures = models.JSONField(_("figures"), default=dict)
    workbook = models.BinaryField(_("workbook (.xlsx)"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.GENERATED
    )
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("monthly report")
        verbose_name_plural = _("monthly reports")
        ordering = ["-month", "township__code"]
        constraints = [
            models.UniqueConstraint(fields=["township", "month"], name="monthly_report_once")
        ]

    def __str__(self) -> str:
        return f"{self.township} {self.month}"
