"""``switchboard serve`` with ``SLACK_APP_TOKEN``: the real CLI process, over Socket Mode.

A Socket Mode app has no request URL and needs no signing secret; the process
still serves /healthz, /readyz and /metrics over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from sandbox.slack import SlackEmulator, WorkspaceSeed
from tests.socket_mode.workflows import write_workflows
from tests.support.harness import BOT_TOKEN
from tests.support.servers import free_port, serve_asgi
from tests.support.socket_harness import APP_TOKEN
from tests.support.stores import Database

START_UP_SECONDS = 30.0  # a cold interpreter imports Bolt, SQLAlchemy, onnxruntime…


@contextlib.asynccontextmanager
async def serve_process(env: dict[str, str], cwd: Path, port: int) -> AsyncIterator[str]:
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "switchboard"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=(cwd / "serve.log").open("wb"),
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), timeout=15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def test_serve_runs_the_product_over_socket_mode(sqlite_db: Database, tmp_path: Path) -> None:
    slack = SlackEmulator(
        "unused-by-socket-mode", BOT_TOKEN, WorkspaceSeed.demo(), app_token=APP_TOKEN
    )
    (tmp_path / "workflows").mkdir()
    workflows = write_workflows(tmp_path / "workflows")
    try:
        async with serve_asgi(slack.asgi_app) as slack_url:
            slack.base_url = slack_url
            env = {
                "PATH": os.environ.get("PATH", ""),
                "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                "SLACK_API_URL": slack.api_url,
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_APP_TOKEN": APP_TOKEN,
                "DATABASE_URL": sqlite_db.url,
                "SWITCHBOARD_WORKFLOWS": str(workflows),
                "SWITCHBOARD_SCHEDULER": "false",
                "SWITCHBOARD_POLL_SECONDS": "0.05",
            }
            async with serve_process(env, tmp_path, free_port()) as bot_url:
                try:
                    await slack.socket.wait_connected(timeout=START_UP_SECONDS)
                except TimeoutError:
                    log = (tmp_path / "serve.log").read_text()[-2000:]
                    raise AssertionError(f"serve opened no Socket Mode link:\n{log}") from None
                async with httpx.AsyncClient() as client:
                    assert (await client.get(f"{bot_url}/healthz")).status_code == 200
                    ready = await client.get(f"{bot_url}/readyz")
                    assert ready.status_code == 200, ready.text
                result = await slack.slash_command("alice", "general", "hello from the socket")
                assert result.ok and result.outcome == "responded", result.error
                root = await slack.wait_for(
                    lambda: next(iter(slack.messages("general")), None), timeout=10
                )
                assert "started hello" in root["text"]
                await slack.wait_for(
                    lambda: any(
                        "Hello, from the socket!" in m["text"]
                        for m in slack.thread("general", root["ts"])
                    ),
                    timeout=10,
                    message="the run did not thread its reply",
                )
                async with httpx.AsyncClient() as client:
                    metrics = (await client.get(f"{bot_url}/metrics")).text
                assert (
                    'switchboard_requests_received_total{status="200",trigger="command"}' in metrics
                )
    finally:
        await slack.aclose()


async def test_serve_with_a_refused_app_token_stops_with_one_clear_line(
    sqlite_db: Database, tmp_path: Path
) -> None:
    slack = SlackEmulator("unused", BOT_TOKEN, WorkspaceSeed.demo(), app_token=APP_TOKEN)
    try:
        async with serve_asgi(slack.asgi_app) as slack_url:
            slack.base_url = slack_url
            env = {
                "PATH": os.environ.get("PATH", ""),
                "SLACK_API_URL": slack.api_url,
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_APP_TOKEN": "xapp-1-revoked-token",
                "DATABASE_URL": sqlite_db.url,
                "SWITCHBOARD_SCHEDULER": "false",
            }
            process = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "switchboard"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(free_port()),
                env=env,
                cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                out, err = await asyncio.wait_for(process.communicate(), timeout=START_UP_SECONDS)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    finally:
        await slack.aclose()
    assert process.returncode == 2
    assert err.decode().strip().splitlines()[-1] == (
        "configuration error: SLACK_APP_TOKEN: Slack refused it (invalid_auth)"
    )
    assert b"Traceback" not in out + err
    assert "xapp-1-revoked-token" not in (out + err).decode()
