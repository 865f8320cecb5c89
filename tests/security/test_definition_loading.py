"""Loading definitions a user wrote: bounded, strict, and never a traceback (findings 8 and 9).

A workflow file is operator input, but one careless or hostile file must not take
``serve`` or ``check`` down (alias bombs, deep nesting), silently change meaning
(duplicate keys), or carry sandbox-escape attempts and backtracking regexes into
the running bot. Each case is checked through ``switchboard check`` as a subprocess
or through the same loading ``serve`` does, with a good workflow beside the bad one.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.settings import BUNDLED_TEMPLATES
from tests.engine_proof.support import SWITCHBOARD
from tests.support.harness import running_bot
from tests.support.stores import Database
from workflows.loader import CheckContext, DefinitionError, load_file, load_folder

GOOD = """\
name: good
triggers:
  - command: good
steps:
  - id: hello
    set: {greeting: "hi {{ input.text }}"}
"""

# The classic "billion laughs": 9 levels of 9 aliases each, 9^9 strings once expanded.
ALIAS_BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)

FOUR_EYES_TWICE = """\
name: four-eyes
steps:
  - id: ask
    approve:
      approvers: [U0001]
      not_requester: true
      min_approvals: 1
      not_requester: false
"""


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(source, encoding="utf-8")
    return path


def check_context() -> CheckContext:
    return CheckContext(templates_dir=BUNDLED_TEMPLATES, connections=frozenset())


def only_error(folder: Path, name: str) -> DefinitionError:
    """Load ``folder`` with a good workflow beside ``name``: the good one loads, ``name`` fails."""
    write(folder, "good", GOOD)
    result = load_folder(folder, check_context())
    assert list(result.workflows) == ["good"], [str(e) for e in result.errors]
    assert len(result.errors) == 1, [str(e) for e in result.errors]
    [error] = result.errors
    assert error.file == str(folder / f"{name}.yaml")
    assert "\n" not in str(error)
    return error


# Runs the command as its own child and prints that child's peak RSS (KiB) last on stderr.
# Measured from this small process, not from pytest: on Linux a forked child's ru_maxrss
# starts from its parent's RSS at the fork, so a child of a long-running pytest process
# would report pytest's hundreds of MiB, not its own.
_MEASURE = """
import os, resource, subprocess, sys
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
child = subprocess.Popen(sys.argv[1:], preexec_fn=cap)
_pid, status, usage = os.wait4(child.pid, 0)
print(usage.ru_maxrss, file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def check_cli(folder: Path) -> tuple[subprocess.CompletedProcess[str], int, float]:
    """``switchboard check folder`` under a 2 GiB address-space cap: (result, peak KiB, seconds)."""
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{folder}/unused.db"}
    started = time.monotonic()
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(SWITCHBOARD), "check", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    *stderr, peak = measured.stderr.splitlines() or ["0"]
    result = subprocess.CompletedProcess(
        measured.args, measured.returncode, measured.stdout, "\n".join(stderr)
    )
    return result, int(peak), elapsed


# --- finding 8: alias bombs, deep nesting, size -------------------------------------------


@pytest.mark.timing  # asserts a time bound: runs in make test's serial phase
def test_alias_bomb_is_refused_in_check_quickly_with_little_memory(tmp_path: Path) -> None:
    assert len(ALIAS_BOMB) < 400
    write(tmp_path, "bomb", ALIAS_BOMB)
    write(tmp_path, "good", GOOD)
    result, peak_kib, elapsed = check_cli(tmp_path)
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out[-2000:]
    assert result.returncode == 1, out[-2000:]
    lines = result.stdout.splitlines()
    assert f"{tmp_path / 'bomb.yaml'}:1: aliases and anchors are not allowed (&a)" in lines, out[
        -2000:
    ]
    assert lines[-1] == "1 workflow ok, 1 error"
    assert peak_kib < 400 * 1024, f"check peaked at {peak_kib // 1024} MiB"
    assert elapsed < 20, f"check took {elapsed:.1f} s"  # mostly interpreter start-up


@pytest.mark.timing  # asserts a time bound: runs in make test's serial phase
def test_alias_bomb_is_refused_by_the_loading_serve_does_in_under_a_second(
    tmp_path: Path,
) -> None:
    write(tmp_path, "bomb", ALIAS_BOMB)
    tracemalloc.start()
    started = time.monotonic()
    try:
        error = only_error(tmp_path, "bomb")
        elapsed = time.monotonic() - started
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (error.line, error.message) == (1, "aliases and anchors are not allowed (&a)")
    assert elapsed < 1.0
    assert peak < 20 << 20, f"loading peaked at {peak >> 20} MiB"


async def test_serve_starts_with_the_good_workflow_beside_an_alias_bomb(
    database: Database, tmp_path: Path
) -> None:
    write(tmp_path, "bomb", ALIAS_BOMB)
    write(tmp_path, "good", GOOD)
    async with running_bot(database, workflows_dir=tmp_path) as bot:
        assert list(bot.runtime.workflows) == ["good"]
        [error] = bot.runtime.definition_errors
        assert str(error) == f"{tmp_path / 'bomb.yaml'}:1: aliases and anchors are not allowed (&a)"


def test_an_anchor_alone_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "anchor", "name: &n anchored\nsteps:\n  - id: a\n    set: {x: 1}\n")
    error = only_error(tmp_path, "anchor")
    assert (error.line, error.message) == (1, "aliases and anchors are not allowed (&n)")


