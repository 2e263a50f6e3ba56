"""Photos from the field: uploaded through the API, attached to reports and done reports,
served only to those who may see the township's matters."""

import asyncio
import os

import pytest
from django.test import Client

from alerts.models import Alert
from command.org.models import User
from command.org.tokens import api_token_create
from incidents.models import Photo
from tests.conftest import signed_in
from tests.test_api import call

pytestmark = pytest.mark.django_db

# The first bytes are what the server trusts; the rest stands in for the picture.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(2000)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(500)


def token(username: str) -> str:
    return api_token_create(user=User.objects.get(username=username), name="t")[1]


def upload(raw_token: str, content: bytes, name: str = "photo.jpg"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return Client().post(
        "/api/v1/photos",
        {"file": SimpleUploadedFile(name, content, content_type="image/jpeg")},
        HTTP_AUTHORIZATION=f"Bearer {raw_token}",
    )


def test_report_with_a_photo_shows_it_to_the_township_and_nobody_else(demo):
    grid01 = token("grid01")
    uploaded = upload(grid01, JPEG)
    assert uploaded.status_code == 201, uploaded.content
    photo = uploaded.json()
    assert photo["content_type"] == "image/jpeg" and photo["url"] == f"/photos/{photo['id']}"

    # Before it is attached, only the one who took it sees it.
    assert signed_in("duty").get(photo["url"]).status_code == 404
    assert b"".join(signed_in("grid01").get(photo["url"]).streaming_content) == JPEG

    filed = call(
        "post",
        "/reports",
        grid01,
        {"category": "garbage", "description": "垃圾堆积", "photos": [photo["url"]]},
    )
    assert filed.status_code == 201, filed.content
    assert filed.json()["photos"] == [photo["url"]]
    alert = Alert.objects.get(pk=filed.json()["alert"])
    assert alert.detail["snapshot"] == photo["url"]

    seen = signed_in("duty").get(photo["url"])
    assert seen.status_code == 200 and seen["Content-Type"] == "image/jpeg"
    assert "private" in seen["Cache-Control"]
    # A department not summoned in the township does not see it; a stranger is sent to log in.
    assert signed_in("chengguan").get(photo["url"]).status_code == 404
    assert Client().get(photo["url"]).status_code == 302


def test_photos_are_checked_by_their_bytes_and_size(demo, settings):
    grid01 = token("grid01")
    refused = upload(grid01, b"<html>not a photo</html>", name="evil.jpg")
    assert refused.status_code == 415 and refused.json()["code"] == "photo_type"
    assert upload(grid01, PNG).json()["content_type"] == "image/png"
    settings.WHISTLE_PHOTO_MAX_BYTES = 1000
    too_large = upload(grid01, JPEG)
    assert too_large.status_code == 413 and "MB" in too_large.json()["detail"]
    assert Photo.objects.count() == 1
    assert call("post", "/photos", None).status_code == 401


def test_nobody_attaches_a_photo_someone_else_uploaded(demo):
    photo = upload(token("duty"), JPEG).json()
    stolen = call(
        "post",
        "/reports",
        token("grid01"),
        {"category": "garbage", "description": "x", "photos": [photo["url"]]},
    )
    assert stolen.status_code == 409
    foreign = call(
        "post",
        "/reports",
        token("grid01"),
        {"category": "garbage", "description": "x", "photos": ["https://example.com/a.jpg"]},
    )
    assert foreign.status_code == 409 and foreign.json()["code"] == "photos_invalid"


def test_done_report_with_a_photo_becomes_the_incidents_evidence(demo):
    duty, chengguan = token("duty"), token("chengguan")
    incident = call(
        "post",
        "/incidents",
        duty,
        {"township": "qingshui", "category": "garbage", "severity": "minor", "title": "垃圾"},
    ).json()["id"]
    whistle = call(
        "post",
        f"/incidents/{incident}/whistles",
        duty,
        {"kind": "general", "purpose": "key_task", "departments": [{"department": "chengguan"}]},
    )
    assert whistle.status_code == 201, whistle.content
    summons = whistle.json()["summonses"][0]["id"]
    call("post", f"/summonses/{summons}/check-in", chengguan, {})
    photo = upload(chengguan, JPEG).json()
    done = call(
        "post",
        f"/summonses/{summons}/done",
        chengguan,
        {"note": "已清运", "photos": [photo["url"]]},
    )
    assert done.status_code == 200, done.content
    evidence = call("get", f"/incidents/{incident}", duty).json()["evidence"]
    assert {"kind": "photo", "url": photo["url"], "caption": "已清运"}.items() <= evidence[
        -1
    ].items()
    assert signed_in("duty").get(photo["url"]).status_code == 200


def test_unused_uploads_are_deleted_after_a_day_with_their_files(demo):
    from datetime import timedelta

    from django.utils import timezone

    from intake.reports import photos_expire_orphans

    grid01 = token("grid01")
    kept, orphan, fresh = (upload(grid01, JPEG).json() for _ in range(3))
    filed = call(
        "post",
        "/reports",
        grid01,
        {"category": "garbage", "description": "垃圾", "photos": [kept["url"]]},
    )
    assert filed.status_code == 201, filed.content
    day_ago = timezone.now() - timedelta(hours=25)
    Photo.objects.filter(pk__in=[kept["id"], orphan["id"]]).update(uploaded_at=day_ago)
    # The report attached `kept` to the township; an unattached photo a report names stays too.
    Photo.objects.filter(pk=kept["id"]).update(township=None)
    path = Photo.objects.get(pk=orphan["id"]).file.path
    assert photos_expire_orphans() == 1
    assert {str(pk) for pk in Photo.objects.values_list("pk", flat=True)} == {
        kept["id"],
        fresh["id"],
    }
    assert not os.path.exists(path)


def _in_a_fresh_loop(coroutine):
    """asyncio.run in a thread of its own: the browser tests leave a loop in this thread."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _http_post(path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    """The ASGI scope daphne gives a POST to ``path``."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def _response_start(app, headers):
    """The response's start for a POST whose body is never sent."""
    from asgiref.testing import ApplicationCommunicator

    communicator = ApplicationCommunicator(app, _http_post("/api/v1/photos", headers))
    return await communicator.receive_output(timeout=10)


@pytest.mark.django_db(transaction=True)
def test_a_body_over_the_ceiling_is_refused_before_it_is_read(settings):
    """The real ASGI application (what daphne serves): a declared size over the ceiling gets
    413 at once, before a byte of the body is read."""
    from command.asgi import application

    settings.WHISTLE_REQUEST_MAX_BYTES = 1_000_000
    headers = [(b"content-length", b"2000000000"), (b"content-type", b"multipart/form-data")]
    start = _in_a_fresh_loop(_response_start(application, headers))
    assert start["status"] == 413


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_is_cut_when_it_passes_the_ceiling(settings):
    from asgiref.testing import ApplicationCommunicator

    from command.asgi import application

    settings.WHISTLE_REQUEST_MAX_BYTES = 100_000

    async def run() -> bool:
        scope_headers = [(b"content-type", b"multipart/form-data; boundary=x")]
        communicator = ApplicationCommunicator(
            application, _http_post("/api/v1/photos", scope_headers)
        )
        for _ in range(3):  # 150 KB, no declared length
            await communicator.send_input(
                {"type": "http.request", "body": bytes(50_000), "more_body": True}
            )
        # Django sees a disconnect past the ceiling and gives up: no response, no spooled body.
        await communicator.wait(timeout=10)
        return True

    assert _in_a_fresh_loop(run())
