"""``--suggest-threshold``: min_confidence from data, for ``switchboard eval`` (a hand-made
scored set whose answers are worked out below) and for ``report shadow`` (a seeded
shadow-mode run set), through the real CLI.

The scored set (10 rows; billing/access in scope, 4 out of scope)::

    truth    predicted  confidence        truth  predicted  confidence
    billing  billing    0.95              access access     0.40
    billing  billing    0.85              (oos)  billing    0.70
    access   access     0.80              (oos)  access     0.45
    access   billing    0.60  (wrong)     (oos)  billing    0.30
    billing  billing    0.50              (oos)  access     0.20

Cuts sit midway between neighbouring confidences: 0, 0.25, 0.35, 0.425, 0.475, 0.55, ...

- triage-oos=0.75: 3 of 4 out-of-scope held needs the 0.45 one below the cut: 0.475;
  there 4/6 in scope routed right, 4/10 to triage.
- triage-share=0.3: at most 3 held: the highest such cut is 0.425.
- routed-right=0.9: never (best 5/6, up to 0.35): closest 0.35, the highest cut at 5/6.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app
from connectors.ai.evaluation import Scored
from connectors.ai.thresholds import Target, curve, suggest
from tests.support.stores import Database
from workflows.tables import AssignmentRow, RunRow

SCORED = [
    ("billing", "billing", 0.95),
    ("billing", "billing", 0.85),
    ("access", "access", 0.80),
    ("access", "billing", 0.60),
    ("billing", "billing", 0.50),
    ("access", "access", 0.40),
    (None, "billing", 0.70),
    (None, "access", 0.45),
    (None, "billing", 0.30),
    (None, "access", 0.20),
]

WORKFLOW = {
    "name": "helpdesk",
    "steps": [
        {
            "id": "classify",
            "classify": {
                "min_confidence": 0.3,
                "labels": {
                    "billing": {"examples": ["refund my invoice"]},
                    "access": {"examples": ["reset my password"]},
                },
            },
        }
    ],
}

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def records() -> list[Scored]:
    return [Scored(truth=t, predicted=p, confidence=c) for t, p, c in SCORED]


def words(text: str) -> str:
    """Output with rich's wrapping undone."""
    return " ".join(text.split())


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "helpdesk.yaml").write_text(yaml.safe_dump(WORKFLOW), encoding="utf-8")
    lines = [
        json.dumps({"label": t or "triage", "predicted": p, "confidence": c}) for t, p, c in SCORED
    ]
    (tmp_path / "scores.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SWITCHBOARD_WORKFLOWS", str(workflows))
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def eval_cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["eval", "helpdesk", "--scores", "scores.jsonl", *args])


# --- the pure functions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "threshold", "met"),
    [
        (Target("triage-oos", 0.75), 0.475, True),
        (Target("triage-oos", 1.0), 0.75, True),
        (Target("triage-share", 0.3), 0.425, True),
        (Target("routed-right", 0.8), 0.35, True),
        (Target("routed-right", 0.9), 0.35, False),
        (Target("triage-share", 0.0), 0.0, True),
    ],
    ids=str,
)
def test_suggest_picks_the_known_threshold(target: Target, threshold: float, met: bool) -> None:
    suggestion = suggest(records(), target)
    assert (suggestion.point.threshold, suggestion.met) == (threshold, met)


def test_curve_has_one_point_per_gap_and_ends_with_everything_held() -> None:
    points = curve(records())
    assert [p.threshold for p in points][:5] == [0.0, 0.25, 0.35, 0.425, 0.475]
    assert len(points) == 11
    assert points[-1].triage_share == 1.0 and points[-1].routed_right == 0.0
    assert points[0].triage_share == 0.0 and points[0].routed_right == pytest.approx(5 / 6)


# --- switchboard eval --------------------------------------------------------------------


