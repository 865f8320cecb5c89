"""The model is asked money as {amount, currency}, and its answer keeps the currency.

The structured-output schema of a ``money`` field is an object of a number and an ISO
4217 code (or null), so "12,400.50 EUR" comes back as both, never as a bare number
that lost its currency; the step gets the canonical text that ``Money`` parses.
"""

from __future__ import annotations

import pytest

from connectors.ai.base import ExtractRequest, FieldSpec
from connectors.ai.openai_compat import OpenAICompatProvider
from tests.fakes.openai_server import Content, FakeOpenAI

pytestmark = pytest.mark.asyncio(loop_scope="module")

FIELDS = [FieldSpec(name="amount", type="money"), FieldSpec(name="vendor")]


async def _extract(provider: OpenAICompatProvider, fake: FakeOpenAI, reply: str) -> object:
    fake.script(Content(reply))
    result = await provider.extract(ExtractRequest(text="ACME, 12,400.50 EUR", fields=FIELDS))
    return result.values["amount"]


async def test_the_schema_asks_an_amount_and_a_currency(
    provider: OpenAICompatProvider, fake_openai: FakeOpenAI
) -> None:
    reply = '{"amount": {"amount": 1, "currency": "EUR"}, "vendor": null}'
    await _extract(provider, fake_openai, reply)
    [sent] = fake_openai.requests
    schema = sent.body["response_format"]["json_schema"]["schema"]
    money = next(o for o in schema["properties"]["amount"]["anyOf"] if o.get("type") == "object")
    assert money["required"] == ["amount", "currency"]
    assert money["additionalProperties"] is False
    assert money["properties"]["amount"]["type"] == "number"
    assert {"type": "null"} in money["properties"]["currency"]["anyOf"]
    assert "ISO 4217" in money["properties"]["currency"]["description"]
    assert "currency" in sent.system and "plain numbers without currency" not in sent.system


async def test_the_currency_of_the_answer_is_kept(
    provider: OpenAICompatProvider, fake_openai: FakeOpenAI
) -> None:
    reply = '{"amount": {"amount": 12400.5, "currency": "eur"}, "vendor": "ACME"}'
    assert await _extract(provider, fake_openai, reply) == "12,400.50 EUR"
    reply = '{"amount": {"amount": 640, "currency": null}, "vendor": "ACME"}'
    assert await _extract(provider, fake_openai, reply) == "640.00"
    reply = '{"amount": {"amount": 640, "currency": "euros"}, "vendor": "ACME"}'
    assert await _extract(provider, fake_openai, reply) == "640.00"  # not a code: amount only


async def test_a_server_that_ignores_the_schema_still_gives_money(
    provider: OpenAICompatProvider, fake_openai: FakeOpenAI
) -> None:
    assert await _extract(provider, fake_openai, '{"amount": 640, "vendor": null}') == "640.00"
    reply = '{"amount": "640 EUR", "vendor": null}'
    assert await _extract(provider, fake_openai, reply) == "640.00 EUR"
    assert await _extract(provider, fake_openai, '{"amount": null, "vendor": null}') is None
