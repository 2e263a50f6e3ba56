"""An incident as an OASIS Common Alerting Protocol 1.2 message, for the systems that speak it
(district emergency platforms, public warning gateways).

CAP has no notion of a whistle or a summons; what maps is the incident itself: what happened
(category, event, headline, description), how bad and how urgent, where (the grid's polygon or
the reported position) and the photos. An incident still being handled is an ``Alert``, sent
when it was opened; once resolved, and again once closed, the message is an ``Update`` of its
own identifier and time that references the messages before it and says what became of it in
``note``. So the same state always gives the same message, and a receiver can tell the Update
from the Alert it updates.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree as ET

from django.conf import settings
from django.utils import translation

from command.org.models import township_zone
from command.text import xml_text
from incidents.models import Incident, Photo
from incidents.photos import own_photo_ids

NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
CONTENT_TYPE = "application/cap+xml"

# CAP's categories are few and fixed; ours map onto them by what the matter is.
CAP_CATEGORY = {
    "fire": "Fire",
    "straw-burning": "Fire",
    "flood": "Met",
    "gas-leak": "CBRNE",
    "production-safety": "Safety",
    "public-order": "Security",
    "rental-housing": "Security",
    "parking": "Transport",
    "illegal-mining": "Env",
    "garbage": "Env",
    "air-quality": "Env",
    "illegal-construction": "Infra",
    "device-fault": "Infra",
    "dispute": "Security",
}
# Our four severities against CAP's (Extreme … Minor) and how soon to act (Immediate …).
CAP_SEVERITY = {"critical": "Extreme", "major": "Severe", "minor": "Moderate", "warning": "Minor"}
CAP_URGENCY = {"critical": "Immediate", "major": "Expected", "minor": "Future", "warning": "Future"}
# Forbidden in identifier and sender by CAP 1.2 §3.2.1: spaces, commas and the XML specials.
_FORBIDDEN = str.maketrans({c: "-" for c in " ,<&"})
# What stays as it is when a photo's address is made a URI: the reserved characters and "%" of
# escapes already made; spaces and non-ASCII are percent-encoded.
_URI_SAFE = "/:?#[]@!$&'()*+,;=%~"


def _time(moment: datetime, zone: str) -> str:
    # CAP wants seconds and an explicit offset ("2026-11-23T21:05:00+08:00"), never "Z".
    local = moment.astimezone(township_zone(zone)).replace(microsecond=0)
    text = local.isoformat()
    return text.replace("+00:00", "-00:00") if text.endswith("+00:00") else text


def _on_earth(lat: object, lon: object) -> bool:
    return (
        isinstance(lat, int | float)
        and isinstance(lon, int | float)
        and -90 <= lat <= 90
        and -180 <= lon <= 180
    )


def _polygon(incident: Incident) -> str | None:
    """The grid's outer ring as CAP wants it: "lat,lon" pairs, closed, at least four."""
    polygon = incident.grid.polygon if incident.grid else None
    if not isinstance(polygon, dict) or polygon.get("type") != "Polygon":
        return None
    ring = polygon.get("coordinates", [[]])[0]
    if len(ring) < 3 or not all(
        isinstance(point, list | tuple) and len(point) >= 2 and _on_earth(point[1], point[0])
        for point in ring
    ):
        return None
    if ring[0] != ring[-1]:
        ring = [*ring, ring[0]]
    if len(ring) < 4:
        return None
    return " ".join(f"{lat:.6f},{lon:.6f}" for lon, lat, *_ in ring)


def sender(incident: Incident) -> str:
    return (settings.WHISTLE_CAP_SENDER or f"whistle.{incident.township.code}").translate(
        _FORBIDDEN
    )


def messages(incident: Incident) -> list[tuple[str, datetime]]:
    """The CAP messages the incident has made so far, oldest first, as (identifier, sent): the
    Alert when it was opened, an Update when it was resolved and another when it was closed."""
    base = f"{sender(incident)}.incident.{incident.pk}"
    made = [(base, incident.opened_at)]
    active = incident.status in Incident.ACTIVE_STATUSES
    for status, moment in (("resolved", incident.resolved_at), ("closed", incident.closed_at)):
        if not active and moment is not None:
            made.append((f"{base}.{status}", moment))
    return made


