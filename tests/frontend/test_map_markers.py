"""The board map's device markers, written without the template loop, are the markup the loop
made (a district township has a thousand of them in every frame that redraws the map), and
are drawn again only when a device changes."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.utils import translation

from command.org.models import Device, Township
from demo.district import seed_district
from frontend.maps import Marker, device_circles, device_layer

LOOP = Template(
    '{% for d in devices %}<circle cx="{{ d.x|floatformat:1 }}" cy="{{ d.y|floatformat:1 }}" '
    'r="4" class="{{ d.css }}" data-device="{{ d.code }}"><title>{{ d.title }}</title>'
    "</circle>{% endfor %}"
)


def test_device_circles_match_the_template_loop() -> None:
    devices = [
        Marker(12.34, 567.89, "device sensor online", "水位 <1号> & 'x'", 1, "s-0001"),
        Marker(0.0, 1000.0, "device camera offline", 'Camera "gate"', 2, "cam-01"),
        # (A tie at the tenth, 3.05, may round either way: a twentieth of a map unit.)
        Marker(999.96, 3.04, "device gateway online", "网关", 3, "gw-01"),
    ]
    assert str(device_circles(devices)) == LOOP.render(Context({"devices": devices}))
    assert str(device_circles([])) == ""


@pytest.mark.django_db
def test_the_device_layer_is_kept_until_a_device_changes() -> None:
    summary = seed_district(townships=1, sensors=12, cameras=2)
    township = Township.objects.get(code=summary.townships[0])
    with translation.override("zh-hans"):
        positions, first = device_layer(township)
        assert device_layer(township)[1] is first, "nothing changed: the same markup"
    placed = Device.objects.filter(township=township).exclude(latitude=None)
    assert set(positions) == set(placed.values_list("pk", flat=True))
    device = placed.filter(online=True).first() or placed.first()
    marker = f'data-device="{device.code}"'
    Device.objects.filter(pk=device.pk).update(online=False, name="改名的设备")
    with translation.override("zh-hans"):
        _positions, second = device_layer(township)
    assert second is not first
    circle = second.split(marker)[0].rsplit("<circle", 1)[1]
    assert "offline" in circle and "改名的设备" in second.split(marker)[1].split("</circle>")[0]
    with translation.override("en"):
        english = device_layer(township)[1]
    assert english is not second, "each language has its own layer"
