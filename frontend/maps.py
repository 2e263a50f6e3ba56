"""The township map, drawn on the server as SVG from the grids' GeoJSON: no tile server, no
internet, and the same drawing for the page and for a websocket push."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from alerts.models import Alert
from command.org.models import Device, Grid, Township

WIDTH = 1000.0
_CACHE_SECONDS = 300.0


@dataclass(frozen=True)
class Projection:
    """Longitude/latitude to SVG units: equirectangular, scaled by the cosine of the middle
    latitude so a township's shape is not stretched."""

    west: float
    north: float
    scale: float
    height: float
    squash: float

    def point(self, lon: float, lat: float) -> tuple[float, float]:
        return ((lon - self.west) * self.squash * self.scale, (self.north - lat) * self.scale)


@dataclass(frozen=True)
class GridShape:
    code: str
    name: str
    kind: str
    path: str
    label_x: float
    label_y: float


@dataclass(frozen=True)
class BaseMap:
    projection: Projection
    grids: list[GridShape]
    centroids: dict[int, tuple[float, float]]  # grid id → SVG point

    @property
    def height(self) -> float:
        return self.projection.height


_cache: dict[int, tuple[float, BaseMap]] = {}
_lock = threading.Lock()


def _rings(polygon: dict) -> list[list[list[float]]]:
    if not isinstance(polygon, dict) or polygon.get("type") != "Polygon":
        return []
    return [ring for ring in polygon.get("coordinates", []) if len(ring) >= 3]


def base_map(township: Township) -> BaseMap:
    """The grids, projected; cached for a few minutes (grids change rarely)."""
    now = time.monotonic()
    with _lock:
        cached = _cache.get(township.pk)
    if cached and now - cached[0] < _CACHE_SECONDS:
        return cached[1]
    grids = list(Grid.objects.filter(township=township).order_by("kind", "code"))
    points = [pt for g in grids for ring in _rings(g.polygon) for pt in ring]
    if not points:
        projection = Projection(0, 0, 1, 600, 1)
        shaped = BaseMap(projection, [], {})
    else:
        west = min(p[0] for p in points)
        east = max(p[0] for p in points)
        south = min(p[1] for p in points)
        north = max(p[1] for p in points)
        squash = math.cos(math.radians((north + south) / 2))
        scale = WIDTH / max((east - west) * squash, 1e-9)
        projection = Projection(west, north, scale, (north - south) * scale, squash)
        shapes, centroids = [], {}
        for grid in grids:
            rings = _rings(grid.polygon)
            if not rings:
                continue
            outer = [projection.point(lon, lat) for lon, lat, *_ in rings[0]]
            path = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in outer) + " Z"
            cx = sum(x for x, _ in outer[:-1]) / max(len(outer) - 1, 1)
            cy = sum(y for _, y in outer[:-1]) / max(len(outer) - 1, 1)
            centroids[grid.pk] = (cx, cy)
            shapes.append(GridShape(grid.code, grid.display_name, grid.kind, path, cx, cy))
        shaped = BaseMap(projection, shapes, centroids)
    with _lock:
        _cache[township.pk] = (now, shaped)
    return shaped


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    css: str
    title: str
    ref: int
    code: str = ""


# The device layer of each township, language and kind of drawing, with the rows it was drawn
# from: redrawn only when a device's place, name or online state changed.
_layers: dict[tuple[int, str, bool], tuple[tuple, dict[int, tuple[float, float]], SafeString]] = {}
_DEVICE_COLUMNS = ("pk", "kind", "code", "name", "name_en", "latitude", "longitude", "online")


def device_layer(
    township: Township, *, device_states: bool = True
) -> tuple[dict[int, tuple[float, float]], SafeString]:
    """Each placed device's point on the map, and the devices' markers as SVG (with their
    online state, or ``device_states=False``: "unknown", as a replay draws them).

    Every frame that redraws the map needs them, and a district township has a thousand
    devices: drawn from plain rows (a model instance each cost ~30 ms a frame) and the markup
    kept until a row changes."""
    shaped = base_map(township)
    language = get_language() or "zh-hans"
    rows = tuple(
        Device.objects.filter(township=township)
        .exclude(latitude=None)
        .values_list(*_DEVICE_COLUMNS)
    )
    key = (township.pk, language, device_states)
    with _lock:
        cached = _layers.get(key)
    # The projection is part of the key too: new grids move every point.
    if cached and cached[0] == (shaped.projection, rows):
        return cached[1], cached[2]
    english = language.startswith("en")
    positions: dict[int, tuple[float, float]] = {}
    markers = []
    for pk, kind, code, name, name_en, latitude, longitude, online in rows:
        x, y = shaped.projection.point(longitude, latitude)
        positions[pk] = (x, y)
        state = ("online" if online else "offline") if device_states else "unknown"
        title = name_en if english and name_en else name
        markers.append(Marker(x, y, f"device {kind} {state}", title, pk, code))
    markup = device_circles(markers)
    with _lock:
        _layers[key] = ((shaped.projection, rows), positions, markup)
    return positions, markup


