"""Finding 7: secrets typed into a request never reach a thread, a table, a log line or a model.

One request text holds every credential shape the scrubber knows plus a configured secret
value (a connection's token, not shaped like anything). It arrives through /flow, an intake
channel message, the message shortcut, a signed webhook and an emoji reaction (the bot reads
that message's text after the run started), against the real bot and the
Slack emulator, with the OpenAI-compatible test server as the remote model. Afterwards:
no bot message in the emulator, no row of any table (every column, SQL over all of them),
no captured log line and no prompt the model server received holds any of the secrets,
while ordinary business text (PO-7781, invoice numbers) is still there.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.logs import REDACTED, configure_logging
from connectors.errors import redact as redact_echo
from connectors.secrets import remember_secrets, scrub
from connectors.webhook_out import sign
from tests.fakes.openai_server import FakeOpenAI
from tests.support.harness import Harness, running_bot
from tests.support.servers import serve_asgi
from tests.support.stores import Database
from workflows.tables import Base, RunRow

CONNECTION_TOKEN = "planted-erp-connection-token-5d2e"  # only the configuration knows it
HOOK_SECRET = "whsec-leak-test-91c4"

# Secret-shaped values are assembled at run time so no literal sits in the repo for a
# scanner to flag. (what a person pastes, the part that must never be seen again)
AWS_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SESSION_ID = "ASIA" + "Y34FZKBOKMUTVV7A"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
SLACK_HOOK_SECRET = "plantedWebhook" + "Secret42"
SHAPES: dict[str, tuple[str, str]] = {
    "aws access key id": (AWS_ID, AWS_ID),
    "aws session key id": (AWS_SESSION_ID, AWS_SESSION_ID),
    "aws secret key": ("aws_secret_access_key=" + AWS_SECRET, AWS_SECRET),
    "private key": (
        "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEowIBAAKCAQEAq7BFUAkGzRzbZ0PlantedKeyBody\n"
        "-----END RSA " + "PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAq7BFUAkGzRzbZ0PlantedKeyBody",
    ),
    "jwt": ("eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiJwbGFudGVkIn0." + "c2lnbmF0dXJlUGxhbnRlZDEyMw",)
    * 2,
    "stripe secret": ("sk_" + "live_51PlantedStripeKey0a9b8c",) * 2,
    "stripe restricted": ("rk_" + "live_51PlantedRestricted77x",) * 2,
    "google api key": ("AIza" + "SyD3kLmN0pQrStUvWxYz1234567890abcde",) * 2,
    "slack webhook": (
        "https://hooks.slack.com/" + "services/T0PLANT/B0PLANT/" + SLACK_HOOK_SECRET,
        SLACK_HOOK_SECRET,
    ),
    "password in url": ("postgres://admin:Hunter2Planted@db.internal:5432/prod", "Hunter2Planted"),
    "password": ("password=Tr0ub4dorPlanted", "Tr0ub4dorPlanted"),
    "secret": ("secret=9f8e7d6c5bPlanted", "9f8e7d6c5bPlanted"),
    "token": ("token: tok77a1b2Planted", "tok77a1b2Planted"),
    "api key": ("api_key=ak5566778899Planted", "ak5566778899Planted"),
    "configured connection token": (CONNECTION_TOKEN, CONNECTION_TOKEN),
}
ORDINARY = "PO-7781 invoice INV-2026-0042 for $1,200.00"
REQUEST = "leak " + ORDINARY + " " + " ".join(pasted for pasted, _ in SHAPES.values())

LEAK = """\
name: leak
title: Leak check
channel: "#general"
triggers:
  - command: leak
  - message: {channel: "#ap-inbox"}
  - shortcut: true
  - webhook: {secret_env: TEST_LEAK_HOOK_SECRET}
  - reaction: {emoji: eyes, channel: "#finance-approvals"}
