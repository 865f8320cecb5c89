"""``check`` types ``when:``, ``switch`` and other expressions against the steps' declared outputs.

What would raise a TypeError after the first approval, never match, or stop at a typo
in an output's name is refused before the run starts, at its file:line, naming the step
and the fix; a definition whose types agree loads.
"""

from __future__ import annotations

from pathlib import Path

from bot.settings import BUNDLED_TEMPLATES
from workflows.loader import CheckContext, load_folder

HEAD = """\
name: typed
steps:
  - id: fields
    extract:
      fields:
        amount: {type: money}
        purpose: {type: str, pattern: "for (.+)"}
        nights: int
  - id: kind
    classify:
      labels: {travel: {}, hardware: {}}
"""


def _errors(tmp_path: Path, steps: str) -> list[str]:
    (tmp_path / "typed.yaml").write_text(HEAD + steps)
    result = load_folder(tmp_path, CheckContext(templates_dir=BUNDLED_TEMPLATES))
    return [str(error) for error in result.errors]


def _when(condition: str) -> str:
    return f'  - id: ask\n    when: "{condition}"\n    end: true\n'


def _one(tmp_path: Path, steps: str) -> str:
    errors = _errors(tmp_path, steps)
    assert len(errors) == 1, errors
    return errors[0]


def test_ordering_text_against_a_number_is_refused_at_the_when_line(tmp_path: Path) -> None:
    error = _one(tmp_path, _when("{{ steps.fields.purpose > 100 }}"))
    assert error.startswith(f"{tmp_path / 'typed.yaml'}:13: steps[2].when: step 'ask': ")
    assert "steps.fields.purpose > 100 puts text against a number" in error
    assert "fails at run time" in error
    assert "declare it `purpose: money` (or int, float) in step 'fields'" in error


def test_money_and_numbers_compare_and_load(tmp_path: Path) -> None:
    steps = (
        '  - id: big\n    when: "{{ steps.fields.amount > 100 and steps.fields.nights >= 2 }}"\n'
        "    end: true\n"
        '  - id: cheap\n    when: "{{ steps.fields.amount * 2 < steps.kind.confidence * 1000 }}"\n'
        "    end: true\n"
        "  - id: dated\n    when: \"{{ steps.fields.purpose > 'a' and steps.kind.get('x') }}\"\n"
        "    end: true\n"
    )
    assert _errors(tmp_path, steps) == []


def test_money_against_quoted_number_says_to_drop_the_quotes(tmp_path: Path) -> None:
    error = _one(tmp_path, _when("{{ steps.fields.amount >= '500' }}"))
    assert "steps.fields.amount >= '500' puts money against text" in error
    assert "write 500 without quotes" in error


def test_equality_of_text_and_number_is_never_true(tmp_path: Path) -> None:
    error = _one(tmp_path, '  - id: ask\n    when: "{{ steps.kind.label == 3 }}"\n    end: true\n')
    assert "steps.kind.label == 3 puts text against a number, which is never true" in error


def test_an_output_the_step_does_not_give_is_refused_with_what_it_gives(tmp_path: Path) -> None:
    error = _one(tmp_path, '  - id: ask\n    post: {text: "{{ steps.fields.amout }}"}\n')
    assert ":13: steps[2].post.text: step 'ask': step 'fields' has no output 'amout'" in error
    assert "did you mean amount?" in error
    assert "gives amount, purpose, nights, missing" in error


def test_a_when_without_braces_is_always_true_and_refused(tmp_path: Path) -> None:
    error = _one(tmp_path, '  - id: ask\n    when: "steps.fields.amount > 100"\n    end: true\n')
    assert ":13: steps[2].when: step 'ask': 'steps.fields.amount > 100' is plain text" in error
    assert 'when: "{{ steps.fields.amount > 100 }}"' in error


def test_a_switch_case_the_classifier_cannot_answer_is_refused_at_its_line(
    tmp_path: Path,
) -> None:
    steps = (
        "  - id: pick\n    switch:\n"
        '      value: "{{ steps.kind.label }}"\n'
        "      cases: {travel: done, software: done}\n"
        "      default: done\n"
        "  - id: done\n    end: true\n"
    )
    error = _one(tmp_path, steps)
    where = ":15: steps[2].switch.cases.software: step 'pick': "
    assert where + "case 'software' is never taken" in error
    assert "steps.kind.label is one of travel, hardware" in error


def test_a_switch_on_yes_no_with_yes_cases_is_refused(tmp_path: Path) -> None:
    steps = (
        "  - id: pick\n    switch:\n"
        '      value: "{{ steps.kind.triage }}"\n'
        "      cases: {'yes': done, 'True': done}\n"
        "  - id: done\n    end: true\n"
    )
    error = _one(tmp_path, steps)
    assert "case 'yes' is never taken: steps.kind.triage is yes/no" in error


def test_a_switch_on_money_is_refused(tmp_path: Path) -> None:
    steps = (
        "  - id: pick\n    switch:\n"
        '      value: "{{ steps.fields.amount }}"\n'
        "      cases: {'100': done}\n"
        "  - id: done\n    end: true\n"
    )
    error = _one(tmp_path, steps)
    assert ":14: steps[2].switch.value: step 'pick': steps.fields.amount is money" in error


def test_text_plus_a_number_is_refused(tmp_path: Path) -> None:
    error = _one(tmp_path, '  - id: ask\n    set: {n: "{{ steps.fields.purpose + 1 }}"}\n')
    assert "steps.fields.purpose + 1 puts text against a number" in error


def test_values_of_unknown_type_are_never_refused(tmp_path: Path) -> None:
    steps = (
        '  - id: ask\n    when: "{{ input.text > 3 or steps.fields.purpose | float > 3 }}"\n'
        "    end: true\n"
    )
    assert _errors(tmp_path, steps) == []


def test_an_approval_next_for_an_outcome_it_cannot_have_is_refused(tmp_path: Path) -> None:
    steps = (
        "  - id: ask\n    approve:\n      approvers: [U1]\n"
        "      outcomes: [{id: changes, label: Request changes}]\n"
        "      next: {reject: done, changes: done}\n"
        "  - id: done\n    end: true\n"
    )
    error = _one(tmp_path, steps)
    assert (
        ":16: steps[2].approve.next.reject: step 'ask': next: 'reject' is not an outcome" in error
    )
    assert "did you mean rejected? outcomes: approved, rejected, timed_out, changes" in error


def test_a_switch_on_an_approval_outcome_knows_its_outcomes(tmp_path: Path) -> None:
    steps = (
        "  - id: ask\n    approve: {approvers: [U1]}\n"
        "  - id: pick\n    switch:\n"
        '      value: "{{ steps.ask.outcome }}"\n'
        "      cases: {approved: done, declined: done}\n"
        "  - id: done\n    end: true\n"
    )
    error = _one(tmp_path, steps)
    assert "case 'declined' is never taken: steps.ask.outcome is one of approved, rejected" in error
