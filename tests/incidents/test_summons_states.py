"""The summons state machine against a model of it, in random orders (hypothesis): whatever the
department and the township do, in whatever order, each step either moves the summons the way
the model says and writes one timeline row, or is refused with TransitionNotAllowed and changes
nothing; an incident resolves exactly when every summons' work is accepted or released."""

from __future__ import annotations

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from command.errors import TransitionNotAllowed
from command.org.models import Category, Department, Township, User
from command.timeline.models import TimelineEntry
from incidents.models import Incident, Summons, Whistle
from incidents.services.incidents import incident_open, incident_resolve
from incidents.services.summonses import (
    summons_accept,
    summons_acknowledge,
    summons_check_in,
    summons_done,
    summons_release,
    summons_return,
)
from incidents.services.whistles import SummonedDepartment, whistle_blow

pytestmark = pytest.mark.django_db

DEPARTMENTS = ("chengguan", "traffic")
N, A, C, D, OK, R = "notified", "acknowledged", "checked_in", "done", "accepted", "released"
# step → {status before: status after}; a status missing is a refusal.
MOVES = {
    "acknowledge": {N: A},
    "check_in": {N: C, A: C},
    "done": {C: D},
    "accept": {D: OK},
    "return": {D: C},
    "release": {N: R, A: R, C: R, D: R},
}
ALL_STEPS = [(move, i) for move in sorted(MOVES) for i in range(len(DEPARTMENTS))] + [
    ("resolve", None)
]


def next_step(data: st.DataObject, model: list[str]) -> tuple[str, int | None]:
    """A step allowed in the model's state, or any step: half and half, so that runs reach the
    deep states (returned, accepted, resolved) and still try every refusal."""
    allowed = [(move, i) for move, i in ALL_STEPS if move != "resolve" and model[i] in MOVES[move]]
    if all(status in (OK, R) for status in model):
        allowed.append(("resolve", None))
    if allowed and data.draw(st.booleans()):
        return data.draw(st.sampled_from(allowed))
    return data.draw(st.sampled_from(ALL_STEPS))


class Rollback(Exception):
    """Ends an example, undoing what it wrote."""


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data(), st.integers(min_value=0, max_value=20))
def test_every_order_of_steps_follows_the_model(demo, data, length):
    duty = User.objects.get(username="duty")
    members = {
        code: User.objects.get_or_create(
            username=f"member-{code}",
            defaults={
                "role": User.Role.DEPARTMENT_MEMBER,
                "department": Department.objects.get(code=code),
            },
        )[0]
        for code in DEPARTMENTS
    }
    try:
        with transaction.atomic():
            run(duty, members, data, length)
            raise Rollback
    except Rollback:
        pass


def act(step: str, summons: Summons, member: User, duty: User) -> None:
    if step == "acknowledge":
        summons_acknowledge(actor=member, summons=summons)
    elif step == "check_in":
        summons_check_in(actor=member, summons=summons)
    elif step == "done":
        summons_done(actor=member, summons=summons, note="好")
    elif step == "accept":
        summons_accept(actor=duty, summons=summons)
    elif step == "return":
        summons_return(actor=duty, summons=summons, reason="未完")
    else:
        summons_release(actor=duty, summons=summons, reason="不需")


def run(duty: User, members: dict[str, User], data: st.DataObject, length: int) -> None:
    incident = incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="parking"),
        severity="major",
        title="状态机",
    )
    whistle = whistle_blow(
        actor=duty,
        incident=incident,
        kind=Whistle.Kind.GENERAL,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[
            SummonedDepartment(Department.objects.get(code=code), "测试") for code in DEPARTMENTS
        ],
    )
    summonses = [whistle.summonses.get(department__code=code) for code in DEPARTMENTS]
    model = [N] * len(DEPARTMENTS)
    returned = [0] * len(DEPARTMENTS)
    rows = [1] * len(DEPARTMENTS)  # summons.notified
    resolved = False
    steps: list[tuple[str, int | None]] = []
    for _ in range(length):
        step, index = next_step(data, model)
        steps.append((step, index))
        if step == "resolve":
            may = not resolved and all(status in (OK, R) for status in model)
            try:
                incident_resolve(actor=duty, incident=incident)
            except TransitionNotAllowed:
                assert not may, (steps, model)
            else:
                assert may, (steps, model)
                resolved = True
            continue
        summons = summonses[index]
        member = members[DEPARTMENTS[index]]
        after = MOVES[step].get(model[index])
        try:
            act(step, summons, member, duty)
        except TransitionNotAllowed:
            assert after is None, (steps, step, model[index])
        else:
            assert after is not None, (steps, step, model[index])
            returned[index] += step == "return"
            model[index] = after
            rows[index] += 1
        stored = Summons.objects.get(pk=summons.pk)
        assert (stored.status, stored.returned_count) == (model[index], returned[index]), steps
        written = TimelineEntry.objects.filter(subject_type="summons", subject_id=summons.pk)
        assert written.count() == rows[index], steps
    status = Incident.objects.get(pk=incident.pk).status
    assert (status == Incident.Status.RESOLVED) == resolved