def overlay(
    township: Township,
    alerts: list[Alert],
    *,
    only_alerts: bool = False,
) -> tuple[SafeString, list[Marker]]:
    """The device layer (:func:`device_layer`) and the open alerts' markers where they happen.
    ``only_alerts=True`` (a replay's frames, drawn over the page's devices) leaves the device
    layer out and looks up only the alerts' devices."""
    shaped = base_map(township)
    if only_alerts:
        layer = mark_safe("")
        positions = {
            pk: shaped.projection.point(lon, lat)
            for pk, lat, lon in Device.objects.filter(
                township=township, pk__in={a.device_id for a in alerts if a.device_id}
            )
            .exclude(latitude=None)
            .values_list("pk", "latitude", "longitude")
        }
    else:
        positions, layer = device_layer(township)
    markers = []
    for alert in alerts:
        where = positions.get(alert.device_id) if alert.device_id else None
        if where is None and alert.grid_id:
            where = shaped.centroids.get(alert.grid_id)
        if where is None:
            continue
        title = alert.category.display_name if alert.category else alert.display_title
        markers.append(Marker(where[0], where[1], f"marker sev-{alert.severity}", title, alert.pk))
    return layer, markers


def device_circles(devices: list[Marker]) -> SafeString:
    """The devices' markers as SVG, the markup the template loop made: written here because
    with a district township's thousand devices the loop (``floatformat`` twice a device) took
    ~0.2 s of every board frame that redraws the map."""
    # Safe: every value below is a number or escaped.
    return mark_safe(
        "".join(
            f'<circle cx="{d.x:.1f}" cy="{d.y:.1f}" r="4" class="{escape(d.css)}" '
            f'data-device="{escape(d.code)}"><title>{escape(d.title)}</title></circle>'
            for d in devices
        )
    )


@dataclass(frozen=True)
class Tile:
    href: str
    x: float
    y: float
    width: float
    height: float


def _tile_lon(x: int, zoom: int) -> float:
    return x / 2**zoom * 360.0 - 180.0


def _tile_lat(y: int, zoom: int) -> float:
    return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / 2**zoom))))


def tiles(township: Township, url: str) -> list[Tile]:
    """Background tiles from the site's own tile server (``WHISTLE_MAP_TILES``, an XYZ template
    such as ``https://tiles.example/{z}/{x}/{y}.png``) under the grids: the zoom where a tile
    is about 256 map units wide, every tile that touches the township. Over a township's few
    kilometres Web Mercator and this map's projection differ by far less than a pixel."""
    if not url:
        return []
    shaped = base_map(township)
    p = shaped.projection
    if not shaped.grids:
        return []
    east = p.west + WIDTH / (p.squash * p.scale)
    south = p.north - p.height / p.scale
    zoom = max(0, min(19, round(math.log2(360.0 * p.squash * p.scale / 256.0))))
    n = 2**zoom

    def column(lon: float) -> int:
        return int((lon + 180.0) / 360.0 * n)

    def row(lat: float) -> int:
        phi = math.radians(lat)
        return int((1 - math.asinh(math.tan(phi)) / math.pi) / 2 * n)

    found = []
    for x in range(column(p.west), column(east) + 1):
        for y in range(row(p.north), row(south) + 1):
            left, top = p.point(_tile_lon(x, zoom), _tile_lat(y, zoom))
            right, bottom = p.point(_tile_lon(x + 1, zoom), _tile_lat(y + 1, zoom))
            href = url.replace("{z}", str(zoom)).replace("{x}", str(x)).replace("{y}", str(y))
            found.append(Tile(href, left, top, right - left, bottom - top))
    return found


