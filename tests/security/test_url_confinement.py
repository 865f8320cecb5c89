"""Request text must never steer an http step outside its connection's base URL (findings 1, 2).

End to end: the real bot and the Slack emulator, the bundled campaign-report workflow and two
probe workflows, with the connections pointed at a recording server (``home``, under path
prefixes) and a second one (``elsewhere``) that no credential may reach. Then properties of
the URL builder (path rendering + the transport's check) over arbitrary values, and every
bundled workflow run with hostile request text on the engine ``switchboard test`` uses.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import select

from bot.settings import BUNDLED_TEMPLATES, BUNDLED_WORKFLOWS, PROJECT_ROOT
from bot.workflow_test import open_bench, run_case
from bot.workflow_test_stubs import OutboundCall
from connectors.ai.local import LocalProvider
from connectors.config import BreakerSettings, RetrySettings
from connectors.errors import ConnectorRejected
from connectors.resilience import CircuitBreaker, Guard
from connectors.transport import HttpTransport
from tests.support.harness import Harness, running_bot
from tests.support.servers import serve_asgi
from tests.support.stores import Database
from workflows.expressions import Expressions
from workflows.language.steps.http import HttpSpec, HttpStep
from workflows.language.workflow import Workflow
from workflows.language.workflow_tests import CaseInput, WorkflowTest
from workflows.loader import CheckContext, load_file
from workflows.tables import AuditRow, RunRow

TOKEN = "ads-s3cret-token"
LEAVES = "URL leaves the connection's base_url"

CONNECTIONS = """
connections:
  ads: {type: http, base_url_env: ADS_URL, token_env: ADS_TOKEN}
  crm: {type: http, base_url_env: CRM_URL, token_env: ADS_TOKEN}
  tickets: {type: jira, base_url_env: TICKETS_URL, token_env: ADS_TOKEN}
"""
PROBES = {
    "probe-segment.yaml": """
name: probe-segment
steps:
  - id: fetch
    http: {connection: ads, path: "/clients/{{ input.text }}/metrics"}
""",
    "probe-query.yaml": """
name: probe-query
steps:
  - id: fetch
    http: {connection: ads, path: /search, query: {q: "{{ input.text }}"}}
""",
    "probe-path.yaml": """
name: probe-path
steps:
  - id: fetch
    http: {connection: ads, path: "{{ input.text }}"}
""",
}


@dataclass(frozen=True)
class Seen:
    method: str
    raw_path: str
    query: str
    authorization: str | None


@dataclass
class Recorder:
    """An ASGI server that records the raw request line of everything it receives."""

    seen: list[Seen] = field(default_factory=list)
    base_url: str = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        raw_path = scope.get("raw_path") or scope["path"].encode()
        self.seen.append(
            Seen(
                scope["method"],
                raw_path.decode(),
                scope["query_string"].decode(),
                headers.get("authorization"),
            )
        )
        await send({"type": "http.response.start", "status": 200, "headers": _JSON})
        await send({"type": "http.response.body", "body": b'{"ok": true}'})


_JSON = [(b"content-type", b"application/json")]


@dataclass
class Stage:
    harness: Harness
    home: Recorder
    elsewhere: Recorder

    async def run(self, text: str) -> tuple[RunRow, list[str], list[AuditRow]]:
        """Send ``/flow <text>``; the finished run, its thread's texts and its audit records."""
        await self.harness.slack.slash_command("alice", "general", text)
        workflow = text.split()[0]

        async def finished() -> RunRow | None:
            async with self.harness.runtime.store.transaction() as session:
                run = (
                    await session.scalars(select(RunRow).where(RunRow.workflow == workflow))
                ).first()
            return run if run is not None and run.status not in ("running", "waiting") else None

        run = await self.harness.slack.wait_for(finished, timeout=20, message="no run finished")
        async with self.harness.runtime.store.transaction() as session:
            records = list(
                await session.scalars(
                    select(AuditRow).where(AuditRow.run_id == run.id).order_by(AuditRow.seq)
                )
            )
        thread: list[str] = []
        if run.channel_id and run.root_ts:
            messages = self.harness.slack.thread(run.channel_id, run.root_ts)
            thread = [m.get("text", "") + str(m.get("blocks", "")) for m in messages]
        return run, thread, records

    def outside_base(self) -> list[Seen]:
        prefixes = ("/ads-api/", "/crm-api/", "/tickets-api/")
        return [s for s in self.home.seen if not s.raw_path.startswith(prefixes)]