def test_eval_suggests_threshold_for_target_with_curve_and_png(folder: Path) -> None:
    result = eval_cli("--suggest-threshold", "--target", "triage-oos=0.75", "--plot", "curve.png")
    assert result.exit_code == 0, result.output
    out = words(result.output)
    assert "suggested min_confidence: 0.475 (meets triage-oos=0.75; now 0.3)" in out
    assert "in scope routed right 66.67%, out of scope to triage 75.00%, triage share 40.00%" in out
    # The trade-off table: the grid plus the current and the suggested thresholds.
    assert "threshold trade-off" in out
    assert "0.475 66.67% 75.00% 40.00% suggested" in out
    assert "0.3 83.33% 25.00% 10.00% current" in out
    assert "0.9 16.67% 100.00% 90.00%" in out
    png = (folder / "curve.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and png[12:16] == b"IHDR"


def test_eval_says_when_no_threshold_meets_the_target(folder: Path) -> None:
    result = eval_cli("--suggest-threshold", "--target", "routed-right=90%")
    assert result.exit_code == 0, result.output
    out = words(result.output)
    assert "no threshold meets target routed-right=0.9" in out
    assert "closest: min_confidence 0.35 (in scope routed right 83.33%" in out
    assert "suggested min_confidence" not in out


def test_eval_triage_share_target(folder: Path) -> None:
    result = eval_cli("--suggest-threshold", "--target", "triage-share=0.3")
    assert result.exit_code == 0, result.output
    assert "suggested min_confidence: 0.425 (meets triage-share=0.3" in words(result.output)


def test_eval_without_target_suggests_the_balanced_threshold(folder: Path) -> None:
    result = eval_cli("--suggest-threshold")
    assert result.exit_code == 0, result.output
    # routed right + out of scope held, highest sum: 3/6 + 4/4 at 0.75 (1.5; 0.475: 1.42).
    assert "suggested min_confidence: 0.75 (balanced" in words(result.output)


BAD = [
    (["--target", "triage-oos=0.9"], "--target needs --suggest-threshold"),
    (["--plot", "c.png"], "--plot needs --suggest-threshold"),
    (["--suggest-threshold", "--target", "speed=0.9"], "want NAME=VALUE with NAME one of"),
    (["--suggest-threshold", "--target", "triage-oos=much"], "'much' is not a number"),
    (["--suggest-threshold", "--target", "triage-oos=1.5"], "must be between 0 and 1"),
    (["--suggest-threshold", "--plot", "c.jpg"], "must end in .png"),
    (["--suggest-threshold", "--plot", "no/dir/c.png"], "no such folder"),
    (["--data", "scores.jsonl"], "--data FILE or --scores FILE, not both"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_threshold_options_give_one_line(folder: Path, args: list[str], message: str) -> None:
    result = eval_cli(*args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output
    assert not (folder / "c.png").exists()


BAD_SCORES = [
    ('{"label": "billing", "predicted": "sales", "confidence": 0.5}', "predicted label 'sales'"),
    ('{"label": "billing", "predicted": "billing", "confidence": 2}', "between 0 and 1"),
    ('{"label": "billing", "predicted": "billing", "confidence": "hi"}', "must be a number"),
    ('{"label": "shipping", "predicted": "billing", "confidence": 0.5}', "label 'shipping'"),
    ('{"text": "no label"}', 'want an object with "label"'),
]


@pytest.mark.parametrize(("line", "message"), BAD_SCORES, ids=[m for _, m in BAD_SCORES])
def test_bad_scores_files_give_one_line(folder: Path, line: str, message: str) -> None:
    (folder / "scores.jsonl").write_text(line + "\n", encoding="utf-8")
    result = eval_cli("--suggest-threshold")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "scores.jsonl:1:" in lines[0] and message in lines[0]


# --- switchboard report shadow ------------------------------------------------------------

SHADOW_WORKFLOW = """
name: inquiries
steps:
  - id: kind
    classify:
      min_confidence: 0.5
      labels:
        billing: {examples: ["refund my invoice"]}
        tech: {examples: ["the app crashes"]}
  - id: route
    route:
      label: "{{ steps.kind.label }}"
      shadow: true
      owners: {billing: "#billing", tech: "#it-help"}
      triage: "#triage"
"""

# (what people chose, the bot's best guess, its confidence); the step's bar is 0.5.
# Routed right at the cut: 0: 5/7 (the 0.3 guess is wrong); 0.325: 5/7; 0.4: 4/7.
SHADOW = [
    ("billing", "billing", 0.9),
    ("billing", "billing", 0.8),
    ("tech", "tech", 0.7),
    ("tech", "billing", 0.6),
    ("billing", "billing", 0.45),
    ("tech", "tech", 0.35),
    ("tech", "billing", 0.3),
]


def _shadow_run(n: int, at: datetime, guess: str | None, confidence: float) -> RunRow:
    steps: dict[str, Any] = {}
    if guess is not None:
        unsure = confidence < 0.5
        steps["kind"] = {
            "label": None if unsure else guess,
            "guess": guess,
            "confidence": confidence,
            "triage": unsure,
            "candidates": [{"label": guess, "confidence": confidence}],
        }
        steps["route"] = {"assignment": f"a{n}", "predicted": steps["kind"]["label"]}
    return RunRow(
        id=f"r{n}",
        workflow="inquiries",
        status="waiting",
        request_id=f"req{n}",
        requester="U0REQ",
        current_step="route",
        context={"input": {"text": f"request {n}"}, "steps": steps},
        version=1,
        created_at=at,
        updated_at=at,
    )


def _shadow_assignment(
    n: int, at: datetime, chosen: str | None, predicted: str | None, status: str
) -> AssignmentRow:
    return AssignmentRow(
        id=f"a{n}",
        run_id=f"r{n}",
        step_id="route",
        label=chosen,
        predicted_label=predicted,
        confidence=None,  # the route step has no ``confidence:``: it comes from the run
        owner_kind="channel",
        owner_id="C0TEAM",
        status=status,
        claimed_by="U0CAROL" if status == "shadow-decided" else None,
        claimed_at=at + timedelta(minutes=5) if status == "shadow-decided" else None,
        created_at=at,
    )


async def seed_shadow(database: Database) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    store = database.store()
    try:
        async with store.transaction() as session:
            for n, (chosen, guess, conf) in enumerate(SHADOW):
                at = now - timedelta(hours=n + 1)
                session.add(_shadow_run(n, at, guess, conf))
                predicted = guess if conf >= 0.5 else None
                session.add(_shadow_assignment(n, at, chosen, predicted, "shadow-decided"))
            # Not decided yet: no truth, not counted.
            session.add(_shadow_run(90, now, "tech", 0.99))
            session.add(_shadow_assignment(90, now, "tech", "tech", "shadow"))
            # Decided, but its run was purged: no confidence to learn from.
            session.add(_shadow_run(91, now, None, 0.0))
            session.add(_shadow_assignment(91, now, "billing", None, "shadow-decided"))
    finally:
        await store.dispose()


async def test_shadow_report_suggests_threshold_from_people_decisions(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_shadow(database)
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "inquiries.yaml").write_text(textwrap.dedent(SHADOW_WORKFLOW))
    for name, value in (database.env() | {"SWITCHBOARD_WORKFLOWS": str(workflows)}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    args = ["report", "shadow", "inquiries", "--suggest-threshold"]
    # typer's runner calls asyncio.run: run it off this test's event loop.
    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        [*args, "--target", "routed-right=0.7", "--plot", str(tmp_path / "shadow.png")],
    )
    assert result.exit_code == 0, result.output
    out = words(result.output)
    assert "from 7 requests people decided (7 to a label, 0 to triage)" in out
    assert "1 without a confidence left out" in out
    assert "suggested min_confidence: 0.325 (meets routed-right=0.7; now 0.5)" in out
    assert "in scope routed right 71.43%" in out and "triage share 14.29%" in out
    # At the current 0.5 the unsure-but-right guesses count as held back.
    assert "0.5 42.86% 0.00% 42.86% current" in out
    assert (tmp_path / "shadow.png").read_bytes().startswith(PNG_MAGIC)

    unmeasured = await asyncio.to_thread(
        CliRunner().invoke, app, [*args, "--target", "triage-oos=0.9"]
    )
    assert unmeasured.exit_code == 0, unmeasured.output
    assert "the data has no out-of-scope rows" in words(unmeasured.output)

    bad = await asyncio.to_thread(CliRunner().invoke, app, [*args, "--target", "nonsense"])
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1


def test_saved_scores_give_the_same_suggestion_as_the_run_that_saved_them(folder: Path) -> None:
    rows = [
        ("please refund my invoice, I paid twice", "billing"),
        ("my card was charged two times", "billing"),
        ("I cannot log in, reset my password", "access"),
        ("my account is locked", "access"),
        ("what is the weather on mars", "triage"),
        ("tell me a joke about penguins", "triage"),
    ]
    (folder / "data.jsonl").write_text(
        "".join(json.dumps({"text": t, "label": lb}) + "\n" for t, lb in rows), encoding="utf-8"
    )
    aim = ["--suggest-threshold", "--target", "triage-oos=1.0"]
    first = CliRunner().invoke(
        app, ["eval", "helpdesk", "--data", "data.jsonl", "--save-scores", "saved.jsonl", *aim]
    )
    assert first.exit_code == 0, first.output
    saved = [json.loads(line) for line in (folder / "saved.jsonl").read_text().splitlines()]
    assert [s["label"] for s in saved] == ["billing", "billing", "access", "access", None, None]
    again = CliRunner().invoke(app, ["eval", "helpdesk", "--scores", "saved.jsonl", *aim])
    assert again.exit_code == 0, again.output

    def suggested(output: str) -> str:
        return next(line for line in output.splitlines() if "min_confidence:" in line)

    assert suggested(first.output) == suggested(again.output)
    assert "meets triage-oos=1" in suggested(first.output)