def _mime_type(url: str, photos: dict[str, str]) -> str:
    """What the photo is: our own upload says (sniffed when stored); else its name's type."""
    if url in photos:
        return photos[url]
    guessed, _ = mimetypes.guess_type(urlsplit(url).path)
    return guessed if guessed and guessed.startswith("image/") else "image/jpeg"


def incident_cap(incident: Incident, *, absolute: Callable[[str], str]) -> bytes:
    """The CAP 1.2 ``<alert>`` for ``incident``; ``absolute`` turns our own photo paths into
    addresses another system can fetch."""
    zone = incident.township.time_zone
    ET.register_namespace("", NAMESPACE)

    def add(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        element = ET.SubElement(parent, f"{{{NAMESPACE}}}{tag}")
        if text is not None:
            element.text = xml_text(text)
        return element

    *earlier, (identifier, sent) = messages(incident)
    active = not earlier
    alert = ET.Element(f"{{{NAMESPACE}}}alert")
    add(alert, "identifier", identifier)
    add(alert, "sender", sender(incident))
    add(alert, "sent", _time(sent, zone))
    add(alert, "status", "Actual")
    add(alert, "msgType", "Alert" if active else "Update")
    add(alert, "source", "Whistle")
    # Township matters go to the command center's partners, not to the public.
    add(alert, "scope", "Restricted")
    add(alert, "restriction", "Township command center and summoned departments")
    if not active:
        add(alert, "note", f"{incident.get_status_display()}: {incident.feedback}".strip(": "))
        # CAP 1.2 §3.2.1: "sender,identifier,sent" of each earlier message, space-separated.
        add(
            alert,
            "references",
            " ".join(f"{sender(incident)},{ident},{_time(at, zone)}" for ident, at in earlier),
        )
    add(alert, "incidents", f"incident.{incident.pk}")
    urls = [item.get("url", "") for item in incident.evidence]
    photos = {
        f"/photos/{photo.pk}": photo.content_type
        for photo in Photo.objects.filter(pk__in=own_photo_ids(urls))
    }
    for language, cap_language in (("zh-hans", "zh-CN"), ("en", "en-US")):
        with translation.override(language):
            info = add(alert, "info")
            add(info, "language", cap_language)
            add(info, "category", CAP_CATEGORY.get(incident.category.code, "Other"))
            add(info, "event", incident.category.display_name)
            add(info, "urgency", CAP_URGENCY.get(incident.severity, "Unknown"))
            add(info, "severity", CAP_SEVERITY.get(incident.severity, "Unknown"))
            # A person or a sensor saw it: that is what an incident is opened on.
            add(info, "certainty", "Observed")
            add(info, "eventCode").extend(
                [_value("valueName", "whistle:category"), _value("value", incident.category.code)]
            )
            add(info, "effective", _time(incident.opened_at, zone))
            add(info, "senderName", incident.township.display_name)
            add(info, "headline", incident.display_title[:160])
            if incident.description:
                add(info, "description", incident.description)
            for item in incident.display_evidence:
                if item.get("kind") not in ("photo", "snapshot"):
                    continue
                url = item["url"]
                resource = add(info, "resource")
                add(resource, "resourceDesc", item.get("caption") or translation.gettext("Photo"))
                add(resource, "mimeType", _mime_type(url, photos))
                address = absolute(url) if url.startswith("/") else url
                add(resource, "uri", quote(address, safe=_URI_SAFE))
            area = add(info, "area")
            add(
                area,
                "areaDesc",
                incident.grid.display_name if incident.grid else incident.township.display_name,
            )
            polygon = _polygon(incident)
            if polygon:
                add(area, "polygon", polygon)
            if _on_earth(incident.latitude, incident.longitude):
                # The reported spot, with a 100 m circle around it.
                add(area, "circle", f"{incident.latitude:.6f},{incident.longitude:.6f} 0.1")
            if incident.grid:
                geocode = add(area, "geocode")
                geocode.extend(
                    [_value("valueName", "whistle:grid"), _value("value", incident.grid.code)]
                )
    return ET.tostring(alert, encoding="utf-8", xml_declaration=True)


def _value(tag: str, text: str) -> ET.Element:
    element = ET.Element(f"{{{NAMESPACE}}}{tag}")
    element.text = text
    return element