@pytest.fixture
async def stage(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stage]:
    home, elsewhere = Recorder(), Recorder()
    folder = tmp_path / "workflows"
    folder.mkdir()
    shutil.copy(BUNDLED_WORKFLOWS / "campaign-report.yaml", folder)
    (folder / "connections.yaml").write_text(CONNECTIONS)
    for name, text in PROBES.items():
        (folder / name).write_text(text)
    async with serve_asgi(home) as home_url, serve_asgi(elsewhere) as elsewhere_url:
        home.base_url, elsewhere.base_url = home_url, elsewhere_url
        monkeypatch.setenv("ADS_URL", f"{home_url}/ads-api")
        monkeypatch.setenv("CRM_URL", f"{home_url}/crm-api")
        monkeypatch.setenv("TICKETS_URL", f"{home_url}/tickets-api")
        monkeypatch.setenv("ADS_TOKEN", TOKEN)
        async with running_bot(database, workflows_dir=folder) as harness:
            assert not harness.runtime.definition_errors, harness.runtime.definition_errors
            yield Stage(harness, home, elsewhere)


@pytest.mark.parametrize(
    "text", ["../../admin/users#", "acme?role=admin#", "http://127.0.0.1:9/x", ".."]
)
async def test_campaign_report_refuses_a_client_name_that_is_not_a_slug(
    stage: Stage, text: str
) -> None:
    run, thread, records = await stage.run(f"campaign-report {text}")
    assert run.status == "failed"
    assert "Not a client name" in (run.error or "")
    assert any("Not a client name" in message for message in thread)
    assert any(r.action == "step.failed" and "Not a client name" in str(r.detail) for r in records)
    assert stage.home.seen == [] and stage.elsewhere.seen == []


async def test_a_value_cannot_climb_out_of_an_author_prefix(stage: Stage) -> None:
    run, thread, records = await stage.run("probe-segment ../../admin/users#")
    assert stage.outside_base() == [] and stage.home.seen == []
    assert run.status == "failed" and LEAVES in (run.error or "")
    assert any(LEAVES in message for message in thread)
    (failure,) = [r for r in records if r.action == "step.failed"]
    assert failure.step_id == "fetch" and LEAVES in json.dumps(failure.detail)


async def test_a_value_cannot_add_a_query_or_fragment(stage: Stage) -> None:
    run, _thread, _records = await stage.run("probe-segment acme?role=admin#")
    assert run.status == "succeeded", run.error
    (seen,) = stage.home.seen
    assert seen.raw_path == "/ads-api/clients/acme%3Frole%3Dadmin%23/metrics"
    assert seen.query == ""


async def test_query_parameters_come_only_from_the_params_map(stage: Stage) -> None:
    # `query:` is the older name of `params:`; either way the value is one encoded parameter.
    run, _thread, _records = await stage.run("probe-query a&role=admin#x")
    assert run.status == "succeeded", run.error
    (seen,) = stage.home.seen
    assert (seen.raw_path, seen.query) == ("/ads-api/search", "q=a%26role%3Dadmin%23x")


def test_an_http_step_takes_params_or_query_not_both() -> None:
    assert HttpSpec.model_validate({"connection": "ads", "query": {"q": 1}}).params == {"q": 1}
    with pytest.raises(ValidationError, match="`params` or `query`, not both"):
        HttpSpec.model_validate({"connection": "ads", "query": {"q": 1}, "params": {"r": 2}})


async def test_an_absolute_url_in_the_text_never_carries_the_token_elsewhere(
    stage: Stage,
) -> None:
    target = f"{stage.elsewhere.base_url}/x"
    run, _thread, _records = await stage.run(f"probe-path {target}")
    assert stage.elsewhere.seen == []
    assert stage.outside_base() == []
    # It became one (encoded) segment under the base path: a 200 from our own server.
    assert [s.raw_path for s in stage.home.seen] == [
        "/ads-api/" + target.replace(":", "%3A").replace("/", "%2F")
    ]
    assert all(s.authorization == f"Bearer {TOKEN}" for s in stage.home.seen)
    assert run.status == "succeeded", run.error


# --- properties of the URL builder: render_path, then the transport's build_request ---

BASE = "http://127.0.0.1:8123/api/v2"
_EXPRESSIONS = Expressions()


def _transport() -> HttpTransport:
    guard = Guard(
        "prop",
        retry=RetrySettings(attempts=1),
        breaker=CircuitBreaker("prop", BreakerSettings()),
        max_concurrency=1,
    )
    return HttpTransport("prop", guard=guard, base_url=BASE)


_TRANSPORT = _transport()
_TEMPLATES = [
    ("/clients/{{ a }}/metrics", ["clients", "{a}", "metrics"]),
    (
        "/rest/api/2/issue/{{ a }}/comment/{{ b }}",
        ["rest", "api", "2", "issue", "{a}", "comment", "{b}"],
    ),
    ("{{ a }}", ["{a}"]),
    ("/{{ a }}{{ b }}", ["{a}{b}"]),
]


