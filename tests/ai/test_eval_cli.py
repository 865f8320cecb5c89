"""``switchboard eval``: arguments, data formats, the numbers it prints, and the CLINC example.

One full CLI run loads the real local model; the other scoring tests share one
``LocalProvider`` through ``run_eval(provider=...)``. Every bad argument or file is
checked to give exactly one line and exit 2 before any model is loaded.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from rich.console import Console
from typer.testing import CliRunner

from bot.cli import app
from bot.eval import EvalOptions, run_eval
from bot.eval_data import classify_step, label_specs, read_data, resolve_workflow
from bot.settings import Settings, load_settings
from connectors.ai.base import ClassifyRequest
from connectors.ai.evaluation import OUT_OF_SCOPE, TRIAGE, routing_matrix
from connectors.ai.local import LocalProvider
from tests.fakes.openai_server import Fail, FakeOpenAI
from workflows.language.steps.ai import ClassifyStep
from workflows.language.steps.route import RouteStep

from .conftest import ProviderFactory

in_module_loop = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parents[2]
CLINC = ROOT / "examples" / "clinc"

WORKFLOW = {
    "name": "helpdesk",
    "steps": [
        {
            "id": "classify",
            "classify": {
                "min_confidence": 0.3,
                "labels": {
                    "billing": {
                        "examples": [
                            "I was charged twice for my subscription",
                            "please send me a copy of last month's invoice",
                            "I need a refund for the cancelled order",
                            "my card payment was declined at checkout",
                        ]
                    },
                    "access": {
                        "examples": [
                            "I forgot my password and cannot log in",
                            "please give me access to the finance shared drive",
                            "my account is locked after too many attempts",
                            "I need admin rights on the build server",
                        ]
                    },
                    "hardware": {
                        "examples": [
                            "my laptop will not turn on",
                            "the external monitor keeps flickering",
                            "I need a new charger for my phone",
                            "the keyboard on my laptop is missing a key",
                        ]
                    },
                },
            },
        },
        {"id": "note", "set": {"label": "{{ steps.classify.label }}"}},
    ],
}

ROWS = [
    ("the invoice total is wrong, please refund the difference", "billing"),
    ("I got billed two times this month", "billing"),
    ("my password expired and I am locked out", "access"),
    ("can I get permission to the marketing folder", "access"),
    ("my laptop battery is swollen", "hardware"),
    ("the docking station does not detect my monitor", "hardware"),
    ("what is the capital of australia", "triage"),
    ("tell me a joke about penguins", ""),
    ("who won the football game last night", "oos"),
]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workflows folder with ``helpdesk`` and data files; settings read from it only."""
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "helpdesk.yaml").write_text(yaml.safe_dump(WORKFLOW), encoding="utf-8")
    with (tmp_path / "data.csv").open("w", encoding="utf-8") as fh:
        fh.write("text,label\n")
        for text, label in ROWS:
            fh.write(f'"{text}",{label}\n')
    (tmp_path / "data.jsonl").write_text(
        "".join(json.dumps({"text": t, "label": lb or None}) + "\n" for t, lb in ROWS),
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("SWITCHBOARD_WORKFLOWS", str(workflows))
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def settings(folder: Path) -> Settings:
    return load_settings()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def local() -> AsyncIterator[LocalProvider]:
    provider = LocalProvider()
    await provider.load()
    yield provider
    await provider.aclose()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


# --- one line per problem ----------------------------------------------------------------


def _write(folder: Path, name: str, text: str) -> str:
    (folder / name).write_text(text, encoding="utf-8")
    return name


BAD_CASES: list[tuple[list[str], str]] = [
    (["eval", "helpdesk"], "eval needs --data FILE"),
    (["eval", "helpdesk", "--data", "data.csv", "--limit", "0"], "--limit must be at least 1"),
    (["eval", "helpdesk", "--data", "data.csv", "--min-confidence", "1.5"], "between 0 and 1"),
    (["eval", "nope", "--data", "data.csv"], "no workflow 'nope' in"),
    (["eval", "missing.yaml", "--data", "data.csv"], "missing.yaml: no such workflow file"),
    (["eval", "helpdesk", "--data", "data.csv", "--step", "zzz"], "has no step 'zzz'"),
    (["eval", "helpdesk", "--data", "data.csv", "--step", "note"], "is not a classify step"),
    (["eval", "helpdesk", "--data", "nowhere.csv"], "nowhere.csv: no such data file"),
    (
        ["eval", "helpdesk", "--data", "data.csv", "--confusion-png", "no/such/dir/m.png"],
        "no such folder",
    ),
    (["eval", "helpdesk", "--data", "data.csv", "--confusion-png", "m.jpg"], "must end in .png"),
]


@pytest.mark.parametrize(("args", "message"), BAD_CASES, ids=[m for _, m in BAD_CASES])
def test_bad_arguments_give_one_line(
    folder: Path, runner: CliRunner, args: list[str], message: str
) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output
    assert "Traceback" not in result.output


BAD_FILES: list[tuple[str, str, str]] = [
    ("nolabel.csv", "text,owner\nhello,billing\n", "needs a header with text and label"),
    (
        "badjson.jsonl",
        '{"text": "a", "label": "billing"}\n{"text": \n',
        "badjson.jsonl:2: not JSON",
    ),
    ("nolabelkey.jsonl", '{"text": "a"}\n', 'nolabelkey.jsonl:1: no "label"'),
    ("notext.jsonl", '{"label": "billing"}\n', 'want an object with a "text" string'),
    ("unknown.csv", "text,label\nhello,billing\nhi there,sales\n", "unknown.csv:3: label 'sales'"),
    ("empty.csv", "text,label\n", "no labelled rows"),
    ("blank.csv", "text,label\n,billing\n", "blank.csv:2: empty text"),
]


@pytest.mark.parametrize(
    ("name", "content", "message"), BAD_FILES, ids=[n for n, _, _ in BAD_FILES]
)
def test_bad_data_files_give_one_line_with_file_and_line(
    folder: Path, runner: CliRunner, name: str, content: str, message: str
) -> None:
    result = runner.invoke(app, ["eval", "helpdesk", "--data", _write(folder, name, content)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


def test_a_broken_workflow_file_is_reported_by_file_and_line(
    folder: Path, runner: CliRunner
) -> None:
    broken = _write(folder, "broken.yaml", "name: broken\nsteps:\n  - id: a\n    classify: {}\n")
    result = runner.invoke(app, ["eval", broken, "--data", "data.csv"])
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith("broken.yaml:4: steps[0].classify")


def test_out_of_scope_spellings_and_own_labels(folder: Path) -> None:
    examples = read_data(folder / "data.csv", ["billing", "access", "hardware"])
    assert [e.label for e in examples[-3:]] == [None, None, None]
    assert read_data(folder / "data.jsonl", ["billing", "access", "hardware"]) == examples
    assert len(read_data(folder / "data.jsonl", ["billing", "access", "hardware"], limit=4)) == 4
    # A step that really has a label called "triage" keeps it.
    own = read_data(folder / "data.csv", ["billing", "access", "hardware", "triage"])
    assert own[6].label == "triage" and own[7].label is None


# --- the numbers -------------------------------------------------------------------------


def test_eval_prints_every_measure_and_writes_the_png(folder: Path, runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["eval", "helpdesk", "--data", "data.csv", "--confusion-png", "matrix.png"]
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    for measure in (
        "accuracy (in scope, best label)",
        "sent to triage (all rows)",
        "accuracy of the rest (routed)",
        "in scope routed to the right label",
        "out of scope sent to triage",
        "latency p50 / p99",
        "precision",
        "recall",
        "routed to (rows: truth; T: triage)",
        "(out of scope)",
    ):
        assert measure in out, measure
    assert "6 in / 3 out of scope" in out
    assert (folder / "matrix.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@in_module_loop
async def test_scores_match_the_step_single_calls(
    folder: Path, settings: Settings, local: LocalProvider
) -> None:
    options = EvalOptions("helpdesk", folder / "data.jsonl")
    result = await run_eval(options, settings, provider=local, console=quiet())
    assert result.threshold == 0.3 and len(result.records) == len(ROWS)
    assert len(result.latencies_ms) == len(ROWS)
    step = classify_step(resolve_workflow("helpdesk", settings.workflows_dir), None)
    labels = label_specs(step.classify)
    for (text, _), record in zip(ROWS, result.records, strict=True):
        single = await local.classify(ClassifyRequest(text=text, labels=labels))
        # Batched embedding pads differently from a single text: equal to float noise.
        assert record.predicted == single.label
        assert record.confidence == pytest.approx(single.confidence, abs=2e-3)


@in_module_loop
async def test_min_confidence_and_limit_override(
    folder: Path, settings: Settings, local: LocalProvider
) -> None:
    options = EvalOptions("helpdesk", folder / "data.csv", limit=5, min_confidence=1.0)
    result = await run_eval(options, settings, provider=local, console=quiet())
    assert result.threshold == 1.0 and len(result.records) == 5
    matrix = routing_matrix(result.records, result.threshold, result.labels)
    # At 1.0 nothing is sure enough: everything went to triage.
    assert all(row[-1] == sum(row) for row in matrix.counts)
    assert matrix.columns[-1] == TRIAGE and OUT_OF_SCOPE not in matrix.rows


@in_module_loop
async def test_remote_provider_one_call_each_failures_go_to_triage(
    folder: Path,
    settings: Settings,
    fake_openai: FakeOpenAI,
    make_provider: ProviderFactory,
) -> None:
    fake_openai.script(Fail(400))  # one request is refused outright
    options = EvalOptions(str(folder / "workflows" / "helpdesk.yaml"), folder / "data.csv")
    result = await run_eval(
        options, settings, provider=make_provider(max_retries=0), console=quiet()
    )
    assert len(fake_openai.requests) == len(ROWS)
    assert result.provider == "openai" and result.failures == 1
    failed = [r for r in result.records if not r.predicted]
    assert len(failed) == 1 and failed[0].confidence == 0.0
    matrix = routing_matrix(result.records, result.threshold, result.labels)
    assert sum(row[-1] for row in matrix.counts) >= 1


# --- the bundled CLINC150 example ----------------------------------------------------------


def test_clinc_example_is_what_the_generator_makes(tmp_path: Path) -> None:
    """The committed files are reproducible from the fixed seed (no model needed)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_workflow", CLINC / "make_workflow.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path in module.generate(tmp_path):
        assert path.read_bytes() == (CLINC / path.name).read_bytes(), path.name


def test_clinc_workflow_loads_and_has_the_bar_setting() -> None:
    from workflows.loader import CheckContext, load_file

    workflow, errors = load_file(CLINC / "clinc-routing.yaml", CheckContext())
    assert workflow is not None, errors
    step = workflow.steps[0]
    assert isinstance(step, ClassifyStep)
    spec = step.classify
    assert len(spec.labels) == 10
    assert all(len(d.example_groups) == 15 for d in spec.labels.values())
    assert all(len(ex) == 10 for d in spec.labels.values() for ex in d.example_groups.values())
    route = workflow.steps[1]
    assert isinstance(route, RouteStep) and route.route.triage == "#triage"
    assert set(route.route.owners) == set(spec.labels)
    lines = (CLINC / "test_with_oos.jsonl").read_text(encoding="utf-8").splitlines()
    labels = [json.loads(line)["label"] for line in lines]
    assert len(labels) == 5500 and labels.count("triage") == 1000
    assert set(labels) - {"triage"} == set(spec.labels)
