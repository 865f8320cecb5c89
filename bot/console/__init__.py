"""The operator console: runs, one run, actions, workflows and health in a browser,
signed in with Slack. Product code: served by ``serve`` (and the demo) under ``/console``;
it never imports the sandbox. See ``app.py`` for the routes."""

from __future__ import annotations

from starlette.routing import BaseRoute

from bot.console.app import console_routes
from bot.console.config import console_config
from bot.runtime import Runtime


def routes(runtime: Runtime) -> list[BaseRoute]:
    """The console's routes, or one route saying how to enable it."""
    return console_routes(runtime, console_config(runtime.settings))


__all__ = ["routes"]
