"""Seeding the demo township 清水镇 (Qingshui Town) from `demo.data` and `demo.maps`.

`seed_demo()` is idempotent: every row is keyed by its code (or username), so a second run finds
everything in place and writes nothing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import time
from typing import Any

from django.contrib.auth.hashers import check_password, make_password
from django.db import models, transaction

from command.org.models import (
    Category,
    Department,
    Device,
    District,
    Grid,
    OnCallShift,
    Responsibility,
    Township,
    User,
)
from demo.data import (
    ACCOUNTS,
    ALERT_RULES,
    CAMERAS,
    CATEGORIES,
    DEDICATED_GRIDS,
    DEMO_USERNAMES,
    DEPARTMENTS,
    DISTRICT,
    DISTRICT_ACCOUNTS,
    GATEWAYS,
    GRID_CODE_PREFIX,
    GRID_OFFICER_GRID,
    RESPONSIBILITIES,
    SENSOR_PROFILES,
    SENSORS,
    TOWNSHIP,
    TOWNSHIP_CODE,
    TOWNSHIP_ROLES,
)
from demo.maps import COLS, blob_ring, device_point, lattice_rings, lonlat, village_cells


@dataclass(frozen=True)
class DemoSummary:
    """What the demo township holds after seeding, and how to log in."""

    township: str
    comprehensive_grids: int
    dedicated_grids: int
    cameras: int
    sensors: int
    gateways: int
    departments: int
    categories: int
    responsibilities: int
    # Rows inserted and rows changed by this run: both 0 when the demo was already in place.
    created: int
    updated: int
    # (username, role, password); the password is None when an existing account kept its own.
    accounts: list[tuple[str, str, str | None]]

    @property
    def grids(self) -> int:
        return self.comprehensive_grids + self.dedicated_grids

    @property
    def devices(self) -> int:
        return self.cameras + self.sensors + self.gateways


class _Tally:
    def __init__(self) -> None:
        self.created = 0
        self.updated = 0


def _sync(
    queryset: models.QuerySet[Any],
    key: tuple[str, ...],
    rows: Sequence[Mapping[str, Any]],
    tally: _Tally,
) -> dict[tuple[Any, ...], Any]:
    """Make `rows` exist, keyed by the `key` fields; return the instances by key, in row order.

    Only the fields a row names are compared and written, so state the seeder does not own
    (a device's presence, a grid head assigned later) survives a rerun. Unchanged rows are not
    written at all.
    """
    model = queryset.model
    existing = {tuple(getattr(obj, f) for f in key): obj for obj in queryset}
    result: dict[tuple[Any, ...], Any] = {}
    to_create = []
    to_update = []
    changed_fields: set[str] = set()
    for row in rows:
        row_key = tuple(row[f] for f in key)
        obj = existing.get(row_key)
        if obj is None:
            obj = model(**row)
            to_create.append(obj)
        else:
            changed = [f for f, value in row.items() if getattr(obj, f) != value]
            for field in changed:
                setattr(obj, field, row[field])
            if changed:
                to_update.append(obj)
                changed_fields.update(changed)
        result[row_key] = obj
    if to_create:
        # PostgreSQL returns the new primary keys, which the foreign keys below need.
        model.objects.bulk_create(to_create)
    if to_update:
        model.objects.bulk_update(to_update, sorted(changed_fields))
    tally.created += len(to_create)
    tally.updated += len(to_update)
    return result


def _new_hash(raw: str, current: str | None) -> str | None:
    """The hash to store for `raw`, or None when the current hash already matches it."""
    if current and check_password(raw, current):
        return None
    return make_password(raw)


def _seed_users(
    township: Township,
    departments: Mapping[str, Department],
    passwords: Mapping[str, str],
    tally: _Tally,
) -> tuple[dict[str, User], list[tuple[str, str, str | None]]]:
    existing = {u.username: u for u in User.objects.filter(username__in=DEMO_USERNAMES)}
    users: dict[str, User] = {}
    shown: dict[str, str | None] = {}
    for username, role, last_name, first_name, department in ACCOUNTS:
        wanted = {
            "role": role,
            "last_name": last_name,
            "first_name": first_name,
            "township_id": township.pk
            if role in TOWNSHIP_ROLES and username not in DISTRICT_ACCOUNTS
            else None,
            "district_id": township.district_id if username in DISTRICT_ACCOUNTS else None,
            "department_id": departments[department].pk if department else None,
            "is_staff": role == User.Role.ADMINISTRATOR,
            "is_superuser": role == User.Role.ADMINISTRATOR,
            "is_active": True,
        }
        user = existing.get(username)
        if user is None:
            user = User(username=username, email=f"{username}@qingshui.example", **wanted)
            shown[username] = passwords.get(username) or secrets.token_urlsafe(9)
        else:
            changed = [f for f, value in wanted.items() if getattr(user, f) != value]
            for field in changed:
                setattr(user, field, wanted[field])
            if changed:
                user.save(update_fields=changed)
                tally.updated += 1
            shown[username] = passwords.get(username)
        users[username] = user

    # Hashing is deliberately slow (~0.2 s each); hashlib releases the GIL, so hash side by side.
    to_hash = [(name, raw) for name, raw in shown.items() if raw is not None]
    with ThreadPoolExecutor(max_workers=max(1, min(len(to_hash), os.cpu_count() or 1))) as pool:
        hashes = list(
            pool.map(
                lambda item: _new_hash(item[1], users[item[0]].password or None),
                to_hash,
            )
        )
    for (username, _raw), encoded in zip(to_hash, hashes, strict=True):
        user = users[username]
        if encoded is None:
            continue
        user.password = encoded
        if user.pk is not None:
            user.save(update_fields=["password"])
            tally.updated += 1
    for user in users.values():
        if user.pk is None:
            user.save()
            tally.created += 1
    accounts = [(name, role, shown[name]) for name, role, *_rest in ACCOUNTS]
    return users, accounts


def _seed_rota(users: Mapping[str, User], tally: _Tally) -> None:
    """The demo departments' members on call round the clock (值班表), so a whistle's
    escalation chain pages someone in the demo; a department with a rota of its own keeps it."""
    for user in users.values():
        department_id = user.department_id
        if (
            department_id is None
            or OnCallShift.objects.filter(department_id=department_id).exists()
        ):
            continue
        OnCallShift.objects.create(
            department_id=department_id, starts=time(0), ends=time(0), primary=user
        )
        tally.created += 1


def _seed_rules(township: Township, tally: _Tally) -> None:
    """Create the demo rules that are missing; rules an administrator edited stay as they are."""
    from alerts.models import AlertRule

    categories = {c.code: c for c in Category.objects.all()}
    existing = set(AlertRule.objects.filter(township=township).values_list("name", flat=True))
    quarry = Device.objects.filter(township=township, code="cam-quarry").first()
    for name, name_en, kind, category, severity, fields in ALERT_RULES:
        if name in existing:
            continue
        rule = AlertRule(
            township=township,
            name=name,
            name_en=name_en,
            kind=kind,
            category=categories[category],
            severity=severity,
            **fields,
        )
        if "quarry" in name_en.lower() and quarry is not None:
            rule.device = quarry
        rule.full_clean()
        rule.save()
        tally.created += 1


def seed_demo(*, passwords: dict[str, str] | None = None) -> DemoSummary:
    """Create or refresh the demo township 清水镇 with its departments, grids, devices and users.

    `passwords` maps demo usernames (see DEMO_USERNAMES) to passwords to set. An account missing
    from it gets a random password when it is created and keeps its password otherwise.
    """
    passwords = dict(passwords or {})
    unknown = sorted(set(passwords) - set(DEMO_USERNAMES))
    if unknown:
        raise ValueError(f"not demo accounts: {', '.join(unknown)}")

    cells = village_cells()
    by_slug = {cell.slug: cell for cell in cells}
    comprehensive_rings = lattice_rings(cells)
    dedicated = {
        slug: (by_slug[host], radius) for _c, slug, _n, _e, host, radius in DEDICATED_GRIDS
    }

    tally = _Tally()
    with transaction.atomic():
        # The township row stays locked until commit, so two seeders run one after the other.
        district, created = District.objects.get_or_create(code=DISTRICT["code"], defaults=DISTRICT)
        tally.created += created
        wanted = {**TOWNSHIP, "district": district}
        township, created = Township.objects.select_for_update().get_or_create(
            code=TOWNSHIP_CODE, defaults=wanted
        )
        changed = [f for f, value in wanted.items() if getattr(township, f) != value]
        if created:
            tally.created += 1
        elif changed:
            for field in changed:
                setattr(township, field, wanted[field])
            township.save(update_fields=changed)
            tally.updated += 1

        categories = _sync(
            Category.objects.filter(code__in=[c[0] for c in CATEGORIES]),
            ("code",),
            [{"code": code, "name": zh, "name_en": en} for code, zh, en in CATEGORIES],
            tally,
        )
        departments = _sync(
            Department.objects.filter(code__in=[d[0] for d in DEPARTMENTS]),
            ("code",),
            [
                {
                    "code": code,
                    "kind": kind,
                    "name": zh,
                    "name_en": en,
                    "township_id": None if kind == Department.Kind.DISTRICT else township.pk,
                    "contact_name": contact,
                    "contact_phone": phone,
                }
                for code, kind, zh, en, contact, phone in DEPARTMENTS
            ],
            tally,
        )
        department_by_code = {code: dept for (code,), dept in departments.items()}
        responsibility_rows = [
            {
                "department_id": department_by_code[code].pk,
                "category_id": categories[category,].pk,
                "lead": lead,
            }
            for category, lines in RESPONSIBILITIES.items()
            for code, lead in lines
        ]
        _sync(
            Responsibility.objects.filter(
                department_id__in=[d.pk for d in department_by_code.values()]
            ),
            ("department_id", "category_id"),
            responsibility_rows,
            tally,
        )

        users, accounts = _seed_users(township, department_by_code, passwords, tally)
        _seed_rota(users, tally)

        grid_rows: list[dict[str, Any]] = []
        grid_code: dict[str, str] = {}
        for number, cell in enumerate(cells, start=1):
            code = f"{GRID_CODE_PREFIX}-{number:03d}"
            grid_code[cell.slug] = code
            row = {
                "code": code,
                "township_id": township.pk,
                "kind": Grid.Kind.COMPREHENSIVE,
                "name": cell.name,
                "name_en": cell.name_en,
                "polygon": comprehensive_rings[cell.slug],
            }
            if code == GRID_OFFICER_GRID:
                row["head_id"] = users["grid01"].pk
            grid_rows.append(row)
        for suffix, slug, zh, en, host, radius in DEDICATED_GRIDS:
            code = f"{GRID_CODE_PREFIX}-{suffix}"
            grid_code[slug] = code
            grid_rows.append(
                {
                    "code": code,
                    "township_id": township.pk,
                    "kind": Grid.Kind.DEDICATED,
                    "name": zh,
                    "name_en": en,
                    "polygon": blob_ring(by_slug[host], radius, slug),
                }
            )
        grids = _sync(
            Grid.objects.filter(code__in=[row["code"] for row in grid_rows]),
            ("code",),
            grid_rows,
            tally,
        )
        grid_by_slug = {slug: grids[code,] for slug, code in grid_code.items()}
        grid01 = grids[GRID_OFFICER_GRID,]
        if not grid01.members.filter(pk=users["grid01"].pk).exists():
            grid01.members.add(users["grid01"])
            tally.created += 1

        def placement(slug: str, code: str) -> dict[str, Any]:
            if slug in dedicated:
                host, radius = dedicated[slug]
                point = device_point(host, code, radius, inside=True)
            else:
                host = by_slug[slug]
                hosted = [r for h, r in dedicated.values() if h is host]
                point = device_point(host, code, max(hosted, default=0.0), inside=False)
            longitude, latitude = lonlat(point)
            return {
                "township_id": township.pk,
                "code": code,
                "grid_id": grid_by_slug[slug].pk,
                "latitude": latitude,
                "longitude": longitude,
                "_col": host.col,
            }

        def device_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]

        device_queryset = Device.objects.filter(township=township)
        gateway_rows = []
        for code, slug, zh, en in GATEWAYS:
            row = placement(slug, code)
            row.update(
                kind=Device.Kind.GATEWAY,
                name=zh,
                name_en=en,
                metadata={"uplink": "4g", "mqtt_client_id": f"{TOWNSHIP_CODE}-{code}"},
            )
            gateway_rows.append(row)
        gateways = _sync(device_queryset, ("township_id", "code"), device_rows(gateway_rows), tally)
        # Each gateway serves a third of the township, west to east, as a real rollout would.
        gateway_list = [gateways[township.pk, code] for code, *_rest in GATEWAYS]

        def gateway_for(col: int) -> int:
            return gateway_list[col * len(gateway_list) // COLS].pk

        leaf_rows = []
        for code, slug, zh, en, frigate_camera, zones in CAMERAS:
            row = placement(slug, code)
            row.update(
                kind=Device.Kind.CAMERA,
                sensor_type="",
                name=zh,
                name_en=en,
                gateway_id=gateway_for(row["_col"]),
                metadata={
                    "vendor": "frigate",
                    "frigate_camera": frigate_camera,
                    "zones": list(zones),
                },
            )
            leaf_rows.append(row)
        for code, sensor_type, slug, zh, en, thresholds in SENSORS:
            profile = SENSOR_PROFILES[sensor_type]
            row = placement(slug, code)
            row.update(
                kind=Device.Kind.SENSOR,
                sensor_type=sensor_type,
                name=zh,
                name_en=en,
                gateway_id=gateway_for(row["_col"]),
                metadata={
                    "metric": profile["metric"],
                    "unit": profile["unit"],
                    "thresholds": dict(thresholds or profile["thresholds"]),
                },
            )
            leaf_rows.append(row)
        _sync(device_queryset, ("township_id", "code"), device_rows(leaf_rows), tally)
        _seed_rules(township, tally)

    return DemoSummary(
        township=township.code,
        comprehensive_grids=len(cells),
        dedicated_grids=len(DEDICATED_GRIDS),
        cameras=len(CAMERAS),
        sensors=len(SENSORS),
        gateways=len(GATEWAYS),
        departments=len(DEPARTMENTS),
        categories=len(CATEGORIES),
        responsibilities=len(responsibility_rows),
        created=tally.created,
        updated=tally.updated,
        accounts=accounts,
    )
