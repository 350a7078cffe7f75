"""The leadership dashboard in Chromium: it draws its charts with the seeded numbers, filters
work, the page passes axe (WCAG 2.1 AA), agents are kept out; plus the README screenshot.

A real console process serves a data directory seeded with the known scenario of
tests/unit/analytics/test_scenario.py (ingested through the real ingestion code). Set
ASKAGENCY_UPDATE_SCREENSHOTS=1 to refresh docs/screenshots/dashboard.png.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from askagency.config import PROJECT_ROOT
from tests.browser.conftest import PageFactory
from tests.browser.console_process import standalone_console
from tests.browser.widget import describe, run_axe, serious
from tests.unit.analytics.test_scenario import seed

PASSWORD = "correct horse battery"
RANGE = "from=2026-03-02&to=2026-03-03"
SCREENSHOT = PROJECT_ROOT / "docs" / "screenshots" / "dashboard.png"


@pytest.fixture(scope="module")
def console_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from sqlalchemy.orm import Session

    from askagency.staff import Role
    from console.auth import create_user

    data_dir = tmp_path_factory.mktemp("dashboard") / "data"
    data_dir.mkdir()

    def seed_data(session: Session) -> None:
        seed(session)
        for role in (Role.VIEWER, Role.AGENT):
            create_user(session, role.value, PASSWORD, role)

    with standalone_console(data_dir, seed_data) as url:
        yield url


def login(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/console/login?next=/console")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/console")


def open_dashboard(page: Any, base: str, query: str = RANGE) -> None:
    page.goto(f"{base}/console/dashboard?{query}")
    page.wait_for_selector("#dashboard[data-charts-ready='true']")


def chart_data(page: Any, name: str) -> dict[str, Any]:
    return page.evaluate(
        """(name) => {
            const chart = Chart.getChart(document.getElementById('chart-' + name));
            const canvas = chart.canvas;
            const pixels = canvas.getContext('2d')
                .getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) painted++; }
            return {
                type: chart.config.type,
                labels: chart.data.labels,
                datasets: chart.data.datasets.map(d => ({label: d.label, data: d.data})),
                painted: painted,
                width: canvas.width,
            };
        }""",
        name,
    )


def tile(page: Any, key: str) -> str:
    return page.inner_text(f".tile[data-metric='{key}'] .tile-value")


def test_dashboard_draws_the_seeded_numbers(
    pages: PageFactory, console_url: str, tmp_path: Path
) -> None:
    page = pages.page(width=1366, height=900)
    login(page, console_url, "viewer")
    open_dashboard(page, console_url)

    assert tile(page, "conversations") == "6"
    assert tile(page, "containment_rate") == "66.7%"
    assert tile(page, "bot_resolution_rate") == "33.3%"
    assert tile(page, "handoff_rate") == "33.3%"
    assert tile(page, "bot_response_p50") == "32.5 ms"
    assert tile(page, "bot_response_p90") == "78.0 ms"
    assert tile(page, "human_first_response_p50") == "3 min 30 s"
    assert tile(page, "csat") == "50.0%"
    assert tile(page, "negative_rate") == "33.3%"
    negative = page.locator(".tile[data-metric='negative_rate']").inner_text()
    assert "of 6 scored conversations; mostly about esperando, flagged, hora" in negative
    assert tile(page, "staff_hours_saved") == "0.2 h"
    assert tile(page, "fte_equivalent") == "0.02"
    mission = page.inner_text(".mission")
    assert "Counts only conversations the bot resolved" in mission
    assert "Assumes each resolved conversation saves 6 minutes" in mission

    volume = chart_data(page, "volume_by_channel")
    assert volume["labels"] == ["2026-03-02", "2026-03-03"]
    assert volume["datasets"] == [
        {"label": "rest", "data": [2, 3]},
        {"label": "socketio", "data": [1, 0]},
    ]
    response = chart_data(page, "response_times")
    assert response["datasets"][0] == {"label": "p50", "data": [27.5, 57.5]}
    resolution = chart_data(page, "resolution_mix")
    assert [d["data"] for d in resolution["datasets"]] == [[1, 1], [1, 0], [1, 2]]
    handoffs = chart_data(page, "handoffs_by_reason")
    assert handoffs["labels"] == ["repeated fallback", "requested"]
    assert handoffs["datasets"][0]["data"] == [1, 1]
    for chart in (volume, response, resolution, handoffs):
        assert chart["width"] > 200 and chart["painted"] > 1000  # really drawn, not just set up

    # The data table behind a chart is one click away and says the same.
    page.click("text=Data table: Resolution mix per day")
    table = page.locator("table[data-table='resolution_mix']")
    assert table.is_visible()
    assert table.locator("tbody tr").first.inner_text().split() == ["2026-03-02", "1", "1", "1"]
    heat = page.locator("table[data-table='hour_of_day'] tbody tr").first
    assert heat.locator("td.heat-5").inner_text() == "3"

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("ASKAGENCY_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


def test_filters_redraw_with_the_filtered_numbers(pages: PageFactory, console_url: str) -> None:
    page = pages.page()
    login(page, console_url, "viewer")
    open_dashboard(page, console_url)
    page.select_option("#f-channel", "socketio")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**channel=socketio**")
    page.wait_for_selector("#dashboard[data-charts-ready='true']")
    assert tile(page, "conversations") == "1"
    assert tile(page, "handoff_rate") == "100.0%"
    assert chart_data(page, "volume_by_channel")["datasets"] == [
        {"label": "socketio", "data": [1, 0]}
    ]
    page.select_option("#f-channel", "")
    page.select_option("#f-location", "DEN")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**location=DEN**")
    page.wait_for_selector("#dashboard[data-charts-ready='true']")
    assert tile(page, "conversations") == "2"  # citizen A's two sessions on the Denver page
    assert "location DEN" in page.inner_text("#dashboard > p.muted")
    page.goto(f"{console_url}/console/dashboard?from=2026-03-09&to=2026-03-01")
    assert "is after" in page.inner_text("[role=alert]")


def test_dashboard_is_accessible(pages: PageFactory, console_url: str) -> None:
    # axe is injected as an inline script, which the console's CSP rightly forbids.
    page = pages.page(bypass_csp=True)
    login(page, console_url, "viewer")
    open_dashboard(page, console_url)
    for summary in page.locator("details > summary").all():
        summary.click()
    violations = run_axe(page)
    assert serious(violations) == [], describe(violations)


def test_agents_get_403(pages: PageFactory, console_url: str) -> None:
    page = pages.page()
    login(page, console_url, "agent")
    response = page.goto(f"{console_url}/console/dashboard")
    assert response is not None and response.status == 403
    assert "Dashboard" not in page.inner_text("body")
