"""Typed extract values: money compares and computes like a number and renders with cents.

Through the real engine and the offline provider's rules; the run's context is stored as
JSON and read back (SQLite and PostgreSQL), which is what later steps see.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from typer.testing import CliRunner

from bot.chat_recorder import ChatRecorder
from bot.cli import app
from connectors.ai.base import FieldSpec
from connectors.ai.local import LocalProvider
from connectors.ai.money import Money
from connectors.ai.openai_parse import clean_value
from tests.support.clock import ManualClock
from tests.support.engines import drain, make_engine, run_row, start, workflow
from workflows.expressions import Expressions
from workflows.loader import load_folder
from workflows.steps.base import Services
from workflows.store import Store

EXPENSE = """
    name: expense
    channel: C0EXPENSE
    steps:
      - id: fields
        extract:
          fields: {amount: money, purpose: {type: str, pattern: '[A-Z]{3}\\s+(.+)$'}}
      - id: big
        when: "{{ steps.fields.amount > 100 }}"
        set:
          doubled: "{{ steps.fields.amount * 2 }}"
          net: "{{ (steps.fields.amount / 1.25) | round(2) }}"
          currency: "{{ steps.fields.amount.currency }}"
          number: "{{ steps.fields.amount.amount + 1 }}"
          formatted: "{{ 1234.5 | money('EUR') }}"
      - id: done
        post: {text: "Booked {{ steps.fields.amount }} for {{ steps.fields.purpose }}."}
"""


@pytest_asyncio.fixture(loop_scope="function")
async def local() -> AsyncIterator[LocalProvider]:
    provider = LocalProvider()  # extract and summarize need no model: nothing is loaded
    yield provider
    await provider.aclose()


async def test_money_compares_with_numbers_and_renders_with_cents(
    store: Store, local: LocalProvider
) -> None:
    chat = ChatRecorder()
    wf = workflow(EXPENSE)
    engine = make_engine(store, ManualClock(), wf, chat=chat, services=Services(ai=local))
    run_id = await start(engine, "expense", "640 EUR team dinner")
    await drain(engine)
    run = await run_row(store, run_id)
    assert run.status == "succeeded", run.error
    steps = run.context["steps"]
    # Its JSON form, stored as is.
    assert steps["fields"]["amount"] == {"amount": 640.0, "currency": "EUR"}
    assert steps["fields"]["purpose"] == "team dinner"
    big = steps["big"]
    assert big["doubled"] == {"amount": 1280.0, "currency": "EUR"}
    assert big["net"] == {"amount": 512.0, "currency": "EUR"}
    assert big["currency"] == "EUR" and big["number"] == 641.0
    assert big["formatted"] == "1,234.50 EUR"  # the filter formats; it makes text
    assert "Booked 640.00 EUR for team dinner." in chat.texts()


async def test_small_amount_skips_the_step_that_compares(
    store: Store, local: LocalProvider
) -> None:
    engine = make_engine(
        store, ManualClock(), workflow(EXPENSE), chat=ChatRecorder(), services=Services(ai=local)
    )
    run_id = await start(engine, "expense", "EUR 12.50 coffee")
    await drain(engine)
    run = await run_row(store, run_id)
    assert run.status == "succeeded", run.error
    assert run.context["steps"]["big"] == {"skipped": True}


def test_money_read_back_from_json_is_money_again_in_expressions() -> None:
    stored = json.loads(json.dumps({"steps": {"f": {"amount": Money("12400.5", "€")}}}))
    assert stored["steps"]["f"]["amount"] == {"amount": 12400.5, "currency": "EUR"}
    expressions = Expressions()
    assert expressions.evaluate("{{ steps.f.amount }} total", stored) == "12,400.50 EUR total"
    assert expressions.truthy("{{ steps.f.amount >= 12400.5 }}", stored)
    assert expressions.evaluate("{{ steps.f['amount'] - 400.5 }}", stored) == Money(12000, "EUR")
    assert expressions.evaluate("{{ '640 EUR' | money }}", stored) == "640.00 EUR"
    assert expressions.evaluate("{{ 5 | money }}", stored) == "5.00"
    assert expressions.evaluate("{{ steps.f.amount | money('USD') }}", stored) == "12,400.50 USD"


def test_money_of_two_currencies_does_not_mix() -> None:
    with pytest.raises(TypeError, match="EUR and USD"):
        _ = Money(1, "EUR") + Money(1, "USD")
    assert Money.parse("twelve euros") is None
    assert str(Money.parse("$1.2k")) == "1,200.00 USD"


def test_check_warns_about_a_str_field_the_offline_extractor_cannot_fill(tmp_path: Path) -> None:
    (tmp_path / "expense.yaml").write_text(
        textwrap.dedent(
            """\
            name: expense
            steps:
              - id: fields
                extract:
                  fields: {amount: money, purpose: str, note: {type: str, pattern: 'n: (.+)'}}
            """
        )
    )
    result = load_folder(tmp_path)
    assert not result.errors
    [warning] = result.warnings
    assert warning.line == 3 and warning.field == "steps.fields.extract.fields.purpose"
    assert "pattern:" in warning.message and warning.message.startswith("warning:")
    output = CliRunner().invoke(app, ["check", str(tmp_path)])
    assert output.exit_code == 0
    assert "1 workflow ok, 0 errors, 1 warning" in output.output


def test_a_model_answers_money_as_text_and_it_is_read_like_the_rules_read_it() -> None:
    spec = FieldSpec(name="amount", type="money")
    assert clean_value(spec, " EUR 12.400,50 ") == "12,400.50 EUR"
    assert clean_value(spec, "about a dozen") is None  # not money: not found, never guessed
    assert clean_value(spec, 640.0) == 640.0  # a bare number: Money without a currency
