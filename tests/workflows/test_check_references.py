"""``check`` follows every reference a step makes: jump targets, templates, connections.

The references come from the step models themselves (``jump_targets()``,
``templates()``, ``connection()``, ``expressions()``), so a kind's new field that
names a step or a template is checked without the loader knowing the kind.
Each problem is reported at the line of the field that holds it.
"""

from __future__ import annotations

from pathlib import Path

from bot.settings import BUNDLED_TEMPLATES
from workflows.loader import CheckContext, DefinitionError, load_folder

DANGLING = """\
name: dangling
steps:
  - id: kind
    classify:
      labels: {it: {}, hr: {}}
      on_low_confidence: nobody-home
  - id: ask
    approve:
      approvers: [U1]
      template: no_such_card
      timeout: 1h
      on_timeout: {goto: lost}
      next: {rejected: gone}
  - id: done
    end: true
"""

SOUND = """\
name: sound
steps:
  - id: kind
    classify:
      labels: {it: {}, hr: {}}
      on_low_confidence: ask
  - id: ask
    approve:
      approvers: [U1]
      template: approval_card
      timeout: 1h
      on_timeout: {goto: done}
      next: {rejected: done}
  - id: done
    end: true
"""


def _load(folder: Path, name: str, source: str) -> tuple[list[str], list[DefinitionError]]:
    (folder / f"{name}.yaml").write_text(source)
    result = load_folder(folder, CheckContext(templates_dir=BUNDLED_TEMPLATES))
    return list(result.workflows), result.errors


def test_every_dangling_reference_is_reported_at_its_line(tmp_path: Path) -> None:
    loaded, errors = _load(tmp_path, "dangling", DANGLING)
    assert loaded == []
    found = sorted((e.line, e.field, e.message) for e in errors)
    assert found == [
        (6, "steps[0].classify.on_low_confidence", "jumps to unknown step 'nobody-home'"),
        (10, "steps[1].approve.template", "no template no_such_card.json.j2 in templates/"),
        (12, "steps[1].approve.on_timeout.goto", "jumps to unknown step 'lost'"),
        (13, "steps[1].approve.next.rejected", "jumps to unknown step 'gone'"),
    ], [str(e) for e in errors]
    assert all(e.file == str(tmp_path / "dangling.yaml") for e in errors)


def test_the_same_references_pointing_at_real_steps_load(tmp_path: Path) -> None:
    loaded, errors = _load(tmp_path, "sound", SOUND)
    assert (loaded, [str(e) for e in errors]) == (["sound"], [])


def test_a_step_that_jumps_to_itself_without_waiting_is_refused(tmp_path: Path) -> None:
    source = "name: spin\nsteps:\n  - id: a\n    set: {x: 1}\n    goto: a\n"
    loaded, errors = _load(tmp_path, "spin", source)
    assert loaded == []
    assert [(e.line, e.field, e.message) for e in errors] == [
        (5, "steps[0].goto", "jumps to itself: the run would loop forever without waiting")
    ]


def test_a_waiting_step_may_come_back_to_itself(tmp_path: Path) -> None:
    # A reminder loop: each pass waits for people, so it never spins.
    source = SOUND.replace("next: {rejected: done}", "next: {rejected: ask}")
    loaded, errors = _load(tmp_path, "sound", source)
    assert (loaded, [str(e) for e in errors]) == (["sound"], [])


def test_a_bad_template_name_in_an_approve_step_is_refused(tmp_path: Path) -> None:
    source = SOUND.replace("template: approval_card", "template: ../etc/passwd")
    loaded, errors = _load(tmp_path, "sound", source)
    assert loaded == []
    assert [(e.line, e.field, e.message) for e in errors] == [
        (10, "steps[1].approve.template", "a template name is letters, digits and _")
    ]
