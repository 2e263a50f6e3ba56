"""A simulated district (区) of many townships, for `whistle simulate --district` and
`make bench-district`.

Every row of it is made by :func:`seed_district`, and only there: its townships (with their
district), grids, devices, alert rules and one duty officer each. It is idempotent: each row is
keyed by its code (or username), so a second run finds everything in place and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction

from command.org.models import Category, Device, District, Grid, Township, User
from demo.data import CATEGORIES, SENSOR_PROFILES
from demo.seed import _seed_rules, _sync, _Tally

DISTRICT_CODE = "sim"
DISTRICT_NAME = "模拟区"
DISTRICT_NAME_EN = "Simulated District"
# Township codes are the gateways' MQTT usernames too (deploy/mosquitto/acl): slugs only.
TOWNSHIP_PREFIX = "sim"
GRIDS_PER_TOWNSHIP = 50  # a township has ~50 grids (DESIGN.md §1)
GRID_COLUMNS = 10
DEVICES_PER_GATEWAY = 105  # a gateway serves ~100 sensors and a few cameras
# Townships side by side on the district's map, this many degrees apart.
TOWNSHIP_SPAN = 0.08
ORIGIN = (116.0, 40.2)  # lon, lat of the district's north-west corner
TOWNSHIP_COLUMNS = 6
# The sensors' kinds, in turn: mostly the common ones (water level, air) and a few gas meters.
SENSOR_MIX = ("water_level", "aqi", "temperature", "rainfall", "smoke", "gas", "aqi", "water_level")


def township_code(number: int) -> str:
    return f"{TOWNSHIP_PREFIX}-{number:02d}"


def sensor_code(number: int) -> str:
    return f"s-{number:04d}"


def camera_code(number: int) -> str:
    return f"cam-{number:02d}"


def gateway_code(number: int) -> str:
    return f"gw-{number:02d}"


def duty_username(township: str) -> str:
    return f"duty-{township}"


@dataclass(frozen=True)
class DistrictSummary:
    district: str
    townships: list[str]  # codes, in order
    sensors: int  # per township
    cameras: int  # per township
    gateways: int  # per township
    # Rows inserted by this run: 0 when the district was already in place.
    created: int
    # The duty officer of each township (username), with the password given to seed_district.
    duty_officers: dict[str, str]


def seed_district(
    *,
    townships: int = 30,
    sensors: int = 1000,
    cameras: int = 50,
    duty_password: str | None = None,
    district: str = DISTRICT_NAME,
    district_code: str = DISTRICT_CODE,
) -> DistrictSummary:
    """Create what is missing of the simulated district: ``townships`` townships
    (``sim-01`` …) of the district ``district_code`` (named ``district``), each with 50 grids,
    ``sensors`` sensors, ``cameras`` cameras and their gateways, the demo's alert rules, and a
    duty officer ``duty-sim-01`` … whose password is ``duty_password`` (set on every run when
    given; without it, new officers get an unusable password)."""
    tally = _Tally()
    codes = [township_code(n) for n in range(1, townships + 1)]
    gateway_count = max(1, -(-(sensors + cameras) // DEVICES_PER_GATEWAY))
    with transaction.atomic():
        _sync(
            Category.objects.filter(code__in=[c[0] for c in CATEGORIES]),
            ("code",),
            [{"code": code, "name": zh, "name_en": en} for code, zh, en in CATEGORIES],
            tally,
        )
        found, created = District.objects.get_or_create(
            code=district_code,
            defaults={"name": district, "name_en": DISTRICT_NAME_EN},
        )
        tally.created += created
        rows = [
            {
                "code": code,
                "name": f"模拟{n:02d}镇",
                "name_en": f"Sim Town {n:02d}",
                "district_id": found.pk,
                "time_zone": "Asia/Shanghai",
            }
            for n, code in enumerate(codes, start=1)
        ]
        by_code = {
            key[0]: township
            for key, township in _sync(
                Township.objects.filter(code__in=codes).select_for_update(),
                ("code",),
                rows,
                tally,
            ).items()
        }
        for index, code in enumerate(codes):
            township = by_code[code]
            origin = (
                ORIGIN[0] + (index % TOWNSHIP_COLUMNS) * TOWNSHIP_SPAN,
                ORIGIN[1] - (index // TOWNSHIP_COLUMNS) * TOWNSHIP_SPAN,
            )
            _seed_township(township, origin, sensors, cameras, gateway_count, tally)
            _seed_rules(township, tally)
        _seed_duty_officers(by_code, duty_password, tally)
    return DistrictSummary(
        district=district,
        townships=codes,
        sensors=sensors,
        cameras=cameras,
        gateways=gateway_count,
        created=tally.created,
        duty_officers={code: duty_username(code) for code in codes},
    )


def _grid_square(
    origin: tuple[float, float], number: int
) -> tuple[list[list[float]], float, float]:
    """Grid ``number``'s ring (GeoJSON, lon/lat) and its centre, on a lattice in the township."""
    side = TOWNSHIP_SPAN / (GRID_COLUMNS + 1)
    col, row = number % GRID_COLUMNS, number // GRID_COLUMNS
    west, north = origin[0] + col * side, origin[1] - row * side
    ring = [[west, north], [west + side, north], [west + side, north - side], [west, north - side]]
    ring.append(ring[0])
    return ring, west + side / 2, north - side / 2


