"""What ``/flow`` does before it answers, next to a bare Bolt app that only acks (issue 24).

The signature is checked and the body parsed once (by the ingress, before Bolt; Bolt
is handed the result) and the one-line ephemeral answer is not rendered and validated
from its template each time. Observed through the real libraries, nothing replaced.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import slack_bolt.request.async_request as bolt_request
from jinja2 import Template
from slack_sdk.signature import SignatureVerifier

from tests.support.harness import Harness, running_bot
from tests.support.stores import Database

SLOW = "name: slow\nsteps:\n  - id: pause\n    wait: {duration: 1h}\n"


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    (tmp_path / "slow.yaml").write_text(SLOW)
    async with running_bot(database, workflows_dir=tmp_path, run_workers=0) as bot:
        yield bot


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Calls of Bolt's body parser, Jinja's render and slack_sdk's signature check (all
    still run, only counted)."""
    seen = {"bolt parse_body": 0, "template renders": 0, "bolt signature checks": 0}
    parse_body, render, is_valid = (
        bolt_request.parse_body,
        Template.render,
        SignatureVerifier.is_valid,
    )

    def counted_is_valid(self: SignatureVerifier, *args: Any, **kwargs: Any) -> bool:
        seen["bolt signature checks"] += 1
        return is_valid(self, *args, **kwargs)

    def counted_parse_body(*args: Any) -> Any:
        seen["bolt parse_body"] += 1
        return parse_body(*args)

    def counted_render(self: Template, *args: Any, **kwargs: Any) -> str:
        seen["template renders"] += 1
        return render(self, *args, **kwargs)

    monkeypatch.setattr(bolt_request, "parse_body", counted_parse_body)
    monkeypatch.setattr(Template, "render", counted_render)
    monkeypatch.setattr(SignatureVerifier, "is_valid", counted_is_valid)
    return seen


async def test_a_start_is_parsed_once_and_its_answer_not_revalidated(
    harness: Harness, calls: dict[str, int]
) -> None:
    slack = harness.slack
    first = await slack.slash_command("alice", "general", "slow first")
    assert first.ok and "Started *slow*" in first.body, first.body
    calls.update(dict.fromkeys(calls, 0))
    for n in range(3):
        result = await slack.slash_command("alice", "general", f"slow <b>&{n}")
        assert result.ok and "Started *slow*" in result.body, result.body
        assert f"slow &lt;b&gt;&amp;{n}" not in result.body  # the request text is not echoed
    # The ingress verified the signature and parsed the body: Bolt does neither again.
    assert calls == {"bolt parse_body": 0, "template renders": 0, "bolt signature checks": 0}


async def test_the_answer_is_the_rendered_template(harness: Harness) -> None:
    """The cached answer is what the template renders, escaped the same way."""
    renderer = harness.runtime.renderer
    text = 'Run `r1` <@U1> & *bold* "quoted" ' + "x" * 3000
    fresh = renderer.render("flow_ack", {"text": text})
    assert renderer.ephemeral(text) == fresh
    assert renderer.ephemeral(text) == fresh  # from the cache the second time
