"""Photos from the field: stored once, addressed as ``/photos/<id>``, shown only to those who
may see the township's matters."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _

from command.errors import TransitionNotAllowed
from command.org import policy
from command.org.models import Township, User
from incidents.models import Incident, Photo

_OWN_URL = re.compile(r"^/photos/([0-9a-f-]{36})$")


def sniff_type(head: bytes) -> str | None:
    """The image type from the file's first bytes; the name and the browser's word are not
    trusted (a phone may call a HEIC photo image/jpeg)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def photo_store(*, uploader: User, upload: UploadedFile) -> Photo:
    limit = settings.WHISTLE_PHOTO_MAX_BYTES
    if upload.size is None or upload.size > limit:
        raise TransitionNotAllowed(
            _("The photo is larger than %(mb)d MB.") % {"mb": limit // 1_000_000},
            code="photo_too_large",
        )
    head = upload.read(16)
    upload.seek(0)
    content_type = sniff_type(head)
    if content_type is None:
        raise TransitionNotAllowed(
            _("Only JPEG, PNG and WebP photos are accepted."), code="photo_type"
        )
    photo = Photo(
        uploaded_by=uploader,
        content_type=content_type,
        size=upload.size,
    )
    photo.file.save("photo", upload, save=False)
    photo.save()
    return photo


def own_photo_ids(urls: Iterable[str]) -> list[uuid.UUID]:
    return [uuid.UUID(m.group(1)) for url in urls if (m := _OWN_URL.match(url))]


def is_acceptable_url(url: str) -> bool:
    """An address evidence may point at: one of our photos or an http(s) page."""
    return bool(_OWN_URL.match(url)) or url.startswith(("http://", "https://"))


def photos_attach(*, urls: Iterable[str], township: Township, actor: User) -> None:
    """Our photos among ``urls`` now belong to ``township``: its staff may see them. Only the
    uploader's own photos move, so nobody attaches (and so reveals) another's picture."""
    ids = own_photo_ids(urls)
    if not ids:
        return
    mine = Photo.objects.filter(pk__in=ids, uploaded_by=actor)
    if mine.count() != len(set(ids)):
        raise TransitionNotAllowed(_("A photo was not found."), code="photo_unknown")
    mine.update(township=township)


def visible_photos(user: User):
    """Photos ``user`` may see (command.org.policy.photos): their own, their department's,
    their townships', and those an incident or report they may see shows."""
    from streams.models import GridReport

    return policy.photos(
        user,
        Photo.objects.all(),
        incidents=policy.incidents(user, Incident.objects.all()),
        reports=policy.reports(user, GridReport.objects.all()),
    )
