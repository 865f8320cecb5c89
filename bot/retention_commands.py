"""``switchboard purge`` and ``switchboard forget``: retention and a person's right to be forgotten.

Arguments are checked before the database is opened, so bad input changes nothing.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Annotated

import typer

from bot.cli_support import cli_actor, fail, settings
from bot.db_ready import ready_store
from bot.settings import Settings
from workflows import retention

AGE = re.compile(r"^(\d{1,5})([dw])$")


def parse_age(value: str) -> int:
    """``90d`` or ``12w`` as days (at least one)."""
    match = AGE.match(value.strip())
    days = int(match[1]) * (7 if match[2] == "w" else 1) if match else 0
    if days < 1:
        fail(f"--older-than must be days or weeks of at least 1d, like 90d or 12w, not {value!r}")
    return days


def _policy(config: Settings, older_than: str | None) -> retention.RetentionPolicy:
    from workflows.loader import CheckContext, load_folder

    default_days = parse_age(older_than) if older_than is not None else config.retention_days
    loaded = load_folder(config.workflows_dir, CheckContext(templates_dir=config.templates_dir))
    for error in loaded.errors:
        typer.echo(f"skipped (its runs follow the default): {error}", err=True)
    policy = retention.policy_for(loaded.workflows.values(), default_days)
    if not policy.active:
        fail("nothing to purge by: give --older-than 90d or set SWITCHBOARD_RETENTION_DAYS")
    return policy


def _describe(policy: retention.RetentionPolicy) -> str:
    parts = [f"default {policy.default_days} days"] if policy.default_days else ["default: keep"]
    parts += [f"{name}: {days} days" for name, days in sorted(policy.per_workflow.items())]
    return "; ".join(parts)


def purge_command(
    older_than: Annotated[
        str | None,
        typer.Option(
            help="Finished more than this long ago: 90d, 12w [default: SWITCHBOARD_RETENTION_DAYS]"
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would go")] = False,
) -> None:
    """Remove the texts of finished runs past their retention; the audit trail keeps its digests."""
    config = settings()
    policy = _policy(config, older_than)
    now = datetime.now(UTC)

    async def go() -> str:
        store = await ready_store(config)
        try:
            if dry_run:
                planned = await retention.plan(store, policy, now)
                lines = [f"would purge {planned.runs} runs ({_describe(policy)})"]
                lines += [f"  {name}: {count}" for name, count in planned.by_workflow.items()]
                return "\n".join(lines)
            purged = await retention.purge(store, policy, now, actor=cli_actor())
        finally:
            await store.dispose()
        if not purged:
            return f"nothing to purge ({_describe(policy)})"
        return (
            f"purged {purged} runs ({_describe(policy)}); "
            "their audit records keep digests, so `switchboard audit verify` still passes"
        )

    typer.echo(asyncio.run(go()))


def forget_command(
    user: Annotated[str, typer.Option("--user", help="The Slack user id, like U012AB3CD")],
) -> None:
    """Remove a person's request texts and their name from finished runs; print what is kept."""
    if not retention.USER_ID.match(user):
        fail(f"--user must be a Slack user id like U012AB3CD, not {user[:40]!r}")
    config = settings()

    async def go() -> retention.Forgotten:
        store = await ready_store(config)
        try:
            return await retention.forget_user(store, user, datetime.now(UTC), actor=cli_actor())
        finally:
            await store.dispose()

    done = asyncio.run(go())
    typer.echo(
        f"forgot {user}: {done.requests} request texts, {len(done.runs)} runs erased, "
        f"{done.mentions} other runs no longer name them, {done.reasons} decision reasons, "
        f"{done.examples} labelled examples"
    )
    typer.echo(
        f"kept: {done.audit_records} audit records by them or about their runs: the hash chain "
        "covers each record (changing one reads as tampering); they hold digests, not texts"
    )
    if done.runs:
        typer.echo(
            f"kept: run ids {', '.join(done.runs)}: they tie those audit records to their runs "
            "(ids, statuses and times only)"
        )
    if done.active:
        typer.echo(
            f"kept: {len(done.active)} runs still active ({', '.join(done.active)}): their "
            "contexts are in use; cancel them or forget again after they finish"
        )
