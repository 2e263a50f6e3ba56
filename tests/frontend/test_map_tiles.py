"""An optional tile server under the board's grids."""

import re

import pytest

from command.org.models import Township
from frontend import maps, rendering

pytestmark = pytest.mark.django_db


def test_no_tiles_unless_the_site_has_a_tile_server(demo, settings):
    settings.WHISTLE_MAP_TILES = ""
    html = rendering.board_map_html(township=Township.objects.get(code="qingshui"), language="en")
    assert "<image" not in html


def test_tiles_cover_the_whole_township(demo, settings):
    settings.WHISTLE_MAP_TILES = "https://tiles.example.org/{z}/{x}/{y}.png"
    township = Township.objects.get(code="qingshui")
    html = rendering.board_map_html(township=township, language="en")
    images = re.findall(
        r'<image href="https://tiles.example.org/(\d+)/(\d+)/(\d+).png" '
        r'x="([-\d.]+)" y="([-\d.]+)" width="([\d.]+)" height="([\d.]+)"',
        html,
    )
    assert images, html[:500]
    assert len({z for z, *_ in images}) == 1
    # About 256 map units a tile, and together they cover the map from edge to edge.
    widths = [float(w) for *_, w, _ in images]
    assert all(128 <= w <= 512 for w in widths)
    left = min(float(x) for _, _, _, x, _, _, _ in images)
    top = min(float(y) for _, _, _, _, y, _, _ in images)
    right = max(float(x) + float(w) for _, _, _, x, _, w, _ in images)
    bottom = max(float(y) + float(h) for _, _, _, _, y, _, h in images)
    height = maps.base_map(township).height
    assert left <= 0.5 and top <= 0.5 and right >= maps.WIDTH - 0.5 and bottom >= height - 0.5
