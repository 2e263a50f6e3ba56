"""A department's combined score (supervision.assessment.compute), checked by hand and by
properties: the arithmetic a department reads on its assessment page."""

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from supervision.assessment import compute, parse_period, period_end, period_start_of
from supervision.models import AssessmentCriterion, AssessmentScheme
from supervision.stats import DepartmentRow


def row(**figures) -> DepartmentRow:
    base = dict(
        code="police", name="派出所", received=0, acknowledged=0, checked_in=0, on_time=0,
        median_check_in=None, p90_check_in=None, done=0, overdue=0, escalated=0,
    )  # fmt: skip
    return DepartmentRow(**{**base, **figures})


def criterion(pk: int, weight: str) -> AssessmentCriterion:
    return AssessmentCriterion(pk=pk, name=f"c{pk}", weight=Decimal(weight))


def test_the_score_by_hand():
    # 10 summonses, 8 on time (80), 1 late finishing (90), 5 accepted of which 4 first time
    # (80), 4 callbacks of which 3 satisfied (75), 1 order (100 - 20 = 80).
    figures = row(
        received=10, on_time=8, finish_overdue=1, accepted=5, accepted_first_time=4,
        rated=4, satisfied=3, orders=1,
    )  # fmt: skip
    # measured = .30×80 + .25×90 + .20×80 + .15×75 + .10×80 = 24 + 22.5 + 16 + 11.25 + 8 = 81.75
    # township = (2×90 + 1×60) / 3 = 80
    # score = .7 × 81.75 + .3 × 80 = 57.225 + 24 = 81.225 → 81.23 (half up)
    done = compute(figures, [(criterion(1, "2"), Decimal(90)), (criterion(2, "1"), Decimal(60))],
                   AssessmentScheme())  # fmt: skip
    assert done.measured == Decimal("81.75")
    assert done.township == Decimal(80)
    assert done.score == Decimal("81.23")
    assert done.left_out == []
    shown = done.as_json()
    assert [p["points"] for p in shown["measured_parts"]] == [
        "80.00",
        "90.00",
        "80.00",
        "75.00",
        "80.00",
    ]


def test_a_figure_with_nothing_to_measure_is_left_out_and_the_others_fill_its_place():
    # Nothing accepted, nobody called back: on time 50, finishing 100, orders 100, weights
    # .30/.25/.10 over .65: (15 + 25 + 10) / .65 = 76.923…; township 70 at a 40% share.
    figures = row(received=4, on_time=2)
    scheme = AssessmentScheme(township_share=Decimal("0.40"))
    done = compute(figures, [(criterion(1, "1"), Decimal(70))], scheme)
    assert done.left_out == ["first_time", "satisfaction"]
    assert done.measured.quantize(Decimal("0.0001")) == Decimal("76.9231")
    # .6 × 76.923077 + .4 × 70 = 46.153846 + 28 = 74.153846 → 74.15
    assert done.score == Decimal("74.15")


def test_many_orders_cannot_take_the_figure_below_nothing():
    done = compute(row(received=1, on_time=1, orders=9), [], AssessmentScheme())
    orders = next(p for p in done.measured_parts if p.key == "orders")
    assert orders.points == 0
    assert done.township is None and done.score == done.measured.quantize(Decimal("0.01"))


@given(
    received=st.integers(0, 50),
    data=st.data(),
    marks=st.lists(st.tuples(st.integers(1, 5), st.integers(0, 100)), max_size=4),
    share=st.integers(0, 100),
)
def test_the_score_lies_between_its_lowest_and_highest_part(received, data, marks, share):
    on_time = data.draw(st.integers(0, received))
    late = data.draw(st.integers(0, received))
    accepted = data.draw(st.integers(0, received))
    first = data.draw(st.integers(0, accepted))
    rated = data.draw(st.integers(0, received))
    satisfied = data.draw(st.integers(0, rated))
    orders = data.draw(st.integers(0, 8))
    figures = row(
        received=received, on_time=on_time, finish_overdue=late, accepted=accepted,
        accepted_first_time=first, rated=rated, satisfied=satisfied, orders=orders,
    )  # fmt: skip
    given_marks = [(criterion(i, str(w)), Decimal(m)) for i, (w, m) in enumerate(marks, 1)]
    done = compute(figures, given_marks, AssessmentScheme(township_share=Decimal(share) / 100))
    points = [p.points for p in done.measured_parts + done.mark_parts if p.points is not None]
    assert min(points) - Decimal("0.01") <= done.score <= max(points) + Decimal("0.01")
    assert 0 <= done.score <= 100
    for part in (done.measured_parts, done.mark_parts):
        effective = sum(p.effective for p in part)
        assert effective == 0 or abs(effective - 1) < Decimal("1e-20")


def test_periods():
    assert parse_period("2026-10") == (
        "month",
        period_start_of("month", date(2026, 10, 17)),
    )
    kind, start = parse_period("2026-q4")
    assert (kind, start.isoformat(), period_end(kind, start).isoformat()) == (
        "quarter",
        "2026-10-01",
        "2027-01-01",
    )
    assert parse_period("2026")[1].isoformat() == "2026-01-01"
    for bad in ("2026-13", "2026-Q5", "26-10", "", "2026-10-01", "0000-01"):
        try:
            parse_period(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
