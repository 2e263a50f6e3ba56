"""The ratings over the JSON API: rate, object, answer, rank; precise refusals."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client

from command import clock
from supervision import assessment
from tests.supervision.test_ratings import NOW, served  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


def post(client: Client, path: str, body: dict):
    return client.post(f"/api/v1{path}", json.dumps(body), content_type="application/json")


def as_user(user) -> Client:
    client = Client(enforce_csrf_checks=False)
    client.force_login(user)
    return client


def test_rate_object_answer_and_rank_over_the_api(served):  # noqa: F811
    qingshui, _police, rater, member = served
    marks = {str(c.pk): 80 for c in assessment.criteria_for(qingshui)}
    township, department = as_user(rater), as_user(member)
    body = {"township": "qingshui", "department": "police", "period": "2026-10", "marks": marks}
    with clock.frozen(at=NOW):
        assert post(department, "/ratings", body).status_code == 404  # not its township
        bad = post(township, "/ratings", {**body, "marks": {**marks, next(iter(marks)): 101}})
        assert bad.status_code == 422
        early = post(township, "/ratings", {**body, "period": "2026-11"})
        assert early.status_code == 409 and early.json()["code"] == "period_not_ended"
        given = post(township, "/ratings", body)
    assert given.status_code == 201, given.content
    rating = given.json()
    assert rating["score"] == "87.44" and rating["period"] == "2026-10"
    assert rating["computation"]["measured"] == "90.63"

    with clock.frozen(at=NOW + timedelta(days=1)):
        objected = post(department, f"/ratings/{rating['id']}/objections", {"text": "请复核"})
        assert objected.status_code == 201
        objection = objected.json()["objections"][0]
        assert post(department, f"/ratings/{rating['id']}/objections/{objection['id']}/answer",
                    {"answer": "x", "outcome": "rejected"}).status_code == 403  # fmt: skip
        answered = post(
            township,
            f"/ratings/{rating['id']}/objections/{objection['id']}/answer",
            {"answer": "维持", "outcome": "upheld", "marks": {**marks, next(iter(marks)): 100}},
        )
    assert answered.status_code == 200
    # township (100 + 80) / 2 = 90 → .7 × 90.625 + .3 × 90 = 90.4375
    assert answered.json()["score"] == "90.44"
    assert answered.json()["objections"][0]["outcome"] == "upheld"

    listed = department.get("/api/v1/ratings?period=2026-10").json()
    assert [r["id"] for r in listed] == [rating["id"]]
    assert department.get("/api/v1/ranking?period=2026-10").status_code == 403
    ranking = as_user(type(rater).objects.get(username="supervisor")).get(
        "/api/v1/ranking?period=2026-10"
    )
    assert ranking.status_code == 200
    assert [(d["department"], d["score"]) for d in ranking.json()["departments"]] == [
        ("police", "90.44")
    ]
