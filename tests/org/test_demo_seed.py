"""The demo township 清水镇: what it holds, that reseeding changes nothing, that its map tiles, and
that its accounts log in."""

from __future__ import annotations

import re
from collections import Counter
from io import StringIO
from itertools import pairwise
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from command.org.models import Category, Department, Device, Grid, Responsibility, User
from demo.data import DEMO_USERNAMES
from demo.seed import seed_demo

pytestmark = pytest.mark.django_db

PASSWORDS = {name: f"{name}-demo-pass" for name in DEMO_USERNAMES}
SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")

Point = tuple[float, float]


@pytest.fixture(autouse=True)
def fast_hasher(settings: Any) -> None:
    # PBKDF2 costs ~0.2 s a password and these tests seed accounts many times over.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- plane geometry on lon/lat, enough to check a map without a GIS library --------------------


def ring_of(grid: Grid) -> list[Point]:
    assert grid.polygon["type"] == "Polygon"
    (ring,) = grid.polygon["coordinates"]
    return [(lon, lat) for lon, lat in ring]


def signed_area(ring: list[Point]) -> float:
    """Shoelace formula on a closed ring; positive when counter-clockwise."""
    return sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in pairwise(ring)) / 2


def contains(ring: list[Point], point: Point) -> bool:
    """Even-odd ray casting; points exactly on an edge may go either way."""
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in pairwise(ring):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _orientation(a: Point, b: Point, c: Point) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def segments_cross(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    d1, d2 = _orientation(q1, q2, p1), _orientation(q1, q2, p2)
    d3, d4 = _orientation(p1, p2, q1), _orientation(p1, p2, q2)
    return d1 * d2 < 0 and d3 * d4 < 0


def assert_valid_ring(code: str, ring: list[Point]) -> None:
    assert ring[0] == ring[-1], f"{code}: ring is not closed"
    assert len(set(ring[:-1])) == len(ring) - 1 >= 3, f"{code}: too few or repeated points"
    assert signed_area(ring) > 0, f"{code}: ring is not counter-clockwise"
    edges = list(pairwise(ring))
    for i, (a, b) in enumerate(edges):
        for j in range(i + 2, len(edges)):
            if i == 0 and j == len(edges) - 1:
                continue  # the closing edge meets the first one at the start point
            assert not segments_cross(a, b, *edges[j]), f"{code}: ring crosses itself"
    for lon, lat in ring:
        assert 116.5 < lon < 116.8 and 40.1 < lat < 40.4, f"{code}: ({lon}, {lat}) off the map"


def comprehensive_rings() -> dict[str, list[Point]]:
    grids = Grid.objects.filter(township__code="qingshui", kind=Grid.Kind.COMPREHENSIVE)
    return {grid.code: ring_of(grid) for grid in grids}


def bbox(ring: list[Point]) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return min(xs), max(xs), min(ys), max(ys)


# --- tests --------------------------------------------------------------------------------------


def test_the_demo_township_has_a_realistic_size() -> None:
    summary = seed_demo(passwords=PASSWORDS)

    grids = Grid.objects.filter(township__code="qingshui")
    assert grids.filter(kind=Grid.Kind.COMPREHENSIVE).count() >= 45
    assert grids.filter(kind=Grid.Kind.DEDICATED).count() >= 8
    devices = Device.objects.filter(township__code="qingshui")
    assert devices.filter(kind=Device.Kind.CAMERA).count() >= 20
    assert devices.filter(kind=Device.Kind.SENSOR).count() >= 30
    assert devices.filter(kind=Device.Kind.GATEWAY).count() == 3
    township_units = Department.objects.filter(township__code="qingshui")
    assert township_units.filter(kind=Department.Kind.OFFICE).count() == 8
    assert township_units.filter(kind=Department.Kind.STATION).count() == 5
    assert township_units.count() == 13
    district = Department.objects.filter(kind=Department.Kind.DISTRICT, township=None)
    assert district.count() >= 6
    assert {"police", "chengguan", "fire-rescue", "water"} <= set(
        district.values_list("code", flat=True)
    )

    assert summary.township == "qingshui"
    assert summary.grids == grids.count()
    assert summary.devices == devices.count()
    assert summary.departments == Department.objects.count()
    assert summary.categories == Category.objects.count() >= 14
    assert [name for name, _role, _pw in summary.accounts] == list(DEMO_USERNAMES)


def test_reseeding_creates_and_changes_nothing() -> None:
    def snapshot() -> dict[str, Any]:
        return {
            "grids": {
                g.code: (g.kind, g.name, g.name_en, g.polygon, g.head_id)
                for g in Grid.objects.all()
            },
            "devices": {
                d.code: (d.kind, d.sensor_type, d.grid_id, d.gateway_id, d.latitude, d.longitude)
                for d in Device.objects.all()
            },
            "departments": set(Department.objects.values_list("code", "name", "township_id")),
            "categories": set(Category.objects.values_list("code", "name", "name_en")),
            "list": set(Responsibility.objects.values_list("department_id", "category_id", "lead")),
            "users": set(User.objects.values_list("username", "role", "township_id", "password")),
            "members": set(Grid.members.through.objects.values_list("grid_id", "user_id")),
        }

    first = seed_demo(passwords=PASSWORDS)
    assert first.created > 0
    before = snapshot()

    again = seed_demo(passwords=PASSWORDS)
    assert (again.created, again.updated) == (0, 0)
    assert snapshot() == before

    # Without passwords nothing is shown and nothing is reset.
    quiet = seed_demo()
    assert (quiet.created, quiet.updated) == (0, 0)
    assert [password for _name, _role, password in quiet.accounts] == [None] * len(DEMO_USERNAMES)
    assert snapshot() == before


def test_reseeding_keeps_state_the_seeder_does_not_own() -> None:
    seed_demo(passwords=PASSWORDS)
    duty = User.objects.get(username="duty")
    Grid.objects.filter(code="110112-QS-002").update(head=duty)
    Device.objects.filter(code="cam-01").update(online=True)

    seed_demo()

    assert Grid.objects.get(code="110112-QS-002").head == duty
    assert Device.objects.get(code="cam-01").online


def test_comprehensive_grids_tile_the_township_without_gaps_or_overlaps() -> None:
    seed_demo(passwords=PASSWORDS)
    rings = comprehensive_rings()
    for code, ring in rings.items():
        assert_valid_ring(code, ring)

    # Neighbours share their border point for point: each directed edge is used once, and an
    # inner edge is walked the other way by the neighbour.
    edges = Counter(edge for ring in rings.values() for edge in pairwise(ring))
    assert max(edges.values()) == 1, "two grids walk the same edge the same way: overlap"
    outer = {a: b for a, b in edges if (b, a) not in edges}
    assert len(outer) == sum(1 for a, b in edges if (b, a) not in edges), "outline branches"
    start = next(iter(outer))
    outline, point = [start], outer[start]
    while point != start:
        outline.append(point)
        point = outer[point]
    outline.append(start)
    assert len(outline) - 1 == len(outer), "the outline is more than one ring: holes or islands"
    assert_valid_ring("outline", outline)
    # The grids add up to exactly the township: no gap, no double-counted area.
    assert sum(signed_area(r) for r in rings.values()) == pytest.approx(
        signed_area(outline), rel=1e-9
    )

    # And a spot check by sampling: every point of the township lies in exactly one grid.
    boxes = {code: bbox(ring) for code, ring in rings.items()}
    west, east, south, north = bbox(outline)
    steps = 97  # odd and not a divisor of the lattice, so samples avoid shared vertices
    sampled = 0
    for i in range(steps):
        for j in range(steps):
            point = (
                west + (east - west) * (i + 0.37) / steps,
                south + (north - south) * (j + 0.61) / steps,
            )
            if not contains(outline, point):
                continue
            sampled += 1
            hits = [
                code
                for code, (x0, x1, y0, y1) in boxes.items()
                if x0 <= point[0] <= x1 and y0 <= point[1] <= y1 and contains(rings[code], point)
            ]
            assert len(hits) == 1, f"{point} lies in {hits}"
    assert sampled > steps * steps // 2


def test_dedicated_grids_lie_inside_one_comprehensive_grid_each() -> None:
    seed_demo(passwords=PASSWORDS)
    rings = comprehensive_rings()
    hosts = []
    for grid in Grid.objects.filter(kind=Grid.Kind.DEDICATED):
        assert re.fullmatch(r"110112-QS-Z\d\d", grid.code)
        ring = ring_of(grid)
        assert_valid_ring(grid.code, ring)
        (host,) = {
            code for code, outer in rings.items() if all(contains(outer, p) for p in ring[:-1])
        }
        hosts.append(host)
    assert len(hosts) == len(set(hosts)), "two dedicated grids share a host and may overlap"
    names = set(Grid.objects.filter(kind=Grid.Kind.DEDICATED).values_list("name_en", flat=True))
    for word in ("School", "Industrial", "quarry", "Reservoir", "Market", "Railway", "site"):
        assert any(word in name for name in names), word


def test_devices_sit_inside_their_grid_and_report_through_a_gateway() -> None:
    seed_demo(passwords=PASSWORDS)
    devices = Device.objects.filter(township__code="qingshui").select_related("grid", "gateway")
    for device in devices:
        assert SLUG.fullmatch(device.code), f"{device.code} is not usable in an MQTT topic"
        assert device.name and device.name_en
        assert device.grid is not None, device.code
        point = (device.longitude, device.latitude)
        assert contains(ring_of(device.grid), point), f"{device.code} lies outside its grid"
        if device.kind == Device.Kind.GATEWAY:
            assert device.gateway is None
        else:
            assert device.gateway is not None and device.gateway.kind == Device.Kind.GATEWAY
        if device.kind == Device.Kind.SENSOR:
            assert device.sensor_type in {
                "water_level",
                "smoke",
                "gas",
                "aqi",
                "temperature",
                "rainfall",
            }
            assert device.metadata["unit"]
            thresholds = device.metadata["thresholds"]
            assert thresholds["warning"] < thresholds["critical"]
        if device.kind == Device.Kind.CAMERA:
            assert device.metadata["vendor"] == "frigate" and device.metadata["zones"]

    quarry = devices.get(code="cam-quarry")
    assert quarry.kind == Device.Kind.CAMERA
    assert quarry.grid.kind == Grid.Kind.DEDICATED and "quarry" in quarry.grid.name_en
    assert quarry.metadata["frigate_camera"] == "quarry"
    assert "quarry-pit" in quarry.metadata["zones"]
    assert devices.filter(sensor_type="water_level").exists()


def test_every_category_has_one_lead_department_and_help() -> None:
    seed_demo(passwords=PASSWORDS)
    for category in Category.objects.all():
        lines = Responsibility.objects.filter(category=category)
        assert lines.filter(lead=True).count() == 1, category.code
        assert lines.count() >= 2, category.code
    fire_lead = Responsibility.objects.get(category__code="fire", lead=True)
    assert fire_lead.department.code == "fire-rescue"
    mining = set(
        Responsibility.objects.filter(category__code="illegal-mining").values_list(
            "department__code", flat=True
        )
    )
    assert {"natural-resources", "police", "qs-zhifa"} <= mining


def test_departments_have_codes_and_contacts() -> None:
    seed_demo(passwords=PASSWORDS)
    for department in Department.objects.all():
        assert SLUG.fullmatch(department.code)
        assert department.name and department.name_en and department.contact_name
        assert "555" in department.contact_phone


def test_accounts_have_their_roles_and_scopes() -> None:
    seed_demo(passwords=PASSWORDS)
    users = {u.username: u for u in User.objects.select_related("township", "department")}

    admin = users["admin"]
    assert admin.is_superuser and admin.is_staff
    assert (admin.role, admin.township) == (User.Role.ADMINISTRATOR, None)
    duty = users["duty"]
    assert (duty.role, duty.township.code) == (User.Role.DUTY_OFFICER, "qingshui")
    assert duty.first_name and duty.last_name and not duty.is_staff
    assert (users["supervisor"].role, users["supervisor"].township) == (User.Role.SUPERVISOR, None)
    for username in ("chengguan", "police"):
        user = users[username]
        assert user.role == User.Role.DEPARTMENT_MEMBER
        assert user.department.code == username
    grid01 = users["grid01"]
    assert (grid01.role, grid01.township.code) == (User.Role.GRID_OFFICER, "qingshui")
    first_grid = Grid.objects.get(code="110112-QS-001")
    assert first_grid.head == grid01
    assert list(first_grid.members.all()) == [grid01]
    assert User.objects.count() == len(DEMO_USERNAMES), "grids must not get a user each"


def test_the_demo_departments_members_are_on_call_round_the_clock() -> None:
    from datetime import datetime, timedelta

    from command.org.models import OnCallShift
    from command.org.oncall import on_call

    seed_demo(passwords=PASSWORDS)
    police = User.objects.get(username="police")
    moment = datetime(2026, 11, 28, 2, 30).astimezone()
    for hours in range(0, 24 * 7, 5):
        assert on_call(police.department, moment + timedelta(hours=hours)).primary == police
    seed_demo(passwords=PASSWORDS)
    assert OnCallShift.objects.filter(department=police.department).count() == 1


def test_given_passwords_work_and_missing_ones_are_generated_once() -> None:
    summary = seed_demo(passwords={"admin": "admin-secret", "duty": "duty-secret"})
    accounts = {name: (role, password) for name, role, password in summary.accounts}
    assert accounts["admin"] == (User.Role.ADMINISTRATOR, "admin-secret")
    assert accounts["duty"] == (User.Role.DUTY_OFFICER, "duty-secret")
    for name, (_role, password) in accounts.items():
        assert password, name
        assert User.objects.get(username=name).check_password(password), name
    generated = accounts["police"][1]
    assert generated and generated not in {"admin-secret", "duty-secret"}

    again = seed_demo()
    assert all(password is None for _name, _role, password in again.accounts)
    assert User.objects.get(username="police").check_password(generated)

    reset = seed_demo(passwords={"police": "police-new"})
    assert dict((name, pw) for name, _role, pw in reset.accounts)["police"] == "police-new"
    assert User.objects.get(username="police").check_password("police-new")
    assert User.objects.get(username="admin").check_password("admin-secret")


def test_passwords_for_unknown_accounts_are_refused() -> None:
    with pytest.raises(ValueError, match="nobody"):
        seed_demo(passwords={"nobody": "x"})
    assert not Grid.objects.exists()


def test_management_command_prints_a_bilingual_summary_and_the_accounts() -> None:
    out = StringIO()
    call_command("seed_demo", "--password", "admin=cmd-secret", stdout=out)
    text = out.getvalue()
    assert "qingshui" in text and "网格" in text and "grids" in text
    assert "cmd-secret" in text
    assert all(name in text for name in DEMO_USERNAMES)
    assert User.objects.get(username="admin").check_password("cmd-secret")

    out = StringIO()
    call_command("seed_demo", "--password", "admin=cmd-secret", stdout=out)
    assert "up to date" in out.getvalue()

    with pytest.raises(CommandError):
        call_command("seed_demo", "--password", "nobody=x", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("seed_demo", "--password", "admin", stdout=StringIO())


def test_password_for_all_is_validated_and_never_opens_the_administrator() -> None:
    with pytest.raises(CommandError, match=r"too short|太短"):
        call_command("seed_demo", "--password-for-all", "1234", stdout=StringIO())
    with pytest.raises(CommandError, match="password"):
        call_command("seed_demo", "--password-for-all", "password123", stdout=StringIO())
    assert not User.objects.exists()

    call_command("seed_demo", "--password-for-all", "qs-shared-7731", stdout=StringIO())
    assert User.objects.get(username="duty").check_password("qs-shared-7731")
    assert not User.objects.get(username="admin").check_password("qs-shared-7731")
