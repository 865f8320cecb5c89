"""Runs with known timings, written straight to the store, for stats and digest tests.

Relative to ``now`` (all within the past week unless said otherwise):

======  ========  =========  ==========  ====================================
run     workflow  status     cycle       people
======  ========  =========  ==========  ====================================
p1      purchase  succeeded  1h          gate 30m, decided by A
p2      purchase  succeeded  2h          gate 60m, decided by B
p3      purchase  succeeded  3h          gate 120m, decided by A
p4      purchase  failed     30m
p5      purchase  waiting    (open)      gate open 5h, waiting on A and B
a1      access    succeeded  10m         assignment to triage
a2      access    succeeded  50m         assignment to a channel
old     purchase  succeeded  1h          ten days ago: outside the week
======  ========  =========  ==========  ====================================

All finished cycles (minutes): 10 30 50 60 120 180 -> p50 55m, p90 2h 30m.
Purchase only: 30 60 120 180 -> p50 1h 30m, p90 2h 42m.
People 210m vs machines 240m; exception rate 1/6; triage share 1/2 (a shadow
assignment on p1 does not count); approver A median 1h 15m (30m, 120m), B 1h.
Jobs: purchase/erp_check 3 x 20s (the bottleneck), purchase/notify 2 x 1s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from workflows.store import Store
from workflows.tables import AssignmentRow, DecisionRow, GateRow, JobRow, RunRow

M = timedelta(minutes=1)


@dataclass(frozen=True)
class Seeded:
    now: datetime
    approver_a: str
    approver_b: str


def _run(
    run_id: str, workflow: str, status: str, created: datetime, cycle: timedelta | None
) -> RunRow:
    return RunRow(
        id=run_id,
        workflow=workflow,
        status=status,
        request_id=run_id,
        requester="U0REQUESTER",
        channel_id=None,
        root_ts=None,
        current_step="x",
        context={"input": {}, "steps": {}},
        error="boom" if status == "failed" else None,
        version=1,
        created_at=created,
        updated_at=created,
        finished_at=created + cycle if cycle is not None else None,
    )


def _gate(
    gate_id: str,
    run_id: str,
    opened: datetime,
    decided: datetime | None,
    who: str | None,
    approvers: list[str],
) -> GateRow:
    return GateRow(
        id=gate_id,
        run_id=run_id,
        step_id="approve",
        status="approved" if decided else "open",
        approvers=approvers,
        min_approvals=1,
        escalation_level=0,
        requester="U0REQUESTER",
        decided_by=who,
        decided_at=decided,
        created_at=opened,
    )


def _job(run_id: str, step_id: str, started: datetime, seconds: float) -> JobRow:
    return JobRow(
        run_id=run_id,
        step_id=step_id,
        kind="step",
        payload={},
        status="done",
        due_at=started,
        attempt=1,
        failures=0,
        created_at=started,
        started_at=started,
        finished_at=started + timedelta(seconds=seconds),
    )


def _assignment(
    assignment_id: str, run_id: str, owner_kind: str, status: str, at: datetime
) -> AssignmentRow:
    return AssignmentRow(
        id=assignment_id,
        run_id=run_id,
        step_id="route",
        owner_kind=owner_kind,
        owner_id="C0TRIAGE" if owner_kind == "triage" else "C0TEAM",
        status=status,
        created_at=at,
    )


async def seed_week(store: Store, now: datetime, approver_a: str, approver_b: str) -> Seeded:
    day = timedelta(days=1)
    t1, t2, t3 = now - 3 * day, now - 2 * day, now - 1 * day
    rows: list[Any] = [
        _run("p1", "purchase", "succeeded", t1, 60 * M),
        _run("p2", "purchase", "succeeded", t1 + M, 120 * M),
        _run("p3", "purchase", "succeeded", t2, 180 * M),
        _run("p4", "purchase", "failed", t2 + M, 30 * M),
        _run("p5", "purchase", "waiting", now - 6 * 60 * M, None),
        _run("a1", "access", "succeeded", t3, 10 * M),
        _run("a2", "access", "succeeded", t3 + M, 50 * M),
        _run("old", "purchase", "succeeded", now - 10 * day, 60 * M),
        _gate("g1", "p1", t1 + 10 * M, t1 + 40 * M, approver_a, [approver_a, approver_b]),
        _gate("g2", "p2", t1 + M + 10 * M, t1 + M + 70 * M, approver_b, [approver_a, approver_b]),
        _gate("g3", "p3", t2 + 10 * M, t2 + 130 * M, approver_a, [approver_a]),
        _gate("g5", "p5", now - 5 * 60 * M, None, None, [approver_a, approver_b]),
        _gate("gold", "old", now - 10 * day, now - 10 * day + 5 * M, approver_b, [approver_b]),
        DecisionRow(gate_id="g1", user_id=approver_a, decision="approved", created_at=t1 + 40 * M),
        DecisionRow(
            gate_id="g2", user_id=approver_b, decision="approved", created_at=t1 + M + 70 * M
        ),
        DecisionRow(gate_id="g3", user_id=approver_a, decision="approved", created_at=t2 + 130 * M),
        DecisionRow(
            gate_id="gold",
            user_id=approver_b,
            decision="approved",
            created_at=now - 10 * day + 5 * M,
        ),
        _assignment("s1", "a1", "triage", "closed", t3),
        _assignment("s2", "a2", "channel", "closed", t3 + M),
        _assignment("s3", "p1", "triage", "shadow", t1),
        _job("p1", "erp_check", t1 + M, 20),
        _job("p2", "erp_check", t1 + 2 * M, 20),
        _job("p3", "erp_check", t2 + M, 20),
        _job("p1", "notify", t1 + 50 * M, 1),
        _job("p2", "notify", t1 + 80 * M, 1),
    ]
    async with store.transaction() as session:
        session.add_all(rows)
    return Seeded(now, approver_a, approver_b)
