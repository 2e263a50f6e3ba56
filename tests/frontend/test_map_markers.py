"""The board map's device markers, written without the template loop, are the markup the loop
made (a district township has a thousand of them in every frame that redraws the map)."""

from __future__ import annotations

from django.template import Context, Template

from frontend.maps import Marker, device_circles

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
