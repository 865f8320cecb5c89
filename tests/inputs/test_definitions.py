"""``inputs:`` and ``ask`` in definitions: what check refuses, and how values are typed."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from connectors.ai.money import Money
from workflows import form_values
from workflows.language.inputs import InputField
from workflows.language.workflow import Workflow
from workflows.loader import CheckContext, load_folder

ROOT = Path(__file__).resolve().parents[2]
BASE = """
name: w
triggers: [{command: w}]
inputs:
%s
steps:
  - id: s
    set: {x: 1}
"""


def _errors(tmp_path: Path, inputs: str, steps: str | None = None) -> list[str]:
    text = textwrap.dedent(BASE) % textwrap.indent(textwrap.dedent(inputs).strip(), "  ")
    if steps is not None:
        text = text.split("steps:")[0] + "steps:\n" + textwrap.indent(textwrap.dedent(steps), "  ")
    (tmp_path / "w.yaml").write_text(text)
    result = load_folder(tmp_path, CheckContext(templates_dir=ROOT / "templates"))
    return [f"{e.line}: {e.message}" for e in result.errors]


@pytest.mark.parametrize(
    ("inputs", "problem"),
    [
        ("- {id: kind, type: select}", "a select needs options"),
        ("- {id: note, options: [a]}", "only a select has options"),
        ("- {id: n, type: number, min: 5, max: 1}", "min is above max"),
        ("- {id: note, min: 1}", "min/max are for number and money"),
        ("- {id: kind, type: select, options: [a], default: b}", "not one of the options"),
        ("- {id: due, type: date, default: tomorrow}", "a date default is YYYY-MM-DD"),
        ("- {id: user}", "input id 'user' is reserved"),
        ("- {id: a}\n- {id: a}", "input id 'a' is used twice"),
        ("- {id: a, type: colour}", "Input should be"),
        ("- {id: a, currency: euro}", "String should match pattern"),
    ],
)
def test_check_refuses_bad_inputs_with_a_line(tmp_path: Path, inputs: str, problem: str) -> None:
    errors = _errors(tmp_path, inputs)
    assert len(errors) == 1 and problem in errors[0], errors
    assert not errors[0].startswith("0:")


def test_check_refuses_an_ask_without_fields_or_with_a_bad_goto(tmp_path: Path) -> None:
    no_fields = _errors(tmp_path, "- {id: a}", "- id: q\n  ask: {people: [U1], fields: []}\n")
    assert len(no_fields) == 1 and "at least 1 item" in no_fields[0]
    bad_goto = _errors(
        tmp_path,
        "- {id: a}",
        "- id: q\n  ask: {people: [U1], fields: [{id: cc}], on_timeout: {goto: nowhere}}\n",
    )
    assert len(bad_goto) == 1 and "nowhere" in bad_goto[0], bad_goto


def test_the_schema_describes_inputs_and_ask() -> None:
    schema = str(Workflow.model_json_schema())
    assert "InputField" in schema and "AskSpec" in schema and "long_text" in schema


def _field(**kwargs: object) -> InputField:
    return InputField.model_validate({"id": "f"} | kwargs)


def test_values_are_typed_and_problems_are_one_sentence() -> None:
    fields = [
        _field(id="amount", type="money", currency="EUR", required=True),
        _field(id="n", type="number", max=10),
        _field(id="rate", type="number"),
        _field(id="due", type="date"),
        _field(id="pick", type="select", options=["a", "b"]),
        _field(id="note"),
    ]
    ok = form_values.parse(
        fields, {"amount": "EUR 1.250,50", "n": "3", "rate": "0.5", "due": "2026-01-31"}
    )
    assert ok.errors == {}
    assert ok.values == {
        "amount": Money("1250.50", "EUR"),
        "n": 3,
        "rate": 0.5,
        "due": "2026-01-31",
        "pick": None,
        "note": None,
    }
    bad = form_values.parse(
        fields, {"amount": "", "n": "11", "rate": "nan", "due": "31/01/2026", "pick": "c"}
    )
    assert bad.errors == {
        "amount": "Please fill this in.",
        "n": "At most 10, please.",
        "rate": "Not a number.",
        "due": "Not a date (YYYY-MM-DD).",
        "pick": "Please choose one of the options.",
    }
    long = form_values.parse([_field(max_length=5)], {"f": "abcdef"})
    assert long.errors == {"f": "At most 5 characters, please (6 given)."}


def test_free_text_fills_only_what_it_says() -> None:
    fields = [
        _field(id="vendor", required=True),
        _field(id="amount", type="money", currency="EUR"),
        _field(id="due", type="date"),
        _field(id="pick", type="select", options=["hardware", {"value": "saas", "label": "SaaS"}]),
        _field(id="owner", type="user"),
    ]
    text = "ACME INV-1042 for 12,400 EUR, PO-7781 due 2026-12-24, saas for <@U123ABC>"
    assert form_values.extract(fields, text) == {
        "amount": "12,400 EUR",
        "due": "2026-12-24",
        "pick": "saas",
        "owner": "U123ABC",
    }
    assert form_values.extract(fields, "vendor: ACME; amount = 99") == {
        "vendor": "ACME",
        "amount": "99",
    }
    # Not money: an invoice number, a lowercase word before a number, another currency.
    assert form_values.extract(fields, "INV-1042 for 12,400") == {}
    assert form_values.extract(fields, "$12") == {}


def test_free_text_filling_takes_linear_time() -> None:
    fields = [_field(id="amount", type="money"), _field(id="due", type="date")]
    for text in ("1" * 8000, "1," * 4000, "1 " * 4000, "EUR1 " * 1600, "<@U" + "A" * 8000):
        started = time.perf_counter()
        form_values.extract(fields, text)
        assert time.perf_counter() - started < 0.25, text[:20]
