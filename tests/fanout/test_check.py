"""``check`` and the JSON Schema know ``foreach`` and ``parallel`` and their inner steps.

What an inner step refers to (its connection, its templates) is checked like any
step's, at the inner step's line; ``item``/``index`` exist only inside ``foreach.do``;
inner steps that would wait, jump or fan out again are refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from bot.settings import BUNDLED_TEMPLATES
from workflows.language.workflow import Workflow
from workflows.loader import CheckContext, load_folder

GOOD = """\
name: good
steps:
  - id: each
    foreach:
      items: "{{ input.text.split(',') }}"
      concurrency: 3
      on_failure: collect
      do:
        http: {connection: data, path: "/items/{{ item }}", params: {at: "{{ index }}"}}
  - id: both
    parallel:
      join: first_success
      steps:
        - id: ads
          http: {connection: data, path: /sources/ads}
        - id: note
          post: {template: approval_card}
  - id: after
    set: {n: "{{ steps.each.failed }}", w: "{{ steps.both.winner }}"}
"""


def _check(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "wf.yaml").write_text(text)
    context = CheckContext(templates_dir=BUNDLED_TEMPLATES, connections=frozenset({"data"}))
    errors = load_folder(tmp_path, context).errors
    return [f"{error.line}: {error.field}: {error.message}" for error in errors]


def test_a_sound_fan_out_passes(tmp_path: Path) -> None:
    assert _check(tmp_path, GOOD) == []


def test_inner_steps_references_are_checked_at_their_line(tmp_path: Path) -> None:
    bad = GOOD.replace("connection: data, path: /sources", "connection: nope, path: /sources")
    bad = bad.replace("approval_card", "no_such_card")
    assert _check(tmp_path, bad) == [
        "15: steps[1].parallel.steps[0].http.connection: connection 'nope' is not declared",
        "17: steps[1].parallel.steps[1].post.template: no template no_such_card.json.j2 in "
        "templates/",
    ]


def test_item_is_seen_only_inside_foreach_do(tmp_path: Path) -> None:
    outside = GOOD.replace('{n: "{{ steps.each.failed }}"', '{n: "{{ item }}"')
    assert _check(tmp_path, outside) == [
        "19: steps[2].set.n: unknown name 'item' (expressions see input, run, steps)"
    ]
    in_items = GOOD.replace("input.text.split(',')", "item")
    (error,) = _check(tmp_path, in_items)
    assert error.startswith("5: steps[0].foreach.items: unknown name 'item'")


def test_inner_steps_that_wait_jump_or_fan_out_are_refused(tmp_path: Path) -> None:
    approve = GOOD.replace(
        '        http: {connection: data, path: "/items/{{ item }}", params: {at: "{{ index }}"}}',
        "        approve: {approvers: [U1]}",
    )
    (error,) = _check(tmp_path, approve)
    assert "steps[0].foreach.do" in error
    assert "approve steps cannot run inside foreach or parallel" in error
    nested = GOOD.replace(
        "        - id: ads\n          http: {connection: data, path: /sources/ads}",
        "        - id: ads\n          foreach: {items: '{{ [1] }}', do: {set: {x: 1}}}",
    )
    (error,) = _check(tmp_path, nested)
    assert "foreach steps cannot run inside foreach or parallel" in error
    twins = GOOD.replace("- id: note", "- id: ads")
    (error,) = _check(tmp_path, twins)
    assert "branch ids must be distinct" in error


def test_the_json_schema_covers_foreach_and_parallel() -> None:
    schema = Workflow.model_json_schema(by_alias=True)
    text = json.dumps(schema)
    assert '"foreach"' in text and '"parallel"' in text and '"on_failure"' in text
    jsonschema.validate(yaml.safe_load(GOOD), schema)  # do needs no id, as in the loader
    broken = yaml.safe_load(GOOD.replace("on_failure: collect", "on_failure: sometimes"))
    waits = yaml.safe_load(GOOD)
    waits["steps"][0]["foreach"]["do"] = {"approve": {"approvers": ["U1"]}}
    for document in (broken, waits):
        try:
            jsonschema.validate(document, schema)
        except jsonschema.ValidationError:
            continue
        raise AssertionError(f"the schema accepted {document['steps'][0]}")
