"""``GET /console/dashboard/report.pdf``: the one-page report for the dashboard's filters, for the
dashboard's roles, rendered with PDFium to check it is one real page."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.console_helpers import login
from tests.unit.analytics import test_metrics
from tests.unit.analytics.test_mailer import A4_POINTS, render_pdf_page

WEEK = "from=2026-03-02&to=2026-03-08"
client = test_metrics.client  # the console with every role and the seeded scenario


async def test_viewer_downloads_the_one_page_report(client: TestClient, tmp_path: Path) -> None:
    await login(client, "viewer")
    page = await (await client.get(f"/console/dashboard?{WEEK}")).text()
    assert 'href="/console/dashboard/report.pdf?from=2026-03-02&amp;to=2026-03-08' in page
    assert "Download PDF report" in page

    resp = await client.get(f"/console/dashboard/report.pdf?{WEEK}&location=MIA")
    assert resp.status == 200 and resp.content_type == "application/pdf"
    assert resp.headers["Content-Disposition"] == (
        'attachment; filename="askagency_report_2026-03-02_2026-03-08_MIA.pdf"'
    )
    data = await resp.read()
    assert data.startswith(b"%PDF")
    rendered = render_pdf_page(data)
    (tmp_path / "dashboard-report.png").write_bytes(rendered.png)
    assert rendered.pages == 1
    assert rendered.size == pytest.approx(A4_POINTS, abs=1)
    assert rendered.ink > 0.01


async def test_agents_and_anonymous_get_no_report(client: TestClient) -> None:
    anonymous = await client.get(f"/console/dashboard/report.pdf?{WEEK}", allow_redirects=False)
    assert anonymous.status == 302 and "/console/login" in anonymous.headers["Location"]
    await login(client, "agent")
    assert (await client.get(f"/console/dashboard/report.pdf?{WEEK}")).status == 403


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01", "dates must look like"),
        ("from=2026-03-08&to=2026-03-02", "is after"),
        ("location=not%20a%20code", "is not a location code"),
        ("hours_per_fte=0", "hours_per_fte: Input should be greater than or equal to 0.1"),
    ],
)
async def test_a_bad_filter_is_a_clear_400(client: TestClient, query: str, message: str) -> None:
    await login(client, "editor")
    resp = await client.get(f"/console/dashboard/report.pdf?{query}")
    assert resp.status == 400 and message in await resp.text()