def _seed_township(
    township: Township,
    origin: tuple[float, float],
    sensors: int,
    cameras: int,
    gateways: int,
    tally: _Tally,
) -> None:
    grid_rows = []
    centres = []
    for n in range(GRIDS_PER_TOWNSHIP):
        ring, lon, lat = _grid_square(origin, n)
        centres.append((lon, lat))
        grid_rows.append(
            Grid(
                township=township,
                code=f"{township.code}-g{n + 1:02d}",
                kind=Grid.Kind.COMPREHENSIVE,
                name=f"{township.name}第{n + 1}网格",
                name_en=f"{township.name_en} grid {n + 1}",
                polygon={"type": "Polygon", "coordinates": [ring]},
            )
        )
    # The code is unique: a second run inserts nothing.
    Grid.objects.bulk_create(grid_rows, ignore_conflicts=True)
    grid_ids = dict(Grid.objects.filter(township=township).values_list("code", "id"))
    grids = [grid_ids[row.code] for row in grid_rows]
    existing = set(Device.objects.filter(township=township).values_list("code", flat=True))
    gateway_rows = [
        Device(
            township=township,
            code=gateway_code(n),
            kind=Device.Kind.GATEWAY,
            name=f"{township.name}网关{n:02d}",
            name_en=f"{township.name_en} gateway {n:02d}",
            grid_id=grids[(n * 7) % len(grids)],
            metadata={"uplink": "4g"},
        )
        for n in range(1, gateways + 1)
        if gateway_code(n) not in existing
    ]
    Device.objects.bulk_create(gateway_rows)
    gateway_ids = dict(
        Device.objects.filter(township=township, kind=Device.Kind.GATEWAY).values_list("code", "id")
    )

    def gateway_for(n: int) -> int:
        return gateway_ids[gateway_code(1 + n * gateways // (sensors + cameras))]

    def place(n: int, grid_index: int) -> dict[str, float]:
        lon, lat = centres[grid_index]
        # Spread a grid's devices around its centre so the map shows them apart.
        step = TOWNSHIP_SPAN / (GRID_COLUMNS + 1) / 3
        return {
            "longitude": lon + ((n * 37) % 11 - 5) / 5 * step,
            "latitude": lat + ((n * 53) % 11 - 5) / 5 * step,
        }

    leaves = []
    for n in range(1, cameras + 1):
        code = camera_code(n)
        if code in existing:
            continue
        grid_index = (n * 13) % len(grids)
        leaves.append(
            Device(
                township=township,
                code=code,
                kind=Device.Kind.CAMERA,
                name=f"{township.name}摄像头{n:02d}",
                name_en=f"{township.name_en} camera {n:02d}",
                grid_id=grids[grid_index],
                gateway_id=gateway_for(sensors + n - 1),
                metadata={"zones": []},
                **place(n, grid_index),
            )
        )
    for n in range(1, sensors + 1):
        code = sensor_code(n)
        if code in existing:
            continue
        kind = SENSOR_MIX[n % len(SENSOR_MIX)]
        profile = SENSOR_PROFILES[kind]
        grid_index = n % len(grids)
        leaves.append(
            Device(
                township=township,
                code=code,
                kind=Device.Kind.SENSOR,
                sensor_type=kind,
                name=f"{township.name}传感器{n:04d}",
                name_en=f"{township.name_en} sensor {n:04d}",
                grid_id=grids[grid_index],
                gateway_id=gateway_for(n - 1),
                metadata={
                    "metric": profile["metric"],
                    "unit": profile["unit"],
                    "thresholds": dict(profile["thresholds"]),
                },
                **place(n, grid_index),
            )
        )
    Device.objects.bulk_create(leaves, batch_size=2000)
    tally.created += len(gateway_rows) + len(leaves)


def _seed_duty_officers(
    townships: dict[str, Township], password: str | None, tally: _Tally
) -> None:
    existing = {
        u.username: u for u in User.objects.filter(username__in=map(duty_username, townships))
    }
    # One hash for them all: hashing is deliberately slow (~0.2 s), and these are a
    # simulation's accounts with one password.
    encoded: str | None = None

    def hashed() -> str:
        nonlocal encoded
        if encoded is None:
            encoded = make_password(password) if password is not None else make_password(None)
        return encoded

    for code, township in townships.items():
        username = duty_username(code)
        user = existing.get(username)
        if user is None:
            User.objects.create(
                username=username,
                role=User.Role.DUTY_OFFICER,
                township=township,
                first_name=code,
                last_name="值班员",
                email=f"{username}@district.example",
                password=hashed(),
            )
            tally.created += 1
            continue
        changed = []
        if user.role != User.Role.DUTY_OFFICER or user.township_id != township.pk:
            user.role, user.township = User.Role.DUTY_OFFICER, township
            changed += ["role", "township"]
        if not user.is_active:
            user.is_active = True
            changed.append("is_active")
        if password is not None and not (
            user.password == encoded or check_password(password, user.password)
        ):
            user.password = hashed()
            changed.append("password")
        if password is not None and encoded is None:
            # Checked once (0.2 s): the others share the hash when it matches.
            encoded = user.password
        if changed:
            user.save(update_fields=changed)
