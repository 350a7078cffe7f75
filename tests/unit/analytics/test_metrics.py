"""Metric helpers, filter validation, and the dashboard page, JSON API and CSV exports over
real HTTP (aiohttp test server) on the seeded scenario."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
import stat
from collections.abc import AsyncIterator
from datetime import date

import pytest
from aiohttp.test_utils import TestClient, TestServer

from analytics.metrics import (
    FilterError,
    MetricFilter,
    fte_equivalent,
    percentile,
    rate,
    staff_hours_saved,
)
from analytics.pseudonyms import PSEUDONYM_KEY_ENV, PSEUDONYM_SECRET_NAME
from askagency.config import Settings
from askagency.db import session_scope
from askagency.staff import Role
from console.app import create_app
from console.auth import create_user
from tests.console_helpers import PASSWORD, login
from tests.unit.analytics.test_scenario import seed

RANGE = "from=2026-03-02&to=2026-03-03"


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10, 20, 30, 40, 50], 90) == pytest.approx(46.0)
    assert percentile([3, 1, 2], 0) == 1 and percentile([3, 1, 2], 100) == 3


def test_rates_and_mission_value() -> None:
    assert rate(1, 0) is None and rate(1, 4) == 0.25
    assert staff_hours_saved(30, 6) == 3.0
    assert fte_equivalent(37.5, 37.5, 7) == 1.0
    assert fte_equivalent(75, 37.5, 14) == 1.0


def test_filter_parsing_defaults_and_errors() -> None:
    flt = MetricFilter.parse(None, None, today=date(2026, 3, 31))
    assert (flt.start, flt.end, flt.days) == (date(2026, 3, 2), date(2026, 3, 31), 30)
    flt = MetricFilter.parse("2026-03-01", "2026-03-01", " rest ", "EN")
    assert (flt.channel, flt.language, flt.days) == ("rest", "en", 1)
    with pytest.raises(FilterError, match="2026-01-31"):
        MetricFilter.parse("yesterday", None)
    with pytest.raises(FilterError, match="after"):
        MetricFilter.parse("2026-03-05", "2026-03-01")
    with pytest.raises(FilterError, match="at most"):
        MetricFilter.parse("2020-01-01", "2026-01-01")


@pytest.fixture
async def client(tmp_settings: Settings, db_url: str) -> AsyncIterator[TestClient]:
    with session_scope() as session:
        for role in Role:
            create_user(session, role.value, PASSWORD, role)
        seed(session)
    async with TestClient(TestServer(create_app(tmp_settings))) as test_client:
        yield test_client


def tile_values(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-metric="([a-z0-9_]+)" data-value="([^"]*)"', html))


async def test_dashboard_page_for_viewer_shows_every_tile(client: TestClient) -> None:
    await login(client, "viewer")
    resp = await client.get(f"/console/dashboard?{RANGE}")
    assert resp.status == 200
    html = await resp.text()
    tiles = tile_values(html)
    assert tiles["conversations"] == "6"
    assert float(tiles["containment_rate"]) == pytest.approx(4 / 6)
    assert float(tiles["bot_resolution_rate"]) == pytest.approx(2 / 6)
    assert float(tiles["handoff_rate"]) == pytest.approx(2 / 6)
    assert float(tiles["bot_response_p50"]) == 32.5
    assert float(tiles["bot_response_p90"]) == 78.0
    assert float(tiles["human_first_response_p50"]) == 210.0
    assert float(tiles["csat"]) == 0.5
    assert float(tiles["staff_hours_saved"]) == pytest.approx(0.2)
    assert float(tiles["fte_equivalent"]) == pytest.approx(0.0187)
    assert "3 min 30 s" in html and "32.5 ms" in html and "66.7%" in html
    assert "Assumes each resolved conversation saves 6 minutes" in html
    assert "Counts only conversations the bot resolved" in html
    assert "2 resolved by the bot x 6 min" in html
    for name in ("volume_by_channel", "response_times", "resolution_mix", "handoffs_by_reason"):
        assert f'id="chart-{name}"' in html and f'data-table="{name}"' in html
    assert 'data-table="hour_of_day"' in html and 'class="heat-5">3<' in html
    assert "<script>" not in html  # CSP: scripts only from files
    assert 'src="/static/vendor/chart.umd.min.js"' in html


async def test_roles(client: TestClient) -> None:
    anonymous = await client.get("/console/dashboard", allow_redirects=False)
    assert anonymous.status == 302 and "/console/login" in anonymous.headers["Location"]
    assert (await client.get("/api/metrics")).status == 401
    await login(client, "agent")
    assert (await client.get("/console/dashboard")).status == 403
    assert (await client.get("/api/metrics")).status == 403
    assert (await client.get("/console/dashboard/export/headline.csv")).status == 403
    for role in ("editor", "admin"):
        await login(client, role)
        assert (await client.get(f"/console/dashboard?{RANGE}")).status == 200


async def test_json_api_matches_the_definitions(client: TestClient) -> None:
    await login(client, "viewer")
    resp = await client.get(f"/api/metrics?{RANGE}&channel=rest")
    assert resp.status == 200
    body = await resp.json()
    assert body["channel"] == "rest" and body["summary"]["conversations"] == 5
    resp = await client.get(f"/api/metrics?{RANGE}&minutes_per_contact=12&hours_per_fte=40")
    mission = (await resp.json())["summary"]["mission"]
    assert mission["staff_hours_saved"] == pytest.approx(0.4)
    assert "12 minutes" in mission["assumption"] and "40 hours a week" in mission["assumption"]
    assert mission["cost_saved"] is None  # no cost per contact configured: no money figure
    resp = await client.get(f"/api/metrics?{RANGE}&cost_per_contact=7.5")
    mission = (await resp.json())["summary"]["mission"]
    assert (mission["resolved_conversations"], mission["cost_saved"]) == (2, 15.0)
    assert mission["currency"] == "USD" and "costs 7.50 USD" in mission["assumption"]
    conversations = await (await client.get(f"/api/metrics/conversations?{RANGE}")).json()
    assert conversations["total"] == 6 and len(conversations["conversations"]) == 6
    text = str(conversations)
    assert "+15551234567" not in text and "ana@example.com" not in text
    paged = await (await client.get(f"/api/metrics/conversations?{RANGE}&limit=2&offset=5")).json()
    assert [len(paged["conversations"]), paged["total"]] == [1, 6]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01", "dates must look like"),
        ("from=2026-03-05&to=2026-03-01", "is after"),
        ("minutes_per_contact=abc", "minutes_per_contact: Input should be a valid number"),
        ("hours_per_fte=0", "hours_per_fte: Input should be greater than or equal to 0.1"),
        ("cost_per_contact=-1", "cost_per_contact: Input should be greater than or equal to 0"),
        ("limit=-1", "limit: Input should be greater than or equal to 0"),
    ],
)
async def test_bad_filters_get_clear_errors(client: TestClient, query: str, message: str) -> None:
    await login(client, "viewer")
    path = "/api/metrics/conversations" if "limit" in query else "/api/metrics"
    resp = await client.get(f"{path}?{query}")
    assert resp.status == 400
    assert message in (await resp.json())["error"]
    page = await client.get(f"/console/dashboard?{query}")
    if "limit" not in query:
        assert page.status == 400 and message in await page.text()


async def test_csv_exports(client: TestClient) -> None:
    await login(client, "viewer")
    resp = await client.get(f"/console/dashboard/export/resolution_mix.csv?{RANGE}")
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert (
        "askagency_resolution_mix_2026-03-02_2026-03-03.csv"
        in (resp.headers["Content-Disposition"])
    )
    assert (await resp.text()).splitlines() == [
        "day,bot_resolved,agent_resolved,unresolved",
        "2026-03-02,1,1,1",
        "2026-03-03,1,0,2",
    ]
    resp = await client.get(f"/console/dashboard/export/conversations.csv?{RANGE}")
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert len(rows) == 6
    assert all(r["conversation"].startswith("c_") for r in rows)
    spanish = next(r for r in rows if r["language"] == "es")
    assert spanish["first_question"] == (
        "mi correo es [EMAIL], ¿puedo llevar un dron en el aeropuerto de Miami?"
    )
    assert (spanish["resolution"], spanish["human_first_response_s"]) == ("agent", "120.0")
    assert (await client.get("/console/dashboard/export/nope.csv")).status == 404


async def test_export_pseudonyms_cannot_be_recomputed_from_a_phone_number(
    client: TestClient, tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding L8: the pseudonym was sha256(sender id)[:16], so a viewer could hash every
    phone number of an area code and find the SMS/WhatsApp citizen behind a row. It is now an
    HMAC under this installation's secret key (0600 in the data folder), stable across exports."""
    monkeypatch.delenv(PSEUDONYM_KEY_ENV, raising=False)
    await login(client, "viewer")

    async def spanish_row() -> dict[str, str]:
        resp = await client.get(f"/console/dashboard/export/conversations.csv?{RANGE}")
        rows = list(csv.DictReader(io.StringIO(await resp.text())))
        return next(r for r in rows if r["language"] == "es")

    row = await spanish_row()
    sender = "+15551234567"  # the scenario's SMS-style citizen
    pseudonym_part = row["conversation"].split("@")[0]
    # The review's brute-force check: the unkeyed hash of the number is not what is exported.
    assert pseudonym_part != "c_" + hashlib.sha256(sender.encode()).hexdigest()[:16]
    key_file = tmp_settings.data_dir / "secrets" / PSEUDONYM_SECRET_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip().encode()
    expected = hmac.new(key, sender.encode(), hashlib.sha256).hexdigest()[:16]
    assert pseudonym_part == "c_" + expected
    assert (await spanish_row())["conversation"] == row["conversation"]  # stable
    api = await (await client.get(f"/api/metrics/conversations?{RANGE}")).json()
    assert row["conversation"] in {c["conversation"] for c in api["conversations"]}
    # Replicas without a shared data folder configure one key for all of them.
    monkeypatch.setenv(PSEUDONYM_KEY_ENV, "shared-key-of-all-replicas")
    configured = (await spanish_row())["conversation"].split("@")[0]
    assert (
        configured
        == "c_"
        + hmac.new(b"shared-key-of-all-replicas", sender.encode(), hashlib.sha256).hexdigest()[:16]
    )


async def test_openapi_documents_the_metrics_api(client: TestClient) -> None:
    await login(client, "viewer")
    spec = await (await client.get("/api/openapi.json")).json()
    assert "/api/metrics" in spec["paths"] and "/api/metrics/conversations" in spec["paths"]
    params = {p["name"] for p in spec["paths"]["/api/metrics"]["get"]["parameters"]}
    assert {"from", "to", "channel", "language"} <= params
    assert "Dashboard" in spec["components"]["schemas"]
