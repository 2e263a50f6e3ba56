"""Photos from the field, uploaded before the report or done report that names them."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import File, Router, Schema, Status, UploadedFile

from api.common import Problem, request_actor
from command.errors import TransitionNotAllowed
from incidents.photos import photo_store

router = Router(tags=["photos"])


class PhotoOut(Schema):
    id: str
    url: str
    content_type: str
    size: int


@router.post("/photos", response={201: PhotoOut, 413: Problem, 415: Problem})
def upload_photo(request: HttpRequest, file: UploadedFile = File(...)):  # noqa: B008
    """A photo from the field (JPEG, PNG or WebP, multipart field ``file``); its ``url`` goes
    into a report's or a done report's ``photos``."""
    try:
        photo = photo_store(uploader=request_actor(request), upload=file)
    except TransitionNotAllowed as refusal:
        status = 413 if refusal.code == "photo_too_large" else 415
        return Status(status, {"detail": str(refusal), "code": refusal.code})
    return Status(
        201,
        PhotoOut(id=str(photo.pk), url=photo.url, content_type=photo.content_type, size=photo.size),
    )