def test_ten_thousand_levels_of_nesting_give_one_line_in_check(tmp_path: Path) -> None:
    write(tmp_path, "deep", "name: deep\nsteps: " + "[" * 10_000 + "\n")
    write(tmp_path, "good", GOOD)
    result, _peak, _elapsed = check_cli(tmp_path)
    out = result.stdout + result.stderr
    assert "Traceback" not in out and "RecursionError" not in out, out[-2000:]
    assert f"{tmp_path / 'deep.yaml'}:2: nested deeper than 32 levels" in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1] == "1 workflow ok, 1 error"


def test_deep_nesting_is_refused_by_the_loader(tmp_path: Path) -> None:
    write(tmp_path, "deep", "name: deep\nsteps:\n" + "  " + "- " * 40 + "x\n")
    error = only_error(tmp_path, "deep")
    assert (error.line, error.message) == (3, "nested deeper than 32 levels")


def test_a_file_over_256_kib_is_refused_without_parsing(tmp_path: Path) -> None:
    padding = "# " + "x" * 1000 + "\n"
    write(tmp_path, "huge", GOOD + padding * 300)
    error = only_error(tmp_path, "huge")
    assert (error.line, error.message) == (1, "file is larger than 256 KiB")


def test_a_fifo_named_like_a_workflow_does_not_block_loading(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")  # open() on it would wait for a writer forever
    error = only_error(tmp_path, "pipe")
    assert (error.line, error.message) == (1, "cannot read: not a regular file")


@pytest.mark.parametrize("template", ["x" * 300, "../secrets/card"])
def test_a_template_name_must_be_a_name(tmp_path: Path, template: str) -> None:
    write(
        tmp_path, "card", f"name: card\nsteps:\n  - id: a\n    post: {{template: '{template}'}}\n"
    )
    error = only_error(tmp_path, "card")
    assert (error.line, error.field) == (4, "steps[0].post.template"), str(error)
    assert error.message == "a template name is letters, digits and _"


def test_connections_yaml_is_read_as_strictly(tmp_path: Path) -> None:
    from bot.connections import read_connections
    from bot.settings import ConfigurationError

    (tmp_path / "connections.yaml").write_text(ALIAS_BOMB, encoding="utf-8")
    with pytest.raises(ConfigurationError) as bomb:
        read_connections(tmp_path)
    where = tmp_path / "connections.yaml"
    assert str(bomb.value) == (
        f"configuration error: {where}:1: aliases and anchors are not allowed (&a)"
    )
    (tmp_path / "connections.yaml").write_text(
        "connections:\n  erp: {type: http, base_url: 'https://a'}\n"
        "  erp: {type: http, base_url: 'https://b'}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigurationError) as twice:
        read_connections(tmp_path)
    assert str(twice.value).endswith(":3: duplicate key 'erp' (first at line 2)")


# --- finding 9: duplicate keys --------------------------------------------------------------


def test_a_duplicate_top_level_key_is_an_error_at_its_line(tmp_path: Path) -> None:
    write(tmp_path, "twice", "name: twice\nsteps:\n  - id: a\n    set: {x: 1}\nname: other\n")
    error = only_error(tmp_path, "twice")
    assert (error.line, error.message) == (5, "duplicate key 'name' (first at line 1)")


def test_four_eyes_cannot_be_switched_off_by_a_second_key(tmp_path: Path) -> None:
    write(tmp_path, "four-eyes", FOUR_EYES_TWICE)
    error = only_error(tmp_path, "four-eyes")
    assert (error.line, error.message) == (8, "duplicate key 'not_requester' (first at line 6)")


def test_a_duplicate_key_in_a_flow_mapping_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "flow", "name: flow\nsteps:\n  - id: a\n    set: {x: 1, y: 2, x: 3}\n")
    error = only_error(tmp_path, "flow")
    assert (error.line, error.message) == (4, "duplicate key 'x' (first at line 4)")


def test_merge_keys_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "merge", "name: merge\nsteps:\n  - id: a\n    set: {<<: {x: 1}, x: 2}\n")
    error = only_error(tmp_path, "merge")
    assert (error.line, error.message) == (4, "merge keys (<<) are not allowed")


