"""A supervisor replays an incident in a browser: plays it, pauses, scrubs, steps and follows a
deep link, and at each moment the board shows what the timeline says was true then."""

from datetime import UTC, datetime, timedelta

import pytest

from command.timeline.models import TimelineEntry
from incidents.models import Summons
from tests.e2e.conftest import screenshot
from tests.incidents.test_replay import tell_story

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def truth(at_ms: int) -> dict[tuple[str, int], dict]:
    """What the timeline says every subject was at ``at_ms``: the oracle, read straight from
    the rows (not through the replay's code)."""
    at = datetime.fromtimestamp(at_ms / 1000, UTC)
    state: dict[tuple[str, int], dict] = {}
    for entry in TimelineEntry.objects.order_by("time"):
        if entry.time <= at:
            state.setdefault((entry.subject_type, entry.subject_id), {}).update(entry.after or {})
    return state


def board(page) -> dict:
    """What the replay's board shows."""
    return page.evaluate(
        """() => ({
          shown: Number(document.getElementById("replay-player").dataset.shown),
          queue: Array.from(document.querySelectorAll("#alert-queue li.alert"))
            .map(li => Number(li.dataset.alertId)),
          markers: Array.from(document.querySelectorAll("#map-overlay g[data-alert-id]"))
            .map(g => Number(g.dataset.alertId)).sort(),
          incident: (document.querySelector("#incident-panel li.incident .status")
            || {}).textContent,
          countdowns: Object.fromEntries(Array.from(
            document.querySelectorAll("#incident-panel .countdown")).map(li =>
              [li.id.replace("countdown-", ""), {status: li.dataset.status,
               late: li.classList.contains("late"),
               remaining: (li.querySelector(".remaining") || {}).textContent || null,
               escalated: !!li.querySelector(".escalated")}])),
          recent: (document.querySelector("#replay-recent li") || {dataset: {}}).dataset.action,
        })"""
    )


def assert_matches_timeline(page) -> dict:
    shown = board(page)
    state = truth(shown["shown"])
    open_alerts = {
        pk
        for (kind, pk), s in state.items()
        if kind == "alert" and s["status"] in ("new", "acknowledged")
    }
    assert set(shown["queue"]) == open_alerts, (shown, state)
    assert set(shown["markers"]) == open_alerts
    summonses = {pk: s for (kind, pk), s in state.items() if kind == "summons"}
    assert {int(k): v["status"] for k, v in shown["countdowns"].items()} == {
        pk: s["status"] for pk, s in summonses.items()
    }
    for pk, s in summonses.items():
        countdown = shown["countdowns"][str(pk)]
        if s["status"] in ("notified", "acknowledged"):
            # The countdown counts at the replay's clock: minutes left until the deadline then.
            left = datetime.fromisoformat(s["deadline"]).timestamp() * 1000 - shown["shown"]
            minutes = int(abs(left) // 60000)
            assert countdown["remaining"].split()[-1].startswith(f"{minutes}:"), countdown
            assert countdown["late"] == (left <= 0)
    return shown


def wait_shown(page, at_ms: int) -> None:
    page.wait_for_function(
        "ms => Number(document.getElementById('replay-player').dataset.shown) === ms",
        arg=at_ms,
        timeout=10_000,
    )


def test_supervisor_replays_an_incident(daphne_server, demo_committed, board_page):
    story = tell_story(spread=timedelta(minutes=1))
    incident = story["incident"]
    url = f"{daphne_server}/supervise/qingshui/incidents/{incident.pk}/replay/"
    page = board_page("supervisor")
    page.goto(url)
    moments = page.evaluate("JSON.parse(document.getElementById('replay-moments').textContent)")

    # At the start the camera's alert has just arrived above the township's other open alert;
    # nothing is being handled yet.
    first = assert_matches_timeline(page)
    assert first["queue"] == [story["alert"], story["other"]] and first["incident"] is None

    # Step: the alert repeats (×2) and stays on top.
    page.click("[data-replay='next']")
    wait_shown(page, moments[1])
    assert assert_matches_timeline(page)["queue"][0] == story["alert"]
    assert page.inner_text(f"#alert-{story['alert']} .repeat") == "×2"

    # Play at 60×: a minute a second, until the incident is opened; then pause.
    page.click("[data-speed='60']")
    page.click("[data-replay='play']")
    page.wait_for_selector("#incident-panel li.incident", timeout=15_000)
    page.click("[data-replay='play']")
    assert page.get_attribute("[data-replay='play']", "aria-pressed") == "false"
    paused = assert_matches_timeline(page)
    assert story["alert"] not in paused["queue"]  # escalated into the incident
    assert "at=" in page.url  # paused: the address links to the moment

    # Scrub to the check-in: the city management is on site, the traffic police' countdown runs.
    check_in = TimelineEntry.objects.get(action="summons.checked_in").time.timestamp() * 1000
    target = next(m for m in moments if m >= check_in)
    page.eval_on_selector(
        "#replay-slider",
        """(slider, seconds) => { slider.value = seconds;
             slider.dispatchEvent(new Event("input"));
             slider.dispatchEvent(new Event("change")); }""",
        -(-(target - moments[0]) // 1000),
    )
    page.wait_for_selector(".countdown.status-checked_in")
    scrubbed = assert_matches_timeline(page)
    traffic = Summons.objects.get(department__code="traffic")
    assert scrubbed["countdowns"][str(traffic.pk)]["remaining"] is not None
    screenshot(page, "replay-check-in")

    # A deep link to the escalation: the traffic police overdue and escalated, on a fresh page.
    escalated = TimelineEntry.objects.get(action="summons.escalated").time
    page.goto(f"{url}?at={escalated.isoformat()}")
    last = assert_matches_timeline(page)
    assert last["countdowns"][str(traffic.pk)]["late"]
    assert last["countdowns"][str(traffic.pk)]["escalated"]
    assert last["recent"] == "summons.escalated"
    screenshot(page, "replay-escalated")

    # Step back one event: the deadline had passed, not yet escalated.
    page.click("[data-replay='previous']")
    wait_shown(page, moments[-2])
    before = assert_matches_timeline(page)
    assert before["recent"] == "summons.overdue"
    assert before["countdowns"][str(traffic.pk)]["late"]
    assert not before["countdowns"][str(traffic.pk)]["escalated"]