steps:
  - id: keep
    set: {said: "{{ input.text }}"}
  - id: gist
    summarize: {text: "{{ input.text }}", max_sentences: 2}
  - id: echo
    post:
      text: "you said {{ input.text }}"
"""

CONNECTIONS = """\
connections:
  erp:
    type: http
    base_url_env: TEST_LEAK_ERP_URL
    token_env: TEST_LEAK_ERP_TOKEN
"""


def test_the_request_holds_each_shape_once() -> None:
    assert len(SHAPES["google api key"][0]) == 39, "AIza and 35 more"
    for name, (pasted, secret) in SHAPES.items():
        assert secret in pasted and REQUEST.count(secret) == 1, name


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buffer = io.StringIO()
    yield buffer
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.fixture
async def model() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    async with fake.running() as base_url:
        yield fake, base_url


@pytest.fixture
async def harness(
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    model: tuple[FakeOpenAI, str],
) -> AsyncIterator[Harness]:
    monkeypatch.setenv("TEST_LEAK_ERP_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("TEST_LEAK_ERP_TOKEN", CONNECTION_TOKEN)
    monkeypatch.setenv("TEST_LEAK_HOOK_SECRET", HOOK_SECRET)
    (tmp_path / "leak.yaml").write_text(LEAK)
    (tmp_path / "connections.yaml").write_text(CONNECTIONS)
    settings = {"OPENAI_BASE_URL": model[1], "OPENAI_API_KEY": "sk-test-fake-model-key"}
    async with running_bot(database, workflows_dir=tmp_path, **settings) as running:
        yield running


async def post_webhook(harness: Harness, payload: dict[str, str]) -> httpx.Response:
    body = json.dumps(payload).encode()
    sent_at = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Switchboard-Timestamp": str(sent_at),
        "X-Switchboard-Signature": sign(HOOK_SECRET, sent_at, body),
    }
    async with httpx.AsyncClient(base_url=harness.bot_url) as http:
        return await http.post("/hooks/leak", content=body, headers=headers)


async def every_row(harness: Harness) -> str:
    """Every column of every row of every table, as one text."""
    parts: list[str] = []
    async with harness.runtime.store.transaction() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                parts.append(json.dumps([table.name, *row], default=str))
    return "\n".join(parts)


async def succeeded(harness: Harness) -> int:
    async with harness.runtime.store.transaction() as session:
        query = select(func.count()).select_from(RunRow).where(RunRow.status == "succeeded")
        return int(await session.scalar(query) or 0)


async def test_pasted_secrets_reach_no_thread_row_log_or_model(
    harness: Harness, model: tuple[FakeOpenAI, str], captured_logs: io.StringIO
) -> None:
    slack, (fake, _) = harness.slack, model
    configure_logging(level="DEBUG", fmt="json", stream=captured_logs)

    assert (await slack.slash_command("alice", "general", REQUEST)).ok  # /flow leak …
    await slack.user_posts("bob", "ap-inbox", REQUEST)  # an intake channel message
    pasted = await slack.user_posts("carol", "general", REQUEST)
    assert (await slack.message_shortcut("carol", "general", pasted["ts"])).ok
    assert (await post_webhook(harness, {"text": REQUEST})).status_code == 200
    reacted = await slack.user_posts("carol", "finance-approvals", REQUEST)  # read later
    await slack.add_reaction("alice", "finance-approvals", reacted["ts"], "eyes")

    async def all_five() -> bool:
        return await succeeded(harness) >= 5

    await slack.wait_for(all_five, timeout=30, message="the five runs did not finish")
    bot_messages = [
        m
        for channel in ("general", "ap-inbox", "finance-approvals")
        for m in slack.messages(channel, include_replies=True)
        if m.get("bot_id")
    ]
    outputs = {
        "threads": json.dumps(bot_messages) + json.dumps(slack.ephemerals("alice")),
        "database": await every_row(harness),
        "logs": captured_logs.getvalue(),
        "model prompts": json.dumps([request.body for request in fake.requests]),
    }

    assert len(fake.requests) >= 5, "each run's summarize step asked the model"
    echoes = [m["text"] for m in bot_messages if m["text"].startswith("you said")]
    assert len(echoes) == 5, "each trigger's run echoed the request"
    assert all(ORDINARY in echo for echo in echoes), "business text is left alone"
    leaks = [
        f"{name} in {where}"
        for name, (_, secret) in SHAPES.items()
        for where, output in outputs.items()
        if secret in output
    ]
    assert not leaks, "; ".join(leaks)


@pytest.mark.parametrize(("name", "pasted", "secret"), [(n, *v) for n, v in SHAPES.items()])
def test_each_shape_is_scrubbed_alone(name: str, pasted: str, secret: str) -> None:
    remember_secrets([CONNECTION_TOKEN])  # as resolving the connection's token_env does
    scrubbed = scrub(f"see {pasted} today")
    assert secret not in scrubbed and REDACTED in scrubbed, name
    assert scrubbed.startswith("see ") and scrubbed.endswith(" today")


@pytest.mark.parametrize(
    "ordinary",
    [
        ORDINARY,
        "run 3f9a0c2b71de failed at step book; retry with /flow retry 3f9a0c2b71de",
        "PO-7781, INV-2026-0042, ticket OPS-12, order 100045-77, SKU AKIA-12",
        "the token: expired-yesterday, password reset link sent, basic requirements",
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "https://erp.example.com:8443/invoices/INV-2026-0042?page=2",
        "mail ap@example.com about the secret santa list",
    ],
)
def test_ordinary_text_is_left_alone(ordinary: str) -> None:
    assert scrub(ordinary) == ordinary


def test_connector_errors_mask_the_connection_secrets_and_shapes() -> None:
    echoed = f"401 for key abc and {AWS_ID}: bad credentials"
    assert redact_echo(echoed, ["abc"]) == f"401 for key {REDACTED} and {REDACTED}: bad credentials"


WHOAMI = """\
name: whoami
channel: "#general"
triggers: [{command: whoami}]
steps:
  - id: ask
    http: {connection: erp, path: /whoami}
  - id: tell
    post:
      text: "ERP says {{ steps.ask.data.authorization }} / {{ steps.ask.data.note }}"
