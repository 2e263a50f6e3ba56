"""督办 reaching people, as each person sees it: marking a console notification read, the link
an SMS or e-mail carries, the page where a person chooses how they are reached, and the
supervisor console's scope."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest
from django.test import Client
from django.utils import translation

from alerts.delivery import people
from alerts.models import Notification
from command import clock, realtime
from command.org.models import Category, Department, Township, User
from command.timeline.models import TimelineEntry
from incidents.models import Summons, SupervisionOrder, Whistle
from incidents.services.incidents import incident_open
from incidents.services.whistles import SummonedDepartment, whistle_blow
from tests.conftest import signed_in

pytestmark = pytest.mark.django_db


def summons_in(township: Township, title: str = "滨河路违停") -> Summons:
    duty = User.objects.get(username="duty")
    if township.code != "qingshui":
        duty = User.objects.create(
            username=f"duty-{township.code}", role=User.Role.DUTY_OFFICER, township=township
        )
    incident = incident_open(
        actor=duty,
        township=township,
        category=Category.objects.get(code="parking"),
        severity="major",
        title=title,
    )
    department = Department.objects.get(code="chengguan")
    whistle = whistle_blow(
        actor=duty,
        incident=incident,
        kind=Whistle.Kind.EMERGENCY,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[SummonedDepartment(department, "test")],
    )
    return whistle.summonses.get()


def paged(summons: Summons, username: str, reason: str = "on_call", key: str = "t") -> Notification:
    incident = summons.whistle.incident
    (console, *_rest) = people.page(
        people.Cause(
            township_id=incident.township_id,
            subject_type="summons",
            subject_id=summons.pk,
            incident_id=incident.pk,
            text=f"{incident.title}：超时未报到",
            link=f"/console/{summons.department.code}/",
            key=f"{key}:{summons.pk}",
            step=1,
        ),
        [people.Recipient(User.objects.get(username=username), reason)],
    )
    assert console.channel == Notification.Channel.CONSOLE
    return console


def test_a_console_notification_goes_to_its_person_and_the_supervisors(
    demo, capture_broadcasts, django_capture_on_commit_callbacks
):
    summons = summons_in(Township.objects.get(code="qingshui"))
    with django_capture_on_commit_callbacks(execute=True):
        console = paged(summons, "chengguan")
    user = User.objects.get(username="chengguan")
    sent = [
        (group, event["type"], event.get("notification_id")) for group, event in capture_broadcasts
    ]
    assert (realtime.user_group(user.pk), "notification.new", console.pk) in sent
    township_id = summons.whistle.incident.township_id
    assert (realtime.supervision_group(township_id), "notification.updated", console.pk) in sent


def test_marking_read_is_its_persons_alone(demo, django_capture_on_commit_callbacks):
    summons = summons_in(Township.objects.get(code="qingshui"))
    console = paged(summons, "chengguan")
    url = f"/notifications/{console.pk}/read"
    assert signed_in("police").post(url).status_code == 404
    assert signed_in("admin").post(url).status_code == 404  # not even a superuser's
    member = signed_in("chengguan")
    assert member.get(url).status_code == 405
    assert Client().post(url).status_code == 302  # to sign in
    with django_capture_on_commit_callbacks(execute=True):
        assert member.post(url).status_code == 204
    console.refresh_from_db()
    assert console.read_at is not None
    assert member.post(url).status_code == 204  # again: still read once
    rows = TimelineEntry.objects.filter(
        subject_type="summons", subject_id=summons.pk, action="summons.page_read"
    )
    assert rows.count() == 1 and rows.get().after["channel"] == "console"


def test_the_link_signs_in_marks_read_and_lands_on_the_summons(demo):
    summons = summons_in(Township.objects.get(code="qingshui"))
    console = paged(summons, "chengguan")
    path = f"/n/{people.link_token(console.pk)}"
    anonymous = Client().get(path)
    assert anonymous.status_code == 302
    assert anonymous["Location"] == f"/login/?next={quote(path)}"
    assert signed_in("police").get(path).status_code == 404
    assert signed_in("chengguan").get("/n/forged-token").status_code == 404
    answer = signed_in("chengguan").get(path)
    assert answer.status_code == 302
    assert answer["Location"] == f"/console/chengguan/#summons-{summons.pk}"
    console.refresh_from_db()
    assert console.read_at is not None
    assert TimelineEntry.objects.filter(
        subject_type="summons", subject_id=summons.pk, action="summons.page_read"
    ).exists()


def test_the_link_takes_a_supervisor_to_their_console(demo):
    summons = summons_in(Township.objects.get(code="qingshui"))
    console = paged(summons, "supervisor", reason="district_supervisors")
    answer = signed_in("supervisor").get(f"/n/{people.link_token(console.pk)}")
    assert answer["Location"] == f"/supervise/console/#summons-{summons.pk}"
    # A person who can neither open the console nor supervise: the page its writer named.
    other = paged(summons, "grid01", reason="head", key="grid")
    answer = signed_in("grid01").get(f"/n/{people.link_token(other.pk)}")
    assert answer["Location"] == "/console/chengguan/"


def test_the_link_of_an_order_lands_on_the_order(demo):
    from incidents.services.orders import order_issue

    summons = summons_in(Township.objects.get(code="qingshui"))
    order = order_issue(
        actor=User.objects.get(username="supervisor"),
        incident=summons.whistle.incident,
        department=summons.department,
        instruction="立即到场",
        due_at=clock.now() + timedelta(hours=1),
    )
    mine = Notification.objects.filter(
        subject_type="order", subject_id=order.pk, user__username="chengguan"
    ).first()
    if mine is None:  # the orders' own paging reached someone else: page the member here
        mine = people.page(
            people.Cause(
                township_id=order.township_id, subject_type="order", subject_id=order.pk,
                incident_id=order.incident_id, text="督办单", link="/", key=f"t-order:{order.pk}",
            ),
            [people.Recipient(User.objects.get(username="chengguan"), "order")],
        )[0]  # fmt: skip
    answer = signed_in("chengguan").get(f"/n/{people.link_token(mine.pk)}")
    assert answer["Location"] == f"/console/chengguan/#order-{order.pk}"
    supervisor = people.page(
        people.Cause(
            township_id=order.township_id, subject_type="order", subject_id=order.pk,
            incident_id=order.incident_id, text="督办单", link="/", key=f"t-sup:{order.pk}",
        ),
        [people.Recipient(User.objects.get(username="supervisor"), "district_supervisors")],
    )[0]  # fmt: skip
    answer = signed_in("supervisor").get(f"/n/{people.link_token(supervisor.pk)}")
    assert answer["Location"] == f"/supervise/console/#order-{order.pk}"


def test_how_i_am_reached_saves_an_order_and_refuses_a_bad_one(demo):
    client = signed_in("chengguan")
    page = client.get("/me/notifications/")
    assert page.status_code == 200
    text = page.content.decode()
    # Only the department's system is a channel of this server so far; the others say so.
    reach = {row["code"]: row["state"] for row in page.context["reach"]}
    assert reach["console"] == "always"
    assert reach["sms"] == "not_configured" or "sms" in people.CHANNELS
    assert reach["system"] in ("reaches", "cannot")
    assert 'id="nav-my-notifications"' in text
    answer = client.post(
        "/me/notifications/",
        {
            "channel_1": "email",
            "channel_2": "",
            "channel_3": "sms",
            "channel_4": "",
            "phone": "13800138000",
            "email": "zhu@qingshui.example",
        },
    )
    assert answer.status_code == 302 and answer["Location"] == "/me/notifications/"
    user = User.objects.get(username="chengguan")
    assert user.notify_by == ["email", "sms"] and user.phone == "13800138000"
    refused = client.post(
        "/me/notifications/",
        {"channel_1": "sms", "channel_2": "sms", "phone": "", "email": "zhu@qingshui.example"},
    )
    assert refused.status_code == 400
    assert "reach-errors" in refused.content.decode()
    bad = client.post("/me/notifications/", {"channel_1": "fax", "email": "not an address"})
    assert bad.status_code == 400
    user.refresh_from_db()
    assert user.notify_by == ["email", "sms"]


def test_my_page_lists_my_notifications(demo):
    summons = summons_in(Township.objects.get(code="qingshui"))
    console = paged(summons, "chengguan")
    paged(summons, "police", key="other")
    page = signed_in("chengguan").get("/me/notifications/")
    rows = page.context["recent"]
    # The console's and the first channel that reaches the person (e-mail, SMS …): theirs only.
    assert console.pk in {n.pk for n in rows}
    assert {n.user.username for n in rows} == {"chengguan"}
    assert f'data-notification="{console.pk}"' in page.content.decode()


def test_the_supervisor_console_shows_its_townships_only(demo):
    qingshui = Township.objects.get(code="qingshui")
    beishan = Township.objects.create(code="beishan", name="北山镇", name_en="Beishan")
    late_q = summons_in(qingshui, "QS-LATE")
    late_b = summons_in(beishan, "BS-LATE")
    past = clock.now() - timedelta(minutes=20)
    Summons.objects.filter(pk__in=[late_q.pk, late_b.pk]).update(
        overdue=True, check_in_deadline=past, page_at=clock.now() + timedelta(minutes=3)
    )
    paged(late_b, "supervisor", reason="township_supervisors")
    order = SupervisionOrder.objects.create(
        township=beishan,
        incident=late_b.whistle.incident,
        summons=late_b,
        department=late_b.department,
        instruction="BS-ORDER 立即到场",
        due_at=clock.now() + timedelta(hours=1),
    )
    district = signed_in("supervisor").get("/supervise/console/").content.decode()
    assert "QS-LATE" in district and "BS-LATE" in district and "BS-ORDER" in district
    assert f'data-anchor="order-{order.pk}"' in district
    assert 'id="nav-supervisor-console"' in district
    User.objects.create_user(
        username="sup_bs", password="x", role=User.Role.SUPERVISOR, township=beishan
    )
    township = Client()
    township.login(username="sup_bs", password="x")
    page = township.get("/supervise/console/").content.decode()
    assert "BS-LATE" in page and "QS-LATE" not in page
    assert "supervise-notifications-" in page  # the notification about BS-LATE
    for username in ("duty", "chengguan", "grid01"):
        client = signed_in(username)
        assert client.get("/supervise/console/").status_code == 403
        home = client.get("/", follow=True).content.decode()  # their board, console, phone page
        assert 'id="nav-my-notifications"' in home and 'id="nav-supervisor-console"' not in home


def test_a_chain_position_reads_from_the_whistles_snapshot(demo):
    from supervision.console import chain_position

    summons = summons_in(Township.objects.get(code="qingshui"))
    summons.whistle.escalation_chain = [
        {"action": "notify_on_call"},
        {"action": "wait", "minutes": 5},
        {"action": "notify_backup"},
        {"action": "notify_head", "all_channels": True},
        {"action": "repeat", "times": 1},
    ]
    summons.page_step, summons.page_at = 2, clock.now()
    position = chain_position(summons)
    # Notification steps only, the repeat unrolled: on call, backup, head, and again.
    assert (position.done, position.total, position.next_at) == (2, 6, summons.page_at)
    with translation.override("en"):
        assert chain_position(summons).next_label == (
            "Notify the department head, by every channel"
        )
    summons.page_step = 6  # run out
    assert chain_position(summons).next_label == ""


def _socket_frames(username: str, path: str, act) -> tuple[str, str]:
    """Connect as ``username``, collect the initial frames, run ``act`` (ORM, in a thread),
    then collect what is pushed until the socket goes quiet: (initial, pushed)."""
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import async_to_sync, sync_to_async
    from channels.testing import WebsocketCommunicator

    from command.asgi import application

    client = signed_in(username)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    async def collect(communicator) -> str:
        got = []
        while not await communicator.receive_nothing(timeout=1.5):
            got.append(await communicator.receive_from(timeout=1))
        return "".join(got)

    async def run() -> tuple[str, str]:
        headers = [(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie)]
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        initial = await collect(communicator)
        await sync_to_async(act)()
        pushed = await collect(communicator)
        await communicator.disconnect()
        return initial, pushed

    with ThreadPoolExecutor(1) as executor:
        return executor.submit(async_to_sync(run)).result()


@pytest.mark.django_db(transaction=True)
def test_every_live_page_shows_its_persons_notifications(demo_committed, redis_url):
    summons = summons_in(Township.objects.get(code="qingshui"))
    found: dict[str, Notification] = {}

    def page_duty() -> None:
        found["n"] = paged(summons, "duty", reason="township_supervisors", key="board")

    # Pushed to the board of the person paged, and only to theirs.
    _initial, pushed = _socket_frames("duty", "/ws/board/qingshui/", page_duty)
    note = found["n"]
    assert f'id="notification-{note.pk}"' in pushed and "afterbegin:#notification-list" in pushed
    _initial, pushed = _socket_frames(
        "supervisor", "/ws/board/qingshui/", lambda: paged(summons, "duty", key="again")
    )
    assert "notification-" not in pushed
    # A page opened later gets the unread ones at once; read ones are not sent again.
    initial, _pushed = _socket_frames("duty", "/ws/board/qingshui/", lambda: None)
    assert f'id="notification-{note.pk}"' in initial
    people.mark_read(note)
    initial, _pushed = _socket_frames("duty", "/ws/board/qingshui/", lambda: None)
    assert f'id="notification-{note.pk}"' not in initial


@pytest.mark.django_db(transaction=True)
def test_the_supervisor_console_redraws_when_a_summons_is_late(demo_committed, redis_url):
    from incidents.services.deadlines import summons_escalate

    summons = summons_in(Township.objects.get(code="qingshui"), "LATE-LIVE")

    def late() -> None:
        Summons.objects.filter(pk=summons.pk).update(
            check_in_deadline=clock.now() - timedelta(minutes=3)
        )
        summons_escalate(summons_id=summons.pk, level=1)

    initial, pushed = _socket_frames("supervisor", "/ws/supervise/console/", late)
    # Its chain is paging from the start (the default chain of an emergency whistle).
    assert f'id="escalations-{summons.pk}"' in initial
    assert f'id="overdue-arrivals-{summons.pk}"' not in initial
    assert f'id="overdue-arrivals-{summons.pk}"' in pushed and "LATE-LIVE" in pushed
    # Notifications' progress redraws it too (the supervision group of the township).
    _initial, pushed = _socket_frames(
        "supervisor", "/ws/supervise/console/", lambda: paged(summons, "chengguan", key="x")
    )
    assert 'id="supervise-notifications"' in pushed and 'data-read="0"' in pushed


@pytest.mark.django_db
def test_a_district_supervisors_console_shares_renders_with_its_own_scope_only(demo):
    from frontend.consumers import SupervisorConsumer

    qingshui = Township.objects.get(code="qingshui")
    Township.objects.create(code="beishan", name="北山镇", district=qingshui.district)
    make = User.objects.create
    district = make(username="sup_d", role=User.Role.SUPERVISOR, district=qingshui.district)
    township = make(username="sup_q", role=User.Role.SUPERVISOR, township=qingshui)
    other = make(username="sup_d2", role=User.Role.SUPERVISOR, district=qingshui.district)
    # Sockets whose group key is the same share one rendered frame: a township supervisor's
    # must not be the district's (it would see the other township's rows).
    (ids, _townships), group = SupervisorConsumer().authorize(district, "")
    assert len(ids) == 2
    assert SupervisorConsumer().authorize(township, "")[1] == f"supervise.{qingshui.pk}"
    assert group != f"supervise.{qingshui.pk}"
    assert SupervisorConsumer().authorize(other, "")[1] == group
