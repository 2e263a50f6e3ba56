"""Every text on the pages a supervisor and a duty officer read meets WCAG AA contrast (4.5:1,
3:1 for large text) against the background it is drawn on, measured in the browser."""

import pytest

from alerts.models import Alert
from command.org.models import Category, Grid, Township, User
from incidents.services.incidents import incident_close, incident_open, incident_resolve
from tests.conftest import raise_alert
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]

# For each element with text of its own: its colour against the first opaque background behind
# it (the page's when none), as WCAG 2.1 computes relative luminance.
LOW_CONTRAST = """
() => {
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const channel = (c) => {
    c /= 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = (element) => {
    for (let e = element; e; e = e.parentElement) {
      const colour = rgb(getComputedStyle(e).backgroundColor);
      const opaque = colour.length === 3 || (colour.length === 4 && colour[3] === 1);
      if (opaque) return colour.slice(0, 3);
    }
    return rgb(getComputedStyle(document.body).backgroundColor).slice(0, 3);
  };
  const low = [];
  for (const element of document.body.querySelectorAll("*")) {
    const own = [...element.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const style = getComputedStyle(element);
    if (!own || style.visibility === "hidden" || element.getClientRects().length === 0) continue;
    if (element.closest("svg")) continue;  // map and chart labels are drawn on their shapes
    const [a, b] = [luminance(rgb(style.color)), luminance(background(element))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      const text = element.textContent.trim().slice(0, 30);
      const name = `${element.tagName.toLowerCase()}.${element.className}`;
      low.push(`${name} "${text}" ${ratio.toFixed(2)}`);
    }
  }
  return low;
}
"""


def test_the_timeline_board_and_assessment_pages_are_readable(
    daphne_server, demo_committed, board_page
):
    township = Township.objects.get(code="qingshui")
    alert = raise_alert(township.pk, "contrast-1", title="对比度")
    incident = incident_open(
        actor=User.objects.get(username="duty"),
        township=township,
        category=Category.objects.get(code="parking"),
        severity="major",
        title="违停",
        grid=Grid.objects.get(code="110112-QS-007"),
        alerts=[Alert.objects.get(pk=alert)],
    )
    page = board_page("supervisor")
    for name, path in (
        ("timeline", f"/supervise/qingshui/incidents/{incident.pk}/"),
        ("assessment", "/supervise/qingshui/"),
    ):
        page.goto(f"{daphne_server}{path}")
        page.wait_for_load_state("networkidle")
        screenshot(page, f"contrast-{name}")
        assert page.evaluate(LOW_CONTRAST) == [], name
    duty = board_page("duty")
    duty.wait_for_selector("#alert-queue")
    assert duty.evaluate(LOW_CONTRAST) == [], "board"
    # The board's dialogs, the duty officer's pages of cases, and the incident's page with its
    # forms (an officer sees the callback and reopening forms of a closed incident).
    for dialog, opener in (
        ("#intake-dialog", "#intake-open"),
        ("#incident-dialog", "#new-incident"),
        ("#whistle-dialog", f"#incident-{incident.pk} .whistle-open"),
    ):
        duty.click(opener)
        duty.wait_for_selector(f"{dialog}[open]", timeout=10_000)
        assert duty.evaluate(LOW_CONTRAST) == [], dialog
        duty.click(f"{dialog} [data-close-dialog]")
        duty.wait_for_selector(dialog, state="detached", timeout=10_000)
    incident_resolve(actor=User.objects.get(username="duty"), incident=incident)
    incident_close(
        actor=User.objects.get(username="duty"),
        incident=incident,
        feedback="已劝离",
        settled_level="township",
    )
    for name, path in (
        ("cases", "/cases/"),
        ("review", "/supervise/qingshui/review/"),
        ("timeline-closed", f"/supervise/qingshui/incidents/{incident.pk}/"),
    ):
        duty.goto(f"{daphne_server}{path}")
        duty.wait_for_load_state("networkidle")
        screenshot(duty, f"contrast-{name}")
        assert duty.evaluate(LOW_CONTRAST) == [], name