"""


async def echo_credentials(request: Request) -> JSONResponse:
    """A careless system: it echoes the caller's credential and leaks a key of its own."""
    note = f"use {AWS_ID} for PO-7781"
    return JSONResponse({"authorization": request.headers.get("authorization"), "note": note})


async def test_secrets_a_connector_echoes_are_not_stored_or_threaded(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    erp = Starlette(routes=[Route("/whoami", echo_credentials)])
    async with serve_asgi(erp) as erp_url:
        monkeypatch.setenv("TEST_LEAK_ERP_URL", erp_url)
        monkeypatch.setenv("TEST_LEAK_ERP_TOKEN", CONNECTION_TOKEN)
        (tmp_path / "whoami.yaml").write_text(WHOAMI)
        (tmp_path / "connections.yaml").write_text(CONNECTIONS)
        async with running_bot(database, workflows_dir=tmp_path) as harness:
            assert (await harness.slack.slash_command("alice", "general", "whoami")).ok
            root = await harness.root_message("general", "started whoami")
            # Its post and the run card, once the card lists both steps.
            thread = await harness.slack.wait_for(
                lambda: (
                    (t := harness.slack.thread("general", root["ts"]))
                    and any("\ntell:" in m["text"] for m in t)
                    and t
                ),
                message="the run card never listed the tell step",
            )
            rows = await every_row(harness)

    told = next(m["text"] for m in thread if m["text"].startswith("ERP says"))
    assert told == f"ERP says Bearer {REDACTED} / use {REDACTED} for PO-7781"
    for secret in (CONNECTION_TOKEN, AWS_ID):
        assert secret not in json.dumps(thread), "threaded"
        assert secret not in rows, "stored (runs.context holds step outputs)"
