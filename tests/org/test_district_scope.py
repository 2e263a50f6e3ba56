"""Who is above a township: the supervisors its escalation chains and monthly report reach, and
whom a district role sees and commands."""

from __future__ import annotations

import pytest

from command.org import oncall, policy
from command.org.models import District, Township, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def city():
    qingshan = District.objects.create(code="qs", name="青山区")
    baiyun = District.objects.create(code="by", name="白云区")
    towns = {
        "q1": Township.objects.create(code="q1", name="一镇", district=qingshan),
        "q2": Township.objects.create(code="q2", name="二镇", district=qingshan),
        "b1": Township.objects.create(code="b1", name="白一镇", district=baiyun),
    }
    sup = User.Role.SUPERVISOR
    people = {
        "city": User.objects.create(username="city", role=sup),
        "qingshan": User.objects.create(username="qs-sup", role=sup, district=qingshan),
        "baiyun": User.objects.create(username="by-sup", role=sup, district=baiyun),
        "q1": User.objects.create(username="q1-sup", role=sup, township=towns["q1"]),
        "discipline_city": User.objects.create(username="d-city", role=sup, discipline=True),
        "discipline_by": User.objects.create(
            username="d-by", role=sup, discipline=True, district=baiyun
        ),
        "duty_qs": User.objects.create(
            username="duty-qs", role=User.Role.DUTY_OFFICER, district=qingshan
        ),
        "admin_qs": User.objects.create(
            username="admin-qs", role=User.Role.ADMINISTRATOR, district=qingshan
        ),
    }
    return towns, people


def test_a_townships_district_supervisors_are_its_districts_and_the_citys(city):
    towns, _people = city
    names = lambda users: {u.username for u in users}  # noqa: E731
    assert names(oncall.district_supervisors(towns["q1"])) == {"city", "qs-sup"}
    assert names(oncall.district_supervisors(towns["b1"])) == {"city", "by-sup"}
    assert names(oncall.township_supervisors(towns["q1"])) == {"q1-sup"}
    assert names(oncall.discipline_office(towns["q1"])) == {"d-city"}
    assert names(oncall.discipline_office(towns["b1"])) == {"d-city", "d-by"}


def test_district_roles_see_and_command_their_district_only(city):
    towns, people = city
    q = {towns["q1"].pk, towns["q2"].pk}
    assert policy.township_ids(people["duty_qs"]) == q
    assert policy.command_township_ids(people["duty_qs"]) == q
    assert policy.township_ids(people["qingshan"]) == q
    assert policy.command_township_ids(people["qingshan"]) == set()  # a supervisor reads
    assert policy.supervised_township_ids(people["qingshan"]) == q
    assert policy.command_township_ids(people["admin_qs"]) == q
    assert policy.township_ids(people["city"]) is None
    assert policy.can_watch_district(people["duty_qs"], towns["q1"].district)
    assert not policy.can_watch_district(people["duty_qs"], towns["b1"].district)
    assert not policy.can_watch_district(people["q1"], towns["q1"].district)
    assert policy.can_watch_district(people["city"], towns["b1"].district)
    # The district's administrator rates in its townships; its supervisor reads.
    assert policy.can_rate(people["admin_qs"], towns["q1"])
    assert not policy.can_rate(people["admin_qs"], towns["b1"])
    assert not policy.can_rate(people["qingshan"], towns["q1"])
    assert policy.can_view_district(people["qingshan"])
    assert not policy.can_view_district(people["duty_qs"])


def test_a_user_given_both_a_township_and_a_district_is_refused(city):
    from django.core.exceptions import ValidationError

    towns, _people = city
    both = User(username="both", role=User.Role.DUTY_OFFICER, township=towns["q1"])
    both.district = towns["q1"].district
    with pytest.raises(ValidationError) as refused:
        both.full_clean()
    assert "district" in refused.value.message_dict