@dataclass(frozen=True)
class HotSpotMarker:
    """A grid where matters keep coming back (supervision.trends.hot_spots), at its centre."""

    code: str
    name: str
    x: float
    y: float
    peak: int  # the most matters of one category within the window
    categories: str  # the recurring categories, most first

    @property
    def radius(self) -> float:
        return min(22.0 + 3.0 * (self.peak - 3), 40.0)


def hot_spot_markers(township: Township, spots: list) -> list[HotSpotMarker]:
    """One marker per grid with recurrence, however many of its categories recur."""
    centroids = base_map(township).centroids
    by_grid: dict[int, list] = {}
    for spot in spots:
        by_grid.setdefault(spot.grid_id, []).append(spot)
    markers = []
    for grid_id, found in by_grid.items():
        if grid_id not in centroids:
            continue
        x, y = centroids[grid_id]
        found.sort(key=lambda s: -s.peak)
        markers.append(
            HotSpotMarker(
                found[0].grid_code,
                found[0].grid_name,
                x,
                y,
                found[0].peak,
                "、".join(f"{s.category_name} {s.peak}" for s in found),
            )
        )
    return sorted(markers, key=lambda m: -m.peak)


# --- the district map -------------------------------------------------------------------------


@dataclass(frozen=True)
class TownshipShape:
    code: str
    township: Township  # its name is read in the reader's language when drawn
    paths: list[str]
    label_x: float
    label_y: float


@dataclass(frozen=True)
class DistrictMap:
    height: float
    townships: list[TownshipShape]

    def place(self, code: str) -> tuple[float, float]:
        for shape in self.townships:
            if shape.code == code:
                return shape.label_x, shape.label_y
        return (0.0, 0.0)


_district_cache: dict[tuple[int, tuple[int, ...]], tuple[float, DistrictMap]] = {}
# Townships without grids drawn go in rows of tiles under the map: still on the screen.
_TILE = 120.0


def district_map(district_id: int, townships: list[Township]) -> DistrictMap:
    """Every township of a district on one projection, each drawn as its comprehensive grids
    (its outline), labelled at their middle; cached for a few minutes like the township map."""
    key = (district_id, tuple(t.pk for t in townships))
    now = time.monotonic()
    with _lock:
        cached = _district_cache.get(key)
    if cached and now - cached[0] < _CACHE_SECONDS:
        return cached[1]
    grids: dict[int, list[list[list[float]]]] = {t.pk: [] for t in townships}
    for grid in Grid.objects.filter(township__in=townships, kind=Grid.Kind.COMPREHENSIVE).only(
        "township_id", "polygon"
    ):
        rings = _rings(grid.polygon)
        if rings:
            grids[grid.township_id].append(rings[0])
    points = [pt for rings in grids.values() for ring in rings for pt in ring]
    shapes: list[TownshipShape] = []
    height = 0.0
    if points:
        west, east = min(p[0] for p in points), max(p[0] for p in points)
        south, north = min(p[1] for p in points), max(p[1] for p in points)
        squash = math.cos(math.radians((north + south) / 2))
        scale = WIDTH / max((east - west) * squash, 1e-9)
        projection = Projection(west, north, scale, (north - south) * scale, squash)
        height = projection.height
    bare = [t for t in townships if not grids[t.pk]]
    for township in townships:
        rings = grids[township.pk]
        if not rings:
            continue
        paths, xs, ys = [], [], []
        for ring in rings:
            outer = [projection.point(lon, lat) for lon, lat, *_ in ring]
            paths.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in outer) + " Z")
            xs += [x for x, _ in outer]
            ys += [y for _, y in outer]
        shapes.append(
            TownshipShape(
                township.code,
                township,
                paths,
                (min(xs) + max(xs)) / 2,
                (min(ys) + max(ys)) / 2,
            )
        )
    per_row = int(WIDTH // _TILE)
    top = height + (20.0 if height else 0.0)
    for index, township in enumerate(bare):
        x = (index % per_row) * _TILE
        y = top + (index // per_row) * _TILE
        square = (
            f"M{x + 6:.1f},{y + 6:.1f} h{_TILE - 12:.0f} v{_TILE - 12:.0f} h-{_TILE - 12:.0f} Z"
        )
        shapes.append(
            TownshipShape(township.code, township, [square], x + _TILE / 2, y + _TILE / 2)
        )
    if bare:
        height = top + ((len(bare) - 1) // per_row + 1) * _TILE
    shaped = DistrictMap(max(height, 200.0), shapes)
    with _lock:
        _district_cache[key] = (now, shaped)
    return shaped