# --- what check refuses in a valid-looking definition ---------------------------------------


@pytest.mark.parametrize("step_id", ["get", "items", "keys", "values", "pop", "update", "copy"])
def test_step_ids_that_name_mapping_methods_are_refused(tmp_path: Path, step_id: str) -> None:
    write(
        tmp_path,
        "reserved",
        f"name: reserved\nsteps:\n  - id: x\n    set: {{a: 1}}\n"
        f"  - id: {step_id}\n    set: {{b: 2}}\n",
    )
    error = only_error(tmp_path, "reserved")
    assert (error.line, error.field) == (5, "steps[1].id"), str(error)
    assert f"step id {step_id!r} is reserved" in error.message
    assert f"steps.{step_id} means the mapping's method" in error.message


NAMED_LIKE_METHODS = {
    "form input": (
        "inputs:\n  - {id: items, label: Items}\nsteps:\n  - id: a\n    set: {x: 1}\n",
        "input id 'items'",
    ),
    "set key": ("steps:\n  - id: a\n    set: {keys: 1}\n", "output 'keys'"),
    "extract field": (
        "steps:\n  - id: a\n    extract: {fields: {values: {type: str, pattern: 'v(.)'}}}\n",
        "output 'values'",
    ),
}


@pytest.mark.parametrize("where", sorted(NAMED_LIKE_METHODS))
def test_names_authors_give_values_cannot_shadow_mapping_methods(
    tmp_path: Path, where: str
) -> None:
    # `{{ input.items }}` / `{{ steps.a.keys }}` would read the dict's method, not the value.
    body, named = NAMED_LIKE_METHODS[where]
    write(tmp_path, "shadow", "name: shadow\ntriggers: [{command: shadow}]\n" + body)
    error = only_error(tmp_path, "shadow")
    assert named in error.message and "mapping's method" in error.message, str(error)


ESCAPES = {
    "attr_class": "{{ steps.a|attr('__class__') }}",
    "attr_dynamic": "{{ steps.a|attr('__cla' ~ 'ss__') }}",
    "map_globals": "{{ steps.a.x|map(attribute='__globals__')|list }}",
    "dotted_attribute": "{{ steps.a.x|sort(attribute='y.__class__') }}",
    "mro_call": "{{ steps.a.x.mro() }}",
    "unknown_name": "{{ request.text }}",
    "unknown_filter": "{{ steps.a|le }}",
    "outside_namespace": "{{ lipsum() }}",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_sandbox_escape_attempts_in_expressions_are_refused(tmp_path: Path, name: str) -> None:
    source = ESCAPES[name].replace("'", "''")
    write(
        tmp_path,
        "escape",
        f"name: escape\nsteps:\n  - id: a\n    set: {{x: 1}}\n"
        f"  - id: b\n    set:\n      y: '{source}'\n",
    )
    error = only_error(tmp_path, "escape")
    assert (error.line, error.field) == (7, "steps[1].set.y"), str(error)
    reasons = ("unsafe expression", "unknown name", "No filter named")
    assert any(reason in error.message for reason in reasons), str(error)


@pytest.mark.parametrize(
    "nested", ["-(" * 300 + "1" + ")" * 300, "(" * 5000 + "1", "- " * 900 + "1"]
)
def test_deeply_nested_expressions_are_refused_quickly(tmp_path: Path, nested: str) -> None:
    write(
        tmp_path,
        "nested",
        f"name: nested\nsteps:\n  - id: a\n    set: {{x: '{{{{ {nested} }}}}'}}\n",
    )
    started = time.monotonic()
    error = only_error(tmp_path, "nested")
    assert time.monotonic() - started < 1.0
    assert (error.line, error.field) == (4, "steps[0].set.x"), str(error)
    assert error.message.startswith("bad expression: nested"), str(error)


def test_expressions_that_use_the_namespace_and_local_names_are_accepted(tmp_path: Path) -> None:
    write(
        tmp_path,
        "fine",
        (
            "name: fine\nsteps:\n  - id: a\n    set: {x: [1, 2]}\n  - id: b\n    set:\n"
            '      y: "{% for v in steps.a.x %}{{ v }} {{ loop.index }}{% endfor %}"\n'
            "      z: \"{{ steps.get('a') | attr('x') }} {{ run.id }} {{ range(3) | list }}\"\n"
            "      w: \"{{ steps.a.x|map(attribute='real')|list }} {{ input.text|default('') }}\"\n"
        ),
    )
    result = load_folder(tmp_path, check_context())
    assert result.errors == [] and list(result.workflows) == ["fine"]


# --- regexes in message triggers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [(r"(a)\1", "backreference"), (r"foo(?=bar)", "lookahead"), (r"(?<!x)y", "lookbehind")],
)
def test_check_refuses_patterns_re2_cannot_run(tmp_path: Path, pattern: str, fragment: str) -> None:
    write(
        tmp_path,
        "regex",
        "name: regex\ntriggers:\n  - message:\n      channel: '#general'\n"
        f"      match: '{pattern}'\nsteps:\n  - id: a\n    set: {{x: 1}}\n",
    )
    error = only_error(tmp_path, "regex")
    assert (error.line, error.field) == (5, "triggers[0].message.match"), str(error)
    assert "linear-time" in error.message and fragment in error.message, str(error)


