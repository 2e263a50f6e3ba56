"""A township rates the departments that served it, the department objects, the township
answers (supervision.assessment's services), with every step on the timeline."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from command import clock
from command.errors import ActionForbidden, TransitionNotAllowed
from command.org.models import Category, Department, Grid, Township, User
from command.timeline.models import TimelineEntry
from incidents.models import Incident, Summons, Whistle
from incidents.services.incidents import incident_open
from incidents.services.whistles import SummonedDepartment, whistle_blow
from supervision import assessment
from supervision.models import AssessmentScheme, RatingObjection

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
OCTOBER = date(2026, 10, 1)
NOW = datetime(2026, 11, 3, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture
def served(demo):
    """Four whistles in October summoning the police: three checked in on time, one late."""
    qingshui = Township.objects.get(code="qingshui")
    duty = User.objects.get(username="duty")
    police = Department.objects.get(code="police")
    for n in range(4):
        at = datetime(2026, 10, 5 + n, 10, 0, tzinfo=SHANGHAI)
        with clock.frozen(at=at):
            incident = incident_open(
                actor=duty,
                township=qingshui,
                category=Category.objects.get(code="parking"),
                severity="major",
                title=f"违停 {n}",
                grid=Grid.objects.get(code="110112-QS-007"),
            )
            whistle = whistle_blow(
                actor=duty,
                incident=incident,
                kind=Whistle.Kind.GENERAL,
                purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
                departments=[SummonedDepartment(police, "needed")],
            )
        summons = whistle.summonses.get()
        late = n == 3
        Summons.objects.filter(pk=summons.pk).update(
            checked_in_at=summons.check_in_deadline + timedelta(minutes=10 if late else -10),
            overdue=late,
        )
    # The last incident closed after a callback: satisfied.
    Incident.objects.filter(pk=incident.pk).update(satisfaction="satisfied")
    rater = User.objects.create_user(
        "qs-rater", role=User.Role.SUPERVISOR, township=qingshui, password="x"
    )
    member = User.objects.get(username="police")
    return qingshui, police, rater, member


def criteria(township):
    return {c.name: c for c in assessment.criteria_for(township)}


def test_a_township_rates_a_department_and_the_score_follows_the_weights(served):
    qingshui, police, rater, _member = served
    found = criteria(qingshui)
    assert set(found) == {"配合度", "办理质量"}  # the defaults, made on first use
    with clock.frozen(at=NOW):
        rating = assessment.rating_give(
            actor=rater, township=qingshui, department=police, period="month",
            period_start=OCTOBER, marks={found["配合度"].pk: 90, found["办理质量"].pk: "70"},
            comment="到场及时",
        )  # fmt: skip
    # on time 3/4 = 75; finishing 4/4 = 100; nothing accepted (left out); satisfaction 1/1 =
    # 100; no orders = 100. measured = (.30×75 + .25×100 + .15×100 + .10×100) / .80
    # = (22.5 + 25 + 15 + 10) / .8 = 90.625; township = (90 + 70) / 2 = 80;
    # score = .7 × 90.625 + .3 × 80 = 63.4375 + 24 = 87.4375 → 87.44
    assert rating.score == Decimal("87.44")
    assert rating.computation["left_out"] == ["first_time"]
    assert rating.measured["received"] == 4 and rating.measured["on_time"] == 3
    rows = TimelineEntry.objects.filter(subject_type="rating", subject_id=rating.pk).exclude(
        action__contains="page"  # the department's people told of it: their own test
    )
    assert [r.action for r in rows] == ["rating.given"]

    # The district weighs the township's marks 50%: a new rating computes with it.
    AssessmentScheme.objects.create(district=qingshui.district, township_share=Decimal("0.5"))
    with clock.frozen(at=NOW + timedelta(hours=1)):
        again = assessment.rating_give(
            actor=rater, township=qingshui, department=police, period="month",
            period_start=OCTOBER, marks={found["配合度"].pk: 90, found["办理质量"].pk: 70},
        )  # fmt: skip
    assert again.pk == rating.pk
    assert again.score == Decimal("85.31")  # .5 × 90.625 + .5 × 80 = 85.3125
    assert again.objection_until == rating.objection_until  # the window does not start again
    assert list(rows.order_by("time").values_list("action", flat=True)) == [
        "rating.given",
        "rating.revised",
    ]


def test_refusals(served):
    qingshui, police, rater, member = served
    found = criteria(qingshui)
    marks = {c.pk: 80 for c in found.values()}
    with clock.frozen(at=NOW):
        with pytest.raises(ActionForbidden):
            assessment.rating_give(actor=member, township=qingshui, department=police,
                                   period="month", period_start=OCTOBER, marks=marks)  # fmt: skip
        district = User.objects.get(username="supervisor")  # reads every township, rates none
        with pytest.raises(ActionForbidden):
            assessment.rating_give(actor=district, township=qingshui, department=police,
                                   period="month", period_start=OCTOBER, marks=marks)  # fmt: skip
        for kwargs, code in [
            ({"period_start": date(2026, 11, 1)}, "period_not_ended"),
            ({"period_start": date(2026, 10, 2)}, "period_invalid"),
            ({"period_start": date(2026, 9, 1)}, "department_did_not_serve"),
            ({"marks": {found["配合度"].pk: 80}}, "marks_missing"),
            ({"marks": {**marks, found["配合度"].pk: 101}}, "mark_invalid"),
            ({"marks": {**marks, found["配合度"].pk: "NaN"}}, "mark_invalid"),
        ]:
            given = {"period_start": OCTOBER, "marks": marks, **kwargs}
            with pytest.raises(TransitionNotAllowed) as refused:
                assessment.rating_give(actor=rater, township=qingshui, department=police,
                                       period="month", **given)  # fmt: skip
            assert refused.value.code == code, kwargs
    assert not police.ratings.exists()


def test_the_department_objects_and_the_township_answers(served):
    qingshui, police, rater, member = served
    found = criteria(qingshui)
    with clock.frozen(at=NOW):
        rating = assessment.rating_give(actor=rater, township=qingshui, department=police,
                                        period="month", period_start=OCTOBER,
                                        marks={c.pk: 60 for c in found.values()})  # fmt: skip
    with clock.frozen(at=NOW + timedelta(days=1)):
        with pytest.raises(ActionForbidden):
            assessment.rating_object(actor=rater, rating=rating, text="不服")
        objection = assessment.rating_object(
            actor=member, rating=rating, text="10月7日迟到系交通管制所致，附证明。"
        )
        with pytest.raises(TransitionNotAllowed) as refused:
            assessment.rating_object(actor=member, rating=rating, text="again")
        assert refused.value.code == "objection_pending"
        answered = assessment.objection_answer(
            actor=rater, objection=objection, answer="情况属实，配合度改为 80。",
            outcome=RatingObjection.Outcome.UPHELD,
            marks={found["配合度"].pk: 80, found["办理质量"].pk: 60},
        )  # fmt: skip
    rating.refresh_from_db()
    assert answered.outcome == "upheld"
    # measured 90.625; township (80 + 60) / 2 = 70; .7 × 90.625 + .3 × 70 = 63.4375 + 21
    assert rating.score == Decimal("84.44")
    actions = list(
        TimelineEntry.objects.filter(subject_type="rating", subject_id=rating.pk)
        .exclude(action__contains="page")
        .order_by("time")
        .values_list("action", flat=True)
    )
    # The revision and the answer are one change, at one moment.
    assert actions[:2] == ["rating.given", "rating.objected"]
    assert sorted(actions[2:]) == ["rating.answered", "rating.revised"]
    with clock.frozen(at=rating.objection_until + timedelta(seconds=1)):
        with pytest.raises(TransitionNotAllowed) as refused:
            assessment.rating_object(actor=member, rating=rating, text="late")
    assert refused.value.code == "objection_closed"


def test_the_department_is_told_of_its_rating_and_the_township_of_the_objection(served):
    from alerts.models import Notification
    from frontend.notifications import notification_target

    qingshui, police, rater, member = served
    head = User.objects.create_user("police-head", role=User.Role.DEPARTMENT_MEMBER,
                                    department=police, password="x")  # fmt: skip
    police.head = head
    police.save(update_fields=["head"])
    found = criteria(qingshui)
    with clock.frozen(at=NOW):
        rating = assessment.rating_give(actor=rater, township=qingshui, department=police,
                                        period="month", period_start=OCTOBER,
                                        marks={c.pk: 60 for c in found.values()})  # fmt: skip
    told = Notification.objects.filter(subject_type="rating", channel="console")
    assert sorted(n.user.username for n in told) == ["police", "police-head"]
    words = told.first().text
    assert "清水派出所" in words and "2026-10" in words and str(rating.score) in words
    assert notification_target(member, told.get(user=member)) == (
        f"/console/police/assessment/#rating-{rating.pk}"
    )
    with clock.frozen(at=NOW + timedelta(hours=1)):
        # The same marks again change nothing: nobody is told twice.
        assessment.rating_give(actor=rater, township=qingshui, department=police,
                               period="month", period_start=OCTOBER,
                               marks={c.pk: 60 for c in found.values()})  # fmt: skip
        assert told.count() == 2
        objection = assessment.rating_object(actor=member, rating=rating, text="请复核到场时间")
    to_township = told.filter(user=rater).get()
    assert "请复核到场时间" in to_township.text
    assert to_township.link.endswith("/ratings/2026-10/police/#objections")
    with clock.frozen(at=NOW + timedelta(hours=2)):
        assessment.objection_answer(actor=rater, objection=objection, answer="维持原评分",
                                    outcome="rejected")  # fmt: skip
    assert told.filter(user=member).count() == 2  # the rating, then the answer
    actions = set(
        TimelineEntry.objects.filter(subject_type="rating", subject_id=rating.pk).values_list(
            "action", flat=True
        )
    )
    assert "rating.paged" in actions


@pytest.mark.django_db(transaction=True)
def test_two_people_rating_at_once_never_fail_with_a_database_error(served):
    import threading

    from django.db import connection

    qingshui, police, rater, _member = served
    other = User.objects.create_user(
        "qs-rater-2", role=User.Role.SUPERVISOR, township=qingshui, password="x"
    )
    marks = {c.pk: 70 for c in criteria(qingshui).values()}
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def rate(actor: User) -> None:
        try:
            barrier.wait(5)
            assessment.rating_give(actor=actor, township=qingshui, department=police,
                                   period="month", period_start=OCTOBER, marks=marks)  # fmt: skip
            outcomes.append("rated")
        except TransitionNotAllowed as refusal:
            outcomes.append(refusal.code)
        except Exception as error:  # an IntegrityError would land here
            outcomes.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=rate, args=(u,)) for u in (rater, other)]
    with clock.frozen(at=NOW):  # the process's clock, for both threads
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    assert sorted(outcomes) in (["rated", "rated"], ["rated", "rated_meanwhile"]), outcomes
    assert police.ratings.count() == 1