def _climbs(value: str) -> bool:
    """Would a server that decodes before resolving see a dot-segment in this value?"""
    return any(piece in (".", "..") for piece in re.split(r"[/\\]", value))


@settings(max_examples=400, deadline=None)
@given(
    template=st.sampled_from(_TEMPLATES),
    a=st.text(max_size=40),
    b=st.one_of(st.text(max_size=20), st.sampled_from(["..", ".", "?x=1", "#f", "//h", "%2e"])),
)
def test_rendered_paths_keep_the_authors_segments_under_the_base(
    template: tuple[str, list[str]], a: str, b: str
) -> None:
    source, shape = template
    path = _EXPRESSIONS.render_path(source, {"a": a, "b": b})
    sent = {k: v.encode("utf-8", "replace").decode() for k, v in {"a": a, "b": b}.items()}
    values = [segment.format(**sent) for segment in shape]
    if any(_climbs(value) for value in values):
        with pytest.raises(ConnectorRejected, match=LEAVES):
            _TRANSPORT.build_request("GET", path)
        return
    request = _TRANSPORT.build_request("GET", path)
    url = request.url
    assert (url.scheme, url.host, url.port) == ("http", "127.0.0.1", 8123)
    assert url.query == b"" and url.fragment == ""
    raw = url.raw_path.decode()
    assert "?" not in raw and "#" not in raw
    assert raw.startswith("/api/v2/")
    segments = raw[len("/api/v2/") :].split("/")
    assert [unquote(segment) for segment in segments] == values


@settings(max_examples=200, deadline=None)
@given(url=st.text(max_size=60), scheme=st.sampled_from(["http", "https", "ftp", ""]))
def test_any_url_the_builder_accepts_is_under_the_base(url: str, scheme: str) -> None:
    candidate = f"{scheme}://{url}" if scheme else url
    try:
        request = _TRANSPORT.build_request("GET", candidate)
    except (ConnectorRejected, httpx.InvalidURL, UnicodeError):
        return
    built = request.url
    assert (built.scheme, built.host, built.port) == ("http", "127.0.0.1", 8123)
    raw = built.raw_path.decode("ascii", "replace").split("?")[0]
    assert raw == "/api/v2" or raw.startswith("/api/v2/")
    assert not any(_climbs(unquote(s)) for s in raw.split("/"))


# --- the bundled workflows: request text never becomes (part of) a URL path ---------------

BUNDLED = sorted(
    path
    for folder in (BUNDLED_WORKFLOWS, PROJECT_ROOT / "examples")
    for path in folder.rglob("*.yaml")
    if path.stem != "connections"
)
MARK = "zq9hostile"
HOSTILE = [f"../../{MARK}/admin?role=admin#", f"http://{MARK}.example/x {MARK}%2F.."]


async def _calls_with_hostile_text(workflow: Workflow) -> list[OutboundCall]:
    """Run ``workflow`` on the real engine with each hostile text (every approval approved,
    each in-file test's recorded answers tried); every call it sent to a connection."""
    fixtures = [
        case.model_dump(include={"ai", "connections"}, by_alias=True) for case in workflow.tests
    ]
    calls: list[OutboundCall] = []
    async with open_bench(LocalProvider(), BUNDLED_TEMPLATES) as bench:
        for text in HOSTILE:
            for recorded in fixtures or [{}]:
                case = WorkflowTest(
                    name="hostile",
                    input=CaseInput(text=text),
                    decisions=["approve"],
                    **recorded,
                )
                calls += (await run_case(bench, workflow, case, adhoc=True)).calls
    return calls


@pytest.mark.slow  # about 25 s: a dozen runs of the bundled workflows
async def test_bundled_workflows_never_put_request_text_into_a_url_path() -> None:
    sent: dict[str, list[str]] = {}
    for path in BUNDLED:
        workflow, errors = load_file(path, CheckContext(templates_dir=BUNDLED_TEMPLATES))
        assert workflow is not None and not errors, [str(e) for e in errors]
        if not any(isinstance(step, HttpStep) for step in workflow.steps):
            continue
        for step in workflow.steps:  # not even through a filter or a method of it
            if isinstance(step, HttpStep):
                assert "input.text" not in step.http.path, f"{path.name}: {step.id}"
        sent[path.name] = [call.path for call in await _calls_with_hostile_text(workflow)]
    assert {"campaign-report.yaml", "it-access.yaml", "invoice.yaml"} <= set(sent)
    assert any(sent.values()), "no bundled workflow called a connection: the probe proves nothing"
    for name, paths in sent.items():
        for sent_path in paths:
            assert MARK not in unquote(sent_path), f"{name} sent request text in {sent_path}"
