"""The demo township's map, drawn from a fixed seed: grid polygons and device positions.

Pure geometry, no database: every run and every machine draws the same grids and puts the devices
in the same places, so seeding again finds them unchanged.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from demo.data import GRID_MAP

# Changing the seed, the constants below or the shape of GRID_MAP redraws the whole map for
# existing installations.
MAP_SEED = "qingshui-2024"
WEST, EAST = 116.60, 116.72
SOUTH, NORTH = 40.20, 40.28
COORD_DIGITS = 6  # ~0.1 m; shared vertices are rounded once, so neighbours stay identical.

# Cell-unit jitter. With corners moved at most VERTEX_JITTER and edge midpoints at most
# MIDPOINT_JITTER across their edge, every cell's boundary stays within
# VERTEX_JITTER + MIDPOINT_JITTER of its lattice side and every corner stays convex, so each
# polygon is simple and the cell's central box [SAFE, 1 - SAFE]² is always inside it: dedicated
# grids and devices are placed in that box and need no geometry check.
VERTEX_JITTER = 0.18
MIDPOINT_JITTER = 0.08
SAFE = VERTEX_JITTER + MIDPOINT_JITTER + 0.02

ROWS = len(GRID_MAP)
COLS = len(GRID_MAP[0])
DX = (EAST - WEST) / COLS
DY = (NORTH - SOUTH) / ROWS

Point = tuple[float, float]  # cell units: x east from WEST, y north from SOUTH


@dataclass(frozen=True)
class Cell:
    """A village or community of GRID_MAP: one cell of the lattice, one comprehensive grid."""

    slug: str
    name: str
    name_en: str
    col: int
    line: int  # the lattice line of its southern edge, counted from the south

    def at(self, u: float, v: float) -> Point:
        return (self.col + u, self.line + v)


def village_cells() -> list[Cell]:
    """The village/community cells in unified-code order: north-west first, row by row."""
    cells = []
    for row, names in enumerate(GRID_MAP):
        for col, entry in enumerate(names):
            if entry is None:
                continue
            name, pinyin = entry
            kind = "Village" if name.endswith("村") else "Community"
            cells.append(Cell(pinyin.lower(), name, f"{pinyin} {kind}", col, ROWS - 1 - row))
    return cells


def lonlat(point: Point) -> list[float]:
    """[longitude, latitude] of a point in cell units, as GeoJSON orders them."""
    x, y = point
    return [round(WEST + x * DX, COORD_DIGITS), round(SOUTH + y * DY, COORD_DIGITS)]


def _ring(points: Sequence[Point]) -> dict[str, Any]:
    coordinates = [lonlat(point) for point in points]
    coordinates.append(list(coordinates[0]))
    return {"type": "Polygon", "coordinates": [coordinates]}


def lattice_rings(cells: Iterable[Cell]) -> dict[str, dict[str, Any]]:
    """GeoJSON polygons for the cells, tiling the township without gaps or overlaps.

    Neighbouring cells are built from the very same jittered corners and edge midpoints, so a
    shared border is the same polyline on both sides and the rounding cannot open a crack.
    """
    rng = random.Random(MAP_SEED)
    corner: dict[tuple[int, int], Point] = {}
    for i in range(COLS + 1):
        for j in range(ROWS + 1):
            corner[i, j] = (
                i + rng.uniform(-VERTEX_JITTER, VERTEX_JITTER),
                j + rng.uniform(-VERTEX_JITTER, VERTEX_JITTER),
            )
    # Midpoint of the edge from corner (i, j) going east (horizontal) or north (vertical).
    east_mid: dict[tuple[int, int], Point] = {}
    north_mid: dict[tuple[int, int], Point] = {}
    for i in range(COLS):
        for j in range(ROWS + 1):
            (x0, y0), (x1, y1) = corner[i, j], corner[i + 1, j]
            east_mid[i, j] = (
                (x0 + x1) / 2,
                (y0 + y1) / 2 + rng.uniform(-MIDPOINT_JITTER, MIDPOINT_JITTER),
            )
    for i in range(COLS + 1):
        for j in range(ROWS):
            (x0, y0), (x1, y1) = corner[i, j], corner[i, j + 1]
            north_mid[i, j] = (
                (x0 + x1) / 2 + rng.uniform(-MIDPOINT_JITTER, MIDPOINT_JITTER),
                (y0 + y1) / 2,
            )
    rings = {}
    for cell in cells:
        i, j = cell.col, cell.line
        # Counter-clockwise from the south-west corner, as GeoJSON (RFC 7946) asks.
        rings[cell.slug] = _ring(
            [
                corner[i, j],
                east_mid[i, j],
                corner[i + 1, j],
                north_mid[i + 1, j],
                corner[i + 1, j + 1],
                east_mid[i, j + 1],
                corner[i, j + 1],
                north_mid[i, j],
            ]
        )
    return rings


def blob_ring(cell: Cell, radius: float, seed: str) -> dict[str, Any]:
    """A small irregular octagon around the cell's centre, inside the cell's safe box."""
    if radius > 0.5 - SAFE:
        raise ValueError(f"dedicated grid radius {radius} would leave its comprehensive grid")
    rng = random.Random(f"{MAP_SEED}:{seed}")
    phase = rng.uniform(0, math.pi / 4)
    points = []
    for k in range(8):
        angle = phase + k * math.pi / 4  # increasing angle: counter-clockwise
        r = radius * rng.uniform(0.8, 1.0)
        points.append(cell.at(0.5 + r * math.cos(angle), 0.5 + r * math.sin(angle)))
    return _ring(points)


def device_point(cell: Cell, seed: str, dedicated_radius: float, inside: bool) -> Point:
    """A deterministic spot for a device: inside the cell's dedicated grid when `inside`,
    otherwise in the cell's safe box but clear of the dedicated grid it hosts (radius 0: none)."""
    rng = random.Random(f"{MAP_SEED}:device:{seed}")
    if inside:
        # An octagon whose radii vary down to 0.8 r still contains the disc of 0.7 r.
        angle = rng.uniform(0, 2 * math.pi)
        r = 0.5 * dedicated_radius * math.sqrt(rng.random())
        return cell.at(0.5 + r * math.cos(angle), 0.5 + r * math.sin(angle))
    clear = dedicated_radius + 0.03 if dedicated_radius else 0.0
    for _ in range(1000):
        u, v = rng.uniform(SAFE, 1 - SAFE), rng.uniform(SAFE, 1 - SAFE)
        if max(abs(u - 0.5), abs(v - 0.5)) >= clear:
            return cell.at(u, v)
    raise ValueError(f"no room for device {seed} in {cell.slug}")
