"""A classify step with ``learn: true`` learns from people's triage picks, through the running bot:
the next similar request goes where people sent the first; without it, nothing changes; and
``switchboard examples remove`` undoes a correction."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli import app
from tests.support.harness import Harness, running_bot
from tests.support.routing import ROUTING, SEED
from tests.support.stores import Database
from workflows.tables import AuditRow, RunRow

FIRST = "the parking permit for the office garage has expired"
SIMILAR = "my office garage parking permit expired, can I get a new one"
AGAIN = "office garage parking permit has expired again, I need a new one"
"""Neither billing nor tech by the written examples: unsure (triage) before anyone teaches it."""


def write(folder: Path, learn: bool) -> Path:
    text = ROUTING.format(min_confidence=0.5, shadow="false", first_response="1h")
    text = text.replace("min_confidence: 0.5\n", f"min_confidence: 0.5\n      learn: {learn}\n")
    (folder / "inquiries.yaml").write_text(text.replace(": True\n", ": true\n"))
    return folder


async def card_with(harness: Harness, channel: str, words: str) -> dict[str, Any]:
    return await harness.slack.wait_for(
        lambda: next((m for m in harness.slack.messages(channel) if words in m["text"]), None),
        timeout=30,
        message=f"no card saying {words!r} in #{channel}",
    )


async def pick(harness: Harness, card: dict[str, Any], label: str) -> None:
    button = next(
        e
        for b in card["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["value"].endswith(f"|{label}")
    )
    await harness.slack.click(
        "dave", card["ts"], button["action_id"], value=button["value"], channel="triage"
    )


async def where_it_went(harness: Harness, text: str) -> str:
    """The channel the request's card landed in: #it-help (tech), #billing or #triage."""
    await harness.slack.user_posts("alice", "requests", text)
    return await harness.slack.wait_for(
        lambda: next(
            (
                channel
                for channel in ("it-help", "billing", "triage")
                if any(text in m["text"] for m in harness.slack.messages(channel))
            ),
            None,
        ),
        timeout=30,
        message=f"no card for {text!r}",
    )


async def classify_provenance(harness: Harness) -> list[dict[str, Any]]:
    """Each run's classify output provenance and audit detail, oldest first."""
    async with harness.runtime.store.read() as session:
        runs = (await session.scalars(select(RunRow).order_by(RunRow.created_at))).all()
        audits = (
            await session.scalars(
                select(AuditRow).where(AuditRow.step_id == "kind").order_by(AuditRow.seq)
            )
        ).all()
    details = {a.run_id: a.detail for a in audits if "model_version" in (a.detail or {})}
    return [
        run.context["steps"]["kind"]["provenance"] | {"audit": details.get(run.id, {})}
        for run in runs
    ]


async def teach_tech(harness: Harness) -> None:
    await harness.slack.user_posts("alice", "requests", FIRST)
    await pick(harness, await card_with(harness, "triage", FIRST), "tech")
    await card_with(harness, "it-help", FIRST)


@pytest.mark.parametrize("learn", [True, False])
async def test_a_triage_pick_changes_the_next_similar_prediction_only_when_learning(
    database: Database, tmp_path: Path, learn: bool
) -> None:
    async with running_bot(database, workflows_dir=write(tmp_path, learn), seed=SEED) as harness:
        await teach_tech(harness)
        went = await where_it_went(harness, SIMILAR)
        assert went == ("it-help" if learn else "triage")
        first, second = await classify_provenance(harness)
    assert first["model_version"], "every local prediction names the model it was made with"
    if learn:
        assert second["model_version"] != first["model_version"]
        assert (first["audit"]["learned"], second["audit"]["learned"]) == (0, 1)
        assert second["audit"]["model_version"] == second["model_version"]
    else:
        assert second["model_version"] == first["model_version"]
        assert "learned" not in second["audit"]