@pytest.mark.timing  # asserts a time bound: runs in make test's serial phase
async def test_a_catastrophic_pattern_cannot_stall_intake(
    database: Database, tmp_path: Path
) -> None:
    write(
        tmp_path,
        "greedy",
        (
            "name: greedy\ntriggers:\n  - message: {channel: '#general', match: '(a+)+$'}\n"
            "steps:\n  - id: hello\n    post: {text: 'matched'}\n"
        ),
    )
    async with running_bot(database, workflows_dir=tmp_path) as bot:
        assert bot.runtime.definition_errors == []
        started = time.monotonic()
        missed = await bot.slack.user_posts("alice", "#general", "a" * 50_000 + "!")
        elapsed = time.monotonic() - started
        assert elapsed < 0.5, f"intake took {elapsed:.2f} s on a backtracking pattern"
        hit = await bot.slack.user_posts("alice", "#general", "a" * 50_000)
        await bot.slack.wait_for(
            lambda: any(m["text"] == "matched" for m in bot.slack.thread("#general", hit["ts"])),
            timeout=10,
            message="the matching message started no run",
        )
        assert len(bot.slack.thread("#general", missed["ts"])) == 1, "no run for a non-match"


EXTRACTOR = """\
name: extractor
triggers: [{command: extractor}]
steps:
  - id: fields
    extract:
      fields:
        code: {pattern: '%s'}
"""


def test_check_refuses_extract_patterns_re2_cannot_run(tmp_path: Path) -> None:
    write(tmp_path, "extractor", EXTRACTOR % r"(a)\1")
    error = only_error(tmp_path, "extractor")
    assert (error.line, error.field) == (6, "steps[0].extract.fields"), str(error)
    assert error.message.startswith("field 'code': bad regular expression"), str(error)
    assert "linear-time" in error.message and "backreference" in error.message, str(error)


@pytest.mark.timing  # asserts a time bound: runs in make test's serial phase
def test_a_catastrophic_extract_pattern_cannot_stall_a_run(tmp_path: Path) -> None:
    # The offline extractor runs author patterns on request text; Python's re would hold the
    # GIL for hours on this one, so the run goes through `switchboard test` in a subprocess.
    path = write(tmp_path, "extractor", EXTRACTOR % "(a+)+$")
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/unused.db"}
    text = "a" * 5_000 + "!"
    command = [str(SWITCHBOARD), "test", str(path), "--text", text]
    try:
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=30, check=False
        )
    except subprocess.TimeoutExpired:
        result = None
    assert result is not None, "the extract step backtracked on its pattern for 30 s"
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out[-2000:]
    assert "could not" in out or "missing" in out, out[-2000:]


# --- property: the loader only ever answers with its own one-line errors ---------------------

ALPHABET = list(":-[]{}&*!|>'\"#%@`,?\n\t <=\\") + ["  ", "\n  - ", "{{", "}}", "a", "1"]


@pytest.mark.timing  # asserts a time bound: runs in make test's serial phase
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), edits=st.integers(1, 12))
def test_the_loader_never_raises_on_mutated_yaml(seed: int, edits: int) -> None:
    rng = random.Random(seed)
    text = FOUR_EYES_TWICE.replace("      not_requester: false\n", "") + GOOD.split("steps:\n")[1]
    for _ in range(edits):
        at = rng.randrange(len(text) + 1)
        cut = rng.choice([0, 0, 1, 3])
        text = text[:at] + rng.choice(ALPHABET) * rng.choice([1, 1, 2, 40]) + text[at + cut :]
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), "mutated", text)
        started = time.monotonic()
        workflow, errors = load_file(path, check_context())
        elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"{elapsed:.2f} s on {text!r}"
    assert (workflow is None) == bool(errors)
    for error in errors:
        assert isinstance(error, DefinitionError)
        assert "\n" not in str(error) and str(error).startswith(f"{path}:"), str(error)
