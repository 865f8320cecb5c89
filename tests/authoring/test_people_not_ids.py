"""People, not ids: what a person reads names users and channels, never a raw Slack id.

The bundled workflows' main scenarios (hello, an invoice approved by finance, an inquiry
routed and its SLA breached, an access request approved by DM and e-mailed, a compliance
report escalated and e-mailed to the auditors) run through
the Slack emulator and the stand-ins. Then every text the emulator recorded (channel
messages, thread replies, DMs, ephemerals, App Home and modal views) and every e-mail the
SMTP sink received is scanned: a ``U…``/``C…``/``D…``/``S…``/``W…``/``G…`` id is allowed
only inside mention syntax (``<@U…>``, ``<#C…>``, ``<!subteam^S…>``), which Slack renders
as a name; a ``plain_text`` field (header, button label, modal title), where Slack renders
no mention, holds neither a raw id nor mention syntax.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.settings import BUNDLED_WORKFLOWS
from sandbox.slack import SlackEmulator
from sandbox.standins import examples_seed, run_standins
from tests.examples.support import Examples
from tests.support.harness import running_bot
from tests.support.stores import Database

# A Slack id (upper-case letters and digits, at least one digit) not right after the
# characters that open mention syntax; run ids and digests are lower-case hex.
# An id in a request path ("GET iam/directory/U…") quotes the call, it does not name anyone.
RAW_ID = re.compile(r"(?<![<@#!^|/\w])[UCDSWG](?=[A-Z0-9]*\d)[A-Z0-9]{8,}\b")
MARKUP = re.compile(r"<[@#!]")
# A DM is no channel anyone can open from a link: ``<#D…>`` renders as an id or nothing.
DM_LINK = re.compile(r"(<|&lt;)#D[A-Z0-9]+")
# An escaped mention shows literally: "&lt;#C…&gt;" reads as "<#C…>", not as a name.
ESCAPED = re.compile(r"&lt;[@#!][A-Z]")


@pytest.fixture
async def examples(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Examples]:
    """The bundled folder with its stand-ins, as tests/examples runs it."""
    async with run_standins(tmp_path / "standins") as standins:
        for name, value in standins.env.items():
            monkeypatch.setenv(name, value)
        async with running_bot(
            database, workflows_dir=BUNDLED_WORKFLOWS, seed=examples_seed()
        ) as harness:
            yield Examples(harness, standins)


def raw_ids(text: str) -> list[str]:
    return RAW_ID.findall(text)


def test_the_scanner_tells_raw_ids_from_mentions() -> None:
    assert raw_ids("approved by U0FRANK001") == ["U0FRANK001"]
    assert raw_ids("waiting in D0SB000003 and C0SB000001, group S0SB000002") == [
        "D0SB000003",
        "C0SB000001",
        "S0SB000002",
    ]
    assert raw_ids("by <@U0FRANK001> in <#C0SB000001|general> <!subteam^S0SB000002>") == []
    assert raw_ids("run 3f9a0c1d2e4b SUCCEEDED INV-1042 PO-7781 C-1001 GR-1") == []
    assert raw_ids("GET iam/directory/U0ALICE001 → 200") == []
    assert DM_LINK.search("waiting for approval &lt;#D0SB000003&gt;")
    assert ESCAPED.search("waiting in &lt;#C0SB000001&gt;")


def _texts(value: Any, where: str, plain: bool = False) -> Iterator[tuple[str, str, bool]]:
    """Every string a person reads in a Block Kit value: (where, text, is plain_text)."""
    if isinstance(value, dict):
        is_plain = value.get("type") == "plain_text"
        for key, item in value.items():
            if key in ("text", "title", "placeholder", "alt_text", "label", "hint") and isinstance(
                item, str
            ):
                yield f"{where}.{key}", item, is_plain
            elif isinstance(item, dict | list):
                yield from _texts(item, f"{where}.{key}", is_plain)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _texts(item, f"{where}[{index}]", plain)


def _everything_shown(slack: SlackEmulator) -> Iterator[tuple[str, str, bool]]:
    ws = slack.workspace
    for channel in ws.channels.values():
        for msg in channel.messages.values():
            where = f"#{channel.name or channel.id} {msg.ts}"
            yield where + ".text", msg.text or "", False
            yield from _texts(msg.blocks or [], where + ".blocks")
            yield from _texts(msg.attachments or [], where + ".attachments")
    for eph in ws.ephemerals:
        yield f"ephemeral {eph.ts}.text", eph.text or "", False
        yield from _texts(eph.blocks or [], f"ephemeral {eph.ts}.blocks")
    for view in ws.views.values():
        for part in ("title", "submit", "close"):
            yield from _texts({part: getattr(view, part)}, f"view {view.id}")
        yield from _texts(view.blocks, f"view {view.id}.blocks")


class Seen:
    """What people were shown at each checkpoint: cards are edited, so look while they wait."""

    def __init__(self, examples: Examples) -> None:
        self.examples = examples
        self.offences: set[str] = set()
        self.texts = 0

    async def look(self, *homes: str) -> None:
        slack = self.examples.slack
        for user in homes:  # App Home while something waits for them
            before = slack.home_view(user)
            await slack.open_home(user)

            def published(u: str = user, b: Any = before) -> bool:
                view = slack.home_view(u)
                return view is not None and view != b

            await slack.wait_for(published, message=f"no App Home for {user}")
        self.texts = max(self.texts, len(list(_everything_shown(self.examples.slack))))
        self.offences.update(_offences(self.examples))


def _offences(examples: Examples) -> list[str]:
    found = []
    for where, text, plain in _everything_shown(examples.slack):
        found += [f"{where}: raw id {i} in {text!r}" for i in raw_ids(text)]
        if DM_LINK.search(text):
            found.append(f"{where}: a DM named as a channel in {text!r}")
        elif ESCAPED.search(text):
            found.append(f"{where}: an escaped mention shows literally in {text!r}")
        if plain and MARKUP.search(text):
            found.append(f"{where}: mention syntax in plain_text {text!r}")
    for mail in examples.standins.mail:
        for part, text in (("subject", mail.subject), ("body", mail.body)):
            found += [f"e-mail {part}: raw id {i} in {text!r}" for i in raw_ids(text)]
            if MARKUP.search(text):
                found.append(f"e-mail {part}: Slack mention syntax in {text!r}")
    return found


async def _hello(examples: Examples, seen: Seen) -> None:
    await examples.slack.slash_command("alice", "general", "hello Ada Lovelace")
    await examples.finished("hello")


async def _modal(examples: Examples, seen: Seen, user: str, card: Any, action: str) -> None:
    """Open the modal a button opens, look at it, close it."""
    slack = examples.slack
    await slack.click(user, card["ts"], action, channel=card["channel"])
    await slack.wait_for(lambda: slack.open_views(user), message=f"{action} opened no modal")
    await seen.look()
    await slack.close_view(user)


async def _invoice(examples: Examples, seen: Seen) -> None:
    slack = examples.slack
    await slack.slash_command("alice", "ap-inbox", "invoice ACME INV-1042 for 12,400 EUR, PO-7781")
    card = await examples.message_in("finance-approvals", "INV-1042")
    root = await examples.message_in("ap-inbox", "invoice")
    await examples.thread_says("ap-inbox", root["ts"], "waiting for approval")
    await seen.look("dana", "alice")
    await _modal(examples, seen, "dana", card, "approval:reject")
    await _modal(examples, seen, "dana", card, "approval:delegate")
    await slack.click("alice", card["ts"], "approval:approve", channel="finance-approvals")
    await slack.click("dana", card["ts"], "approval:approve", channel="finance-approvals")
    await examples.thread_says("ap-inbox", root["ts"], "ledger entry")
    await examples.finished("invoice")


async def _inquiry(examples: Examples, seen: Seen) -> None:
    slack = examples.slack
    message = await slack.user_posts(
        "alice", "support-inbox", "I was charged twice for our subscription this month"
    )
    card = await examples.message_in("billing", "charged twice", timeout=30)
    await examples.thread_says("support-inbox", message["ts"], "routed to billing")
    await seen.look("dana", "alice")
    await _modal(examples, seen, "dana", card, "route:reassign")
    await examples.fast_forward_timers()
    await examples.message_in("support-leads", "SLA breached")
    await seen.look()
    await slack.click("dana", card["ts"], "route:close", channel="billing")
    await examples.thread_says("support-inbox", message["ts"], "closed by")
    await examples.finished("inquiries")


async def _access(examples: Examples, seen: Seen) -> None:
    slack = examples.slack
    await slack.slash_command("alice", "general", "access tableau quarterly churn analysis")
    carol_dm = slack.dm_channel("carol").id
    card = await examples.message_in(carol_dm, "Access to tableau")
    root = await examples.message_in("general", "access")
    await examples.thread_says("general", root["ts"], "waiting for approval")
    await seen.look("carol", "alice")
    await slack.click("carol", card["ts"], "approval:approve", channel=carol_dm)
    await examples.finished("it-access")
    await slack.wait_for(lambda: examples.standins.mail, message="no e-mail in the SMTP sink")


async def _compliance(examples: Examples, seen: Seen) -> None:
    """Switchboard's own e-mail: the report the reviewer decided, sent to the auditors."""
    slack = examples.slack
    await slack.slash_command("frank", "compliance", "compliance-scan")
    card = await examples.message_in("compliance", "payment exceptions to review")
    await seen.look("frank")
    await slack.click("frank", card["ts"], "approval:escalate", channel="compliance")
    await examples.finished("compliance-scan")
    await slack.wait_for(
        lambda: any(m.recipients == ["audit@example.com"] for m in examples.standins.mail),
        message="the auditors got no e-mail",
    )
    (report,) = [m for m in examples.standins.mail if m.recipients == ["audit@example.com"]]
    assert "escalate by Frank Fischer" in report.body, "the reviewer is named in the e-mail"


# What is rendered does not depend on the database: SQLite alone keeps the test short.
@pytest.mark.slow  # five scenarios end to end: about 5 s
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_no_raw_ids_in_what_the_bundled_workflows_show_people(examples: Examples) -> None:
    seen = Seen(examples)
    for scenario in (_hello, _invoice, _inquiry, _access, _compliance):
        await scenario(examples, seen)
        await seen.look()
    await seen.look("alice", "dana", "carol", "frank")
    assert seen.texts > 100, "the scenarios showed little"
    assert examples.standins.mail, "no e-mail was scanned"
    assert sorted(seen.offences) == [], "\n".join(sorted(seen.offences))