async def test_removing_a_learned_example_undoes_it(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in database.env().items():
        monkeypatch.setenv(name, value)
    async with running_bot(database, workflows_dir=write(tmp_path, True), seed=SEED) as harness:
        await teach_tech(harness)
        assert await where_it_went(harness, SIMILAR) == "it-help"
        listed = await asyncio.to_thread(CliRunner().invoke, app, ["examples", "export"])
        assert listed.exit_code == 0, listed.output
        (example,) = [json.loads(line) for line in listed.output.splitlines()]
        assert (example["text"], example["label"], example["source"]) == (FIRST, "tech", "triage")
        removed = await asyncio.to_thread(
            CliRunner().invoke, app, ["examples", "remove", str(example["id"])]
        )
        assert removed.exit_code == 0, removed.output
        assert await where_it_went(harness, AGAIN) == "triage"
        _, taught, again = await classify_provenance(harness)
        assert (taught["audit"]["learned"], again["audit"]["learned"]) == (1, 0)
        async with harness.runtime.store.read() as session:
            actions = (await session.scalars(select(AuditRow.action))).all()
        assert "example.removed" in actions


async def test_with_learn_after_approval_a_correction_counts_once_approved(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in database.env().items():
        monkeypatch.setenv(name, value)
    folder = write(tmp_path, True)
    path = folder / "inquiries.yaml"
    path.write_text(
        path.read_text().replace("learn: true\n", "learn: true\n      learn_after_approval: true\n")
    )
    async with running_bot(database, workflows_dir=folder, seed=SEED) as harness:
        await teach_tech(harness)
        assert await where_it_went(harness, SIMILAR) == "triage", "not approved yet"
        listed = await asyncio.to_thread(CliRunner().invoke, app, ["examples", "list"])
        assert "tech (AI: unsure) [not approved]" in listed.output and FIRST in listed.output
        example_id = listed.output.split("\t", 1)[0]
        approved = await asyncio.to_thread(
            CliRunner().invoke, app, ["examples", "approve", example_id]
        )
        assert approved.exit_code == 0 and f"approved 1: {example_id}" in approved.output
        assert await where_it_went(harness, AGAIN) == "it-help"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["examples", "remove", "seven"], 2, "example ids are whole numbers, not 'seven'"),
        (["examples", "remove", "999"], 1, "no example with id 999"),
        (["examples", "approve", "999"], 1, "no example with id 999"),
    ],
)
async def test_bad_example_ids_give_one_line(
    database: Database, monkeypatch: pytest.MonkeyPatch, args: list[str], code: int, message: str
) -> None:
    for name, value in database.env().items():
        monkeypatch.setenv(name, value)
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == code
    assert result.output.strip().splitlines() == [message]


async def test_shadow_mode_decisions_teach_a_learning_step(
    database: Database, tmp_path: Path
) -> None:
    folder = write(tmp_path, True)
    path = folder / "inquiries.yaml"
    path.write_text(path.read_text().replace("shadow: false", "shadow: true"))
    async with running_bot(database, workflows_dir=folder, seed=SEED) as harness:
        slack = harness.slack

        async def labels_of(n: int, *, waiting: bool) -> list[str | None] | None:
            """Each run's classify label once ``n`` runs are classified (and, with
            ``waiting``, their route steps are waiting for a decision)."""
            async with harness.runtime.store.read() as session:
                runs = (await session.scalars(select(RunRow).order_by(RunRow.created_at))).all()
            kinds = [r.context.get("steps", {}).get("kind") for r in runs]
            if len(runs) < n or None in kinds:
                return None
            if waiting and any(r.status != "waiting" for r in runs):
                return None
            return [kind["label"] for kind in kinds]

        await slack.user_posts("alice", "requests", FIRST)
        unsure = await slack.wait_for(lambda: labels_of(1, waiting=True), timeout=30)
        assert unsure == [None]
        async with harness.runtime.store.read() as session:
            run_id = (await session.scalars(select(RunRow.id))).one()
        answer = await slack.slash_command("carol", "requests", f"route {run_id} tech")
        assert "Routed to tech" in answer.body
        await slack.user_posts("alice", "requests", SIMILAR)
        taught = await slack.wait_for(lambda: labels_of(2, waiting=False), timeout=30)
        assert taught == [None, "tech"]


def test_check_warns_when_nothing_routes_on_a_learning_step(tmp_path: Path) -> None:
    """``learn: true`` learns from route steps that route on the label; with none, says so."""
    (tmp_path / "lonely.yaml").write_text(
        textwrap.dedent(
            """
            name: lonely
            triggers: [{command: lonely}]
            steps:
              - id: kind
                classify:
                  learn: true
                  labels:
                    billing: {examples: ["refund my invoice", "charged twice"]}
                    tech: {examples: ["the app crashes", "password reset fails"]}
              - id: note
                set: {label: "{{ steps.kind.label }}"}
            """
        )
    )
    result = CliRunner().invoke(app, ["check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "steps.kind.classify.learn: warning: learn: true, but no route step" in result.output
    assert result.output.splitlines()[-1] == "1 workflow ok, 0 errors, 1 warning"
