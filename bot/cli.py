"""``switchboard``: the command line (Typer). Each command builds what it needs from the settings.

Errors an operator can fix (a bad setting, a bad definition, an unknown run)
print one line naming the problem and exit non-zero; never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from bot.cli_support import counted, fail, settings, workspace_errors
from bot.cli_support import run as _run
from bot.db_ready import NOT_READY_EXIT, DatabaseNotReady, ready_store
from bot.examples_cli import examples_app
from bot.reports import report_app
from bot.retention_commands import forget_command, purge_command
from bot.run_commands import cancel_command, retry_command
from bot.settings import ConfigurationError, Settings, open_store
from bot.versions_table import workflows_command
from bot.workflow_test_cli import workflow_test_command

T = TypeVar("T")

app = typer.Typer(
    help="Switchboard: a Slack bot that runs your team's workflows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(report_app, name="report")
app.add_typer(examples_app, name="examples")  # bot/examples_cli.py
app.command("purge")(purge_command)
app.command("forget")(forget_command)
app.command("workflows")(workflows_command)
app.command("test")(workflow_test_command)  # bot/workflow_test_cli.py
app.command("cancel")(cancel_command)
app.command("retry")(retry_command)


@app.command()
def serve(
    host: str = "0.0.0.0",
    port: int = 3000,
    worker: Annotated[bool, typer.Option("--worker/--no-worker", help="Run workers here")] = True,
    scheduler: Annotated[
        bool | None,
        typer.Option(
            "--scheduler/--no-scheduler",
            help="Fire schedules and threshold checks here [default: SWITCHBOARD_SCHEDULER, on]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """HTTP ingress (/slack/events, /hooks/*), workers and scheduler in one process."""
    from bot.serve import serve_http

    config = settings()
    if scheduler is not None:
        config = config.model_copy(update={"run_scheduler": scheduler})
    _setup_logging(config)
    _run(serve_http(config, host=host, port=port, run_workers=1 if worker else 0))


@app.command()
def demo(
    port: int = typer.Option(3000, min=0, max=65535, help="0 picks a free port"),
    host: str = "127.0.0.1",
    database: Annotated[
        Path | None,
        typer.Option(help="SQLite file (default: DATABASE_URL, else ./switchboard-demo.db)"),
    ] = None,
    reset: Annotated[bool, typer.Option(help="Start from an empty SQLite database")] = False,
    workflows: Annotated[
        Path | None,
        typer.Option(help="Demo this folder's workflows (default: SWITCHBOARD_WORKFLOWS)"),
    ] = None,
) -> None:
    """The whole product against a local Slack stand-in, with a web page to use it."""
    # The one import of the sandbox from the product (an ignore_imports entry in pyproject).
    from sandbox.demo import DemoError, DemoOptions, run_demo

    try:
        options = DemoOptions(host, port, database, reset, workflows)
        _run(run_demo(options))
    except DemoError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass  # Ctrl-C is how the demo is meant to stop; uvicorn already shut down cleanly
    typer.echo("Switchboard demo stopped.")


@app.command("worker")
def worker_command(
    concurrency: int | None = typer.Option(
        None, min=1, max=256, help="Jobs in flight (default: SWITCHBOARD_WORKER_CONCURRENCY, 32)"
    ),
    metrics_port: int | None = typer.Option(
        None, min=0, max=65535, help="Serve GET /metrics on this port (0 picks one and logs it)"
    ),
    metrics_host: str = typer.Option("0.0.0.0", help="Address of --metrics-port"),
) -> None:
    """Only workers: claim and run due jobs (scale out by starting more)."""
    from bot.serve import run_workers

    config = settings().model_copy(update={"run_scheduler": False})
    _setup_logging(config)
    metrics = (metrics_host, metrics_port) if metrics_port is not None else None
    concurrency = concurrency or config.worker_concurrency or 32
    _run(run_workers(config, concurrency=concurrency, metrics=metrics))


@app.command()
def schedules(
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=50, help="Fires each")] = 3,
) -> None:
    """List every schedule's next fire times and every threshold check."""
    from rich.console import Console

    from bot.schedule_table import schedule_tables
    from workflows.loader import CheckContext, load_folder

    config = settings()
    result = load_folder(config.workflows_dir, CheckContext(templates_dir=config.templates_dir))
    for error in result.errors:
        typer.echo(f"skipped: {error}", err=True)
    console = Console()
    for table in schedule_tables(result.workflows.values(), datetime.now().astimezone(), count):
        console.print(table)


@app.command()
def check(
    folder: Annotated[Path | None, typer.Argument(help="Default: SWITCHBOARD_WORKFLOWS")] = None,
    workspace: Annotated[
        bool,
        typer.Option(
            "--workspace", help="Also look people (@name, e-mails) up in the configured Slack"
        ),
    ] = False,
) -> None:
    """Validate every workflow definition; print file:line: field: problem for each error."""
    from bot.connections import read_connections
    from workflows.loader import CheckContext, load_folder

    config = settings()
    folder = folder or config.workflows_dir
    # The same checks as start-up: templates exist, connections are declared in connections.yaml.
    declared = read_connections(folder)
    context = CheckContext(
        templates_dir=config.templates_dir,
        connections=frozenset(declared),
        connection_types={
            n: str(c.get("type")) for n, c in declared.items() if isinstance(c, dict)
        },
    )
    result = load_folder(folder, context)
    errors = result.errors + (workspace_errors(result, config) if workspace else [])
    for error in [*errors, *result.warnings]:
        typer.echo(str(error))
    warned = f", {counted(len(result.warnings), 'warning')}" if result.warnings else ""
    ok, bad = counted(len(result.workflows), "workflow"), counted(len(errors), "error")
    typer.echo(f"{ok} ok, {bad}{warned}")
    if errors:
        raise typer.Exit(1)


@app.command()
def schema(output: Annotated[Path | None, typer.Option(help="Write to this file")] = None) -> None:
    """The JSON Schema of workflow definitions, for editors' YAML language servers."""
    from workflows.language.workflow import Workflow

    text = json.dumps(Workflow.model_json_schema(by_alias=True), indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    else:
        typer.echo(text)


@app.command("eval")
def eval_command(
    workflow: Annotated[str, typer.Argument(help="Workflow name or path to its YAML file")],
    data: Annotated[
        Path | None, typer.Option(help="Labelled requests: CSV (text,label) or JSON lines")
    ] = None,
    step: Annotated[str | None, typer.Option(help="Classify step id [default: the first]")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N rows")] = None,
    confusion_png: Annotated[
        Path | None, typer.Option(help="Also write the confusion matrix to this PNG")
    ] = None,
    min_confidence: Annotated[
        float | None, typer.Option(help="Triage threshold [default: the step's]")
    ] = None,
    suggest_threshold: Annotated[
        bool, typer.Option(help="Suggest min_confidence from the data, with the trade-off")
    ] = False,
    target: Annotated[
        str | None,
        typer.Option(help="triage-oos=0.9, triage-share=0.1 or routed-right=0.9"),
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Trade-off curve to this PNG")] = None,
    scores: Annotated[
        Path | None, typer.Option(help="Saved scores (JSON lines) instead of --data")
    ] = None,
    save_scores: Annotated[
        Path | None, typer.Option(help="Write the scores to this .jsonl for --scores")
    ] = None,
) -> None:
    """Measure a classify step on labelled requests: accuracy, triage, confusion, latency."""
    # Before numpy loads (bot.eval imports it): threaded BLAS on one-row products only
    # fights onnxruntime's threads; one thread halves single-request latency on 2 cores.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from bot.eval import EvalError, EvalOptions, run_eval

    options = EvalOptions(
        workflow,
        data,
        step,
        limit,
        confusion_png,
        min_confidence,
        suggest_threshold=suggest_threshold,
        target=target,
        plot=plot,
        scores=scores,
        save_scores=save_scores,
    )
    try:
        _run(run_eval(options, settings()))
    except EvalError as exc:
        fail(str(exc))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations."""
    from workflows import migrate

    async def go() -> None:
        store = open_store(settings())
        try:
            await migrate.upgrade(store)
        finally:
            await store.dispose()

    _run(go())
    typer.echo("database is up to date")


@app.command()
def stats(
    workflow: Annotated[str | None, typer.Option(help="Only this workflow")] = None,
    period: Annotated[str, typer.Option(help="How far back: 24h, 7d, 2w, month")] = "7d",
) -> None:
    """Volume, outcomes, cycle time, waiting on people, bottlenecks, for a period."""
    from rich.console import Console

    from bot.stats_table import stats_tables
    from workflows.stats import PeriodError, collect, parse_period

    try:
        length = parse_period(period)
    except PeriodError as exc:
        fail(str(exc))
        raise

    async def go() -> Any:
        store = await ready_store(settings())
        now = datetime.now().astimezone()
        try:
            return await collect(store, start=now - length, end=now, now=now, workflow=workflow)
        finally:
            await store.dispose()

    console = Console()
    for table in stats_tables(_run(go()), period):
        console.print(table)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit trail's hash chain; exit 1 if anything was changed or deleted."""
    from workflows import audit

    async def go() -> audit.VerifyResult:
        store = await ready_store(settings())
        try:
            return await audit.verify(store)
        finally:
            await store.dispose()

    result = _run(go())
    if not result.ok:
        fail(f"audit trail BROKEN after {result.records} good records: {result.problem}", 1)
    typer.echo(f"audit trail intact: {result.records} records")


@audit_app.command("export")
def audit_export(
    run: Annotated[str | None, typer.Option(help="Only this run")] = None,
    since: Annotated[datetime | None, typer.Option(help="Only records from this time")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
) -> None:
    """Export audit records as JSON lines or CSV on standard output."""
    from workflows import audit

    if fmt not in ("jsonl", "csv"):
        fail(f"--format must be jsonl or csv, not {fmt!r}")
    if since is not None and since.tzinfo is None:
        since = since.astimezone()

    async def go() -> None:
        store = await ready_store(settings())
        try:
            async for line in audit.export(store, run_id=run, since=since, fmt=fmt):  # type: ignore[arg-type]
                sys.stdout.write(line)
        finally:
            await store.dispose()

    _run(go())


def _setup_logging(config: Settings) -> None:
    from bot.logs import configure_logging

    configure_logging(level=config.log_level, fmt=config.log_format, secrets=config.secrets())


def main() -> None:
    try:
        app()
    except ConfigurationError as exc:
        typer.echo(str(exc), err=True)
        sys.exit(2)
    except DatabaseNotReady as exc:
        typer.echo(str(exc), err=True)
        sys.exit(NOT_READY_EXIT)
