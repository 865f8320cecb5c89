"""The bundle itself: it checks clean, starts without its systems, renders within Slack's limits."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.connections import build_registry, read_connections
from bot.render import Renderer
from bot.settings import BUNDLED_TEMPLATES, BUNDLED_WORKFLOWS, ConfigurationError
from sandbox.demo import demo_workspace
from sandbox.standins import USER_IDS, Standins, examples_seed, with_examples
from workflows.examples.campaigns import validate
from workflows.loader import CheckContext, load_folder

EXAMPLES = {"hello", "invoice", "campaign-report", "inquiries", "it-access", "compliance-scan"}


def test_switchboard_check_passes_on_the_bundled_folder() -> None:
    context = CheckContext(
        templates_dir=BUNDLED_TEMPLATES,
        connections=frozenset(read_connections(BUNDLED_WORKFLOWS)),
    )
    result = load_folder(BUNDLED_WORKFLOWS, context)
    assert result.errors == []
    assert set(result.workflows) == EXAMPLES


async def test_without_the_stand_ins_the_examples_are_left_out_and_hello_still_loads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = build_registry(BUNDLED_WORKFLOWS, {"PATH": "/usr/bin"})
    assert registry.names == []
    assert "connection erp left out: ERP_URL, ERP_TOKEN not set" in caplog.text
    context = CheckContext(connections=frozenset(registry.names))
    assert set(load_folder(BUNDLED_WORKFLOWS, context).workflows) == {"hello"}


async def test_with_the_stand_ins_every_connection_is_built(tmp_path: Path) -> None:
    standins = Standins(tmp_path / "standins.db", "http://127.0.0.1:9/standins")
    registry = build_registry(BUNDLED_WORKFLOWS, standins.env)
    try:
        assert set(registry.names) == set(read_connections(BUNDLED_WORKFLOWS))
    finally:
        await registry.aclose()


def test_optional_relaxes_only_missing_variables_and_only_where_it_is_said(tmp_path: Path) -> None:
    def folder(body: str) -> Path:
        (tmp_path / "connections.yaml").write_text(textwrap.dedent(body))
        return tmp_path

    malformed = "connections:\n  erp: {type: http, token_env: T, optional: true}\n"
    with pytest.raises(ConfigurationError, match="base_url"):
        build_registry(folder(malformed), {"X": "1"})
    required = "connections:\n  erp: {type: http, base_url_env: ERP_URL}\n"
    with pytest.raises(ConfigurationError, match="ERP_URL"):
        build_registry(folder(required), {"X": "1"})


def test_templates_render_valid_block_kit_within_limits_for_large_inputs() -> None:
    renderer = Renderer(BUNDLED_TEMPLATES)
    run = {"id": "r1", "workflow": "x"}
    long = "x" * 5000
    exceptions = [
        {
            "id": f"TX-{n}",
            "booked_on": "2024-06-01",
            "vendor": long,
            "amount": 12345.5,
            "currency": "EUR",
            "created_by": "a",
            "approved_by": "a",
            "rule": "self-approved",
        }
        for n in range(80)
    ]
    report = renderer.render(
        "compliance_report",
        {
            "run": run,
            "data": {
                "period": "last 14 days",
                "rules": long,
                "exceptions": exceptions,
                "outcome": "approved",
                "reviewed_by": USER_IDS["frank"],
                "reason": long,
                "archive": "AUD-1",
            },
        },
    )
    assert len(report.blocks) <= 50 and "50 more" in str(report.blocks[-1])
    checks = validate("acme", [{"campaign": f"c{n}", "spend": 1.0} for n in range(40)], [])
    campaign = renderer.render(
        "campaign_report",
        {
            "run": run,
            "data": {
                "client": "acme",
                "period": "last 7 days",
                "summary": long,
                "totals": checks["totals"],
                "campaigns": checks["campaigns"],
                "approved_by": USER_IDS["erin"],
            },
        },
    )
    assert len(campaign.blocks) <= 50
    granted = {"system": long, "grant": "GR-1", "name": long, "approved_by": "U1", "reason": long}
    for template in ("access_granted", "invoice_booked"):
        data = granted | {"email": long, "vendor": long, "invoice": long, "amount": "1.00 EUR"}
        data |= {"po": "PO-1", "entry": 1, "balance": "1.00 EUR", "difference_pct": 1.0}
        assert renderer.render(template, {"run": run, "data": data}).blocks


def test_the_campaign_checks_flag_missing_and_inconsistent_numbers() -> None:
    ads = [
        {"campaign": "a", "impressions": 100, "clicks": 10, "spend": 50.0, "conversions": 10},
        {"campaign": "b", "impressions": 100, "clicks": 10, "spend": None, "conversions": 10},
        {"campaign": "c", "impressions": 10, "clicks": 20, "spend": 5.0, "conversions": 100},
    ]
    crm = [
        {"campaign": "a", "leads": 9, "deals": 1, "revenue": 100.0},
        {"campaign": "c", "leads": 50, "deals": 1, "revenue": 10.0},
        {"campaign": "d", "leads": 1, "deals": 0, "revenue": 0.0},
    ]
    result = validate("acme", ads, crm)
    assert result["issues"] == [
        "b: no CRM attribution for this campaign",
        "b: missing ads spend",
        "c: the ad platform counts 100 conversions but the CRM has 50 leads (50 % apart)",
        "c: more clicks (20) than impressions (10)",
        "d: in the CRM but not on the ad platform",
    ]
    assert result["totals"]["roas"] == round(110 / 55, 2) and not result["ok"]
    assert len(result["followups"]) == len(result["issues"]) + 1
    clean = validate("acme", ads[:1], crm[:1])
    assert clean["ok"] and "agree on every campaign" in clean["narrative"]


def test_the_demo_workspace_gains_the_examples_people_and_keeps_its_own() -> None:
    seed = with_examples(demo_workspace())
    users = {u.name: u for u in seed.users}
    assert users["alice"].id == USER_IDS["alice"] and users["alice"].real_name == "Alice Archer"
    assert {"erin", "frank"} <= set(users)
    channels = {c.name: c for c in seed.channels}
    assert {"requests", "ap-inbox", "support-inbox", "client-acme", "compliance"} <= set(channels)
    assert "alice" not in channels["triage"].members
    groups = {g.handle: g.users for g in seed.usergroups}
    assert groups["finance-leads"] == ["dana"] and groups["strategists"] == ["erin"]
    assert {g.handle for g in examples_seed().usergroups} <= set(groups)
