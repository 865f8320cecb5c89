"""The campaign report's ``call`` step: join ad platform and CRM numbers and check them.

``validate`` takes the two sources' per-campaign rows and returns the joined
campaigns with their KPIs, the totals, every missing or inconsistent number as
an ``issues`` line, a plain-text ``narrative`` for the ``summarize`` step, and
the follow-up tickets (one per issue, plus the client review) for the ``ticket`` step's
``each``. Pure: no I/O, so the workflow's ``http`` and ``ticket`` steps own every call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

AD_FIELDS = ("impressions", "clicks", "spend", "conversions")
CRM_FIELDS = ("leads", "deals", "revenue")


def validate(
    client: str,
    ads: Sequence[Mapping[str, Any]],
    crm: Sequence[Mapping[str, Any]],
    tolerance: float = 0.25,
) -> dict[str, Any]:
    """Conversions and leads further apart than ``tolerance`` (a share) are inconsistent."""
    attribution = {str(row.get("campaign")): row for row in crm}
    seen: set[str] = set()
    campaigns: list[dict[str, Any]] = []
    issues: list[str] = []
    for ad in ads:
        name = str(ad.get("campaign"))
        seen.add(name)
        crm_row = attribution.get(name)
        missing = [f"ads {key}" for key in AD_FIELDS if _number(ad.get(key)) is None]
        if crm_row is None:
            issues.append(f"{name}: no CRM attribution for this campaign")
            crm_row = {}
        else:
            missing += [f"CRM {key}" for key in CRM_FIELDS if _number(crm_row.get(key)) is None]
        if missing:
            issues.append(f"{name}: missing {', '.join(missing)}")
        spend, conversions = _number(ad.get("spend")), _number(ad.get("conversions"))
        clicks, impressions = _number(ad.get("clicks")), _number(ad.get("impressions"))
        leads, revenue = _number(crm_row.get("leads")), _number(crm_row.get("revenue"))
        if conversions and leads is not None and abs(conversions - leads) / conversions > tolerance:
            apart = round(abs(conversions - leads) / conversions * 100)
            issues.append(
                f"{name}: the ad platform counts {conversions:g} conversions but the CRM has "
                f"{leads:g} leads ({apart} % apart)"
            )
        if clicks is not None and impressions is not None and clicks > impressions:
            issues.append(f"{name}: more clicks ({clicks:g}) than impressions ({impressions:g})")
        campaigns.append(
            {
                "campaign": name,
                "spend": spend,
                "conversions": conversions,
                "leads": leads,
                "deals": _number(crm_row.get("deals")),
                "revenue": revenue,
                "ctr": _ratio(clicks, impressions, 100),
                "roas": _ratio(revenue, spend),
            }
        )
    issues += [
        f"{name}: in the CRM but not on the ad platform" for name in attribution if name not in seen
    ]
    totals = {
        key: round(sum(c[key] or 0 for c in campaigns), 2)
        for key in ("spend", "conversions", "leads", "deals", "revenue")
    }
    totals["roas"] = _ratio(totals["revenue"], totals["spend"])
    return {
        "client": client,
        "campaigns": campaigns,
        "totals": totals,
        "issues": issues,
        "ok": not issues,
        "narrative": _narrative(client, campaigns, totals, issues),
        "followups": _followups(client, issues),
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _ratio(top: float | None, bottom: float | None, scale: float = 1.0) -> float | None:
    if top is None or not bottom:
        return None
    return round(top / bottom * scale, 2)


def _narrative(
    client: str, campaigns: list[dict[str, Any]], totals: dict[str, Any], issues: list[str]
) -> str:
    sentences = [
        f"{client.upper()} spent {totals['spend']:,.2f} on {len(campaigns)} campaigns in the "
        f"last 7 days and the CRM attributes {totals['leads']:g} leads and {totals['deals']:g} "
        f"deals worth {totals['revenue']:,.2f} to them."
    ]
    ranked = sorted((c for c in campaigns if c["roas"] is not None), key=lambda c: -c["roas"])
    if ranked:
        best = ranked[0]
        sentences.append(
            f"{best['campaign']} performed best, returning {best['roas']:g} times its spend."
        )
    if len(ranked) > 1:
        worst = ranked[-1]
        sentences.append(
            f"{worst['campaign']} returned the least, {worst['roas']:g} times its spend."
        )
    if issues:
        sentences.append(f"{len(issues)} numbers need checking before they are trusted.")
    else:
        sentences.append("The ad platform and the CRM agree on every campaign.")
    return " ".join(sentences)


def _followups(client: str, issues: list[str]) -> list[dict[str, Any]]:
    def task(summary: str, description: str) -> dict[str, Any]:
        return {
            "summary": summary[:250],
            "description": description,
            "labels": ["campaign-report", client],
        }

    tasks = [task(f"{client.upper()}: check {issue.split(':', 1)[0]}", issue) for issue in issues]
    tasks.append(
        task(
            f"{client.upper()}: walk the client through this week's report",
            "The report is in the client's channel; book a call to go through it.",
        )
    )
    return tasks
