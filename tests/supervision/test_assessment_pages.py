"""The assessment pages through HTTP: the township rates on its form, the department reads
and objects on its page, the district ranks; who may see what."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import openpyxl
import pytest
from django.test import Client

from command import clock
from command.org.models import Department, Township, User
from incidents.models import Summons
from supervision import assessment
from supervision.models import DepartmentRating, RatingObjection
from tests.conftest import signed_in
from tests.supervision.test_ratings import NOW, served  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_township_rates_on_its_form_and_sees_how_the_score_was_reached(served):  # noqa: F811
    qingshui, _police, rater, member = served
    web = client_for(rater)
    with clock.frozen(at=NOW):
        page = web.get("/supervise/qingshui/ratings/?period=2026-10")
        assert page.status_code == 200
        assert 'data-department="police"' in page.content.decode()
        criteria = assessment.criteria_for(qingshui)
        url = "/supervise/qingshui/ratings/2026-10/police/"
        # A mark out of range is shown in the form, nothing saved.
        bad = web.post(url, {"rate": "1", **{f"mark_{c.pk}": "120" for c in criteria}})
        assert bad.status_code == 400 and "100" in bad.content.decode()
        assert not DepartmentRating.objects.exists()
        done = web.post(
            url, {"rate": "1", "comment": "好", **{f"mark_{c.pk}": "80" for c in criteria}}
        )
        assert done.status_code == 302
        shown = web.get(url).content.decode()
    # measured 90.625 (see test_ratings); .7 × 90.625 + .3 × 80 = 87.4375
    assert 'id="rating-score">87.44<' in shown
    assert "90.63" in shown  # the measured part, as the computation shows it

    # The department sees it and objects; another department's member cannot see the page.
    police_web = client_for(member)
    with clock.frozen(at=NOW + timedelta(days=1)):
        mine = police_web.get("/console/police/assessment/").content.decode()
        assert "87.44" in mine and "objection-form" in mine
        rating = DepartmentRating.objects.get()
        empty = police_web.post("/console/police/assessment/", {"rating": rating.pk, "text": " "})
        assert empty.status_code == 400
        objected = police_web.post(
            "/console/police/assessment/", {"rating": rating.pk, "text": "迟到一次系道路封闭"}
        )
        assert objected.status_code == 302
    assert RatingObjection.objects.get().text == "迟到一次系道路封闭"
    assert signed_in("chengguan").get("/console/police/assessment/").status_code == 403
    assert police_web.get("/supervise/qingshui/ratings/").status_code == 403

    # The township rejects it.
    objection = RatingObjection.objects.get()
    with clock.frozen(at=NOW + timedelta(days=2)):
        answered = web.post(
            url,
            {"answer-objection": "1", "objection": objection.pk, "outcome": "rejected",
             "answer": "封闭有绕行路线"},
        )  # fmt: skip
    assert answered.status_code == 302
    objection.refresh_from_db()
    assert objection.outcome == "rejected"


def test_the_district_ranks_departments_across_townships(served):  # noqa: F811
    qingshui, police, rater, _member = served
    beishan = Township.objects.create(code="beishan", name="北山镇", district=qingshui.district)
    chengguan = Department.objects.get(code="chengguan")
    # Beishan and Qingshui rated the police; Qingshui rated the chengguan too.
    with clock.frozen(at=NOW):
        criteria = assessment.criteria_for(qingshui)
        assessment.rating_give(actor=rater, township=qingshui, department=police, period="month",
                               period_start=assessment.date(2026, 10, 1),
                               marks={c.pk: 80 for c in criteria})  # fmt: skip
    from supervision.models import DepartmentRating as Rating

    Rating.objects.create(township=beishan, department=police, period="month",
                          period_start=assessment.date(2026, 10, 1), score="70.00",
                          rated_at=NOW, objection_until=NOW)  # fmt: skip
    Rating.objects.create(township=qingshui, department=chengguan, period="month",
                          period_start=assessment.date(2026, 10, 1), score="79.00",
                          rated_at=NOW, objection_until=NOW)  # fmt: skip
    district = signed_in("supervisor")
    with clock.frozen(at=NOW):
        page = district.get("/supervise/district/?period=2026-10")
        assert page.status_code == 200
        body = page.content.decode()
        exported = district.get("/supervise/district/?period=2026-10&csv=departments")
    # police: (87.44 + 70) / 2 = 78.72; chengguan 79 → chengguan first
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [(r[0], r[1], r[3], r[4]) for r in rows[1:]] == [
        ("1", "chengguan", "79.00", "1"),
        ("2", "police", "78.72", "2"),
    ]
    assert body.index('data-department="chengguan"') < body.index('data-department="police"')
    # The year-end ranking (any period) as a workbook: departments, then townships.
    with clock.frozen(at=NOW):
        workbook = district.get("/supervise/district/?period=2026-10&xlsx=1")
    book = openpyxl.load_workbook(io.BytesIO(workbook.content))
    departments = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    assert [(r[0], r[1], r[3]) for r in departments[1:]] == [
        (1, "chengguan", 79.0),
        (2, "police", 78.72),
    ]
    assert len(book.worksheets) == 2
    assert client_for(rater).get("/supervise/district/").status_code == 403
    assert district.get("/supervise/district/?period=2026-13").status_code == 400


def test_a_township_drifting_above_631_is_marked(served):  # noqa: F811
    qingshui, *_ = served
    from incidents.models import Incident

    closed = Incident.objects.filter(township=qingshui)[:4]
    for n, incident in enumerate(closed):
        Incident.objects.filter(pk=incident.pk).update(
            status="closed",
            closed_at=NOW - timedelta(days=20),
            settled_level="county" if n < 2 else "grid",
        )
    with clock.frozen(at=NOW):
        body = signed_in("supervisor").get("/supervise/district/?period=2026-10").content.decode()
    row = body[body.index('<tr data-township="qingshui" class="drifting">') :]
    assert "50%" in row[: row.index("</tr>")]
    assert Summons.objects.exists()


def test_the_computation_reads_in_the_readers_language_whoever_rated(served):  # noqa: F811
    qingshui, police, rater, member = served
    marks = {c.pk: 70 for c in assessment.criteria_for(qingshui)}
    with clock.frozen(at=NOW):
        assessment.rating_give(actor=rater, township=qingshui, department=police,
                               period="month", period_start=assessment.date(2026, 10, 1),
                               marks=marks)  # fmt: skip
    police_web = client_for(member)
    police_web.post("/i18n/setlang/", {"language": "en"})
    english = police_web.get("/console/police/assessment/").content.decode()
    assert "on-time arrival" in english and "Cooperation" in english
    police_web.post("/i18n/setlang/", {"language": "zh-hans"})
    chinese = police_web.get("/console/police/assessment/").content.decode()
    assert "按时到场" in chinese and "配合度" in chinese and "on-time arrival" not in chinese
