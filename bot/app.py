"""``build_app(deps) -> AsyncApp``: the Bolt app and its listeners, nothing else.

Bolt's request pipeline (URL verification, ssl check, ack plumbing) runs as
middleware before our listeners; the signature is checked once, before Bolt, by
``bot/slack_ingress.py``, which hands Bolt the body it already parsed. We run with
``process_before_response=True``: every listener finishes within milliseconds
(one short transaction at most), so answering with the listener's ack body
directly is both faster than Bolt's default ack polling and the only mode that
works on FaaS platforms.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.background import Background
from bot.deps import BotDeps
from bot.identity import IdentityCache
from bot.listeners.approvals import (
    APPROVE_VIEW,
    DELEGATE_VIEW,
    REJECT_VIEW,
    ApprovalListeners,
)
from bot.listeners.asks import ASK_ACTION, ASK_VIEW, AskListeners
from bot.listeners.commands import FlowCommands
from bot.listeners.forms import START_ACTION, START_VIEW, FormListeners
from bot.listeners.functions import FunctionStepListeners
from bot.listeners.home import HomeTab
from bot.listeners.installs import InstallListeners
from bot.listeners.intake import Intake
from bot.listeners.routing import REASSIGN_VIEW, RoutingListeners
from bot.oauth import MultiWorkspace
from bot.team_tokens import workspace_scope

MAX_BOLT_LOG_CHARS = 1000
"""Bolt puts request bodies in some messages (a failed signature check, a middleware that
did not call next): longer messages are cut here, and the signature one loses its details."""


class _NoRequestBodies(logging.Filter):
    # bot/server.py verifies signatures before Bolt, so these should never fire; if one
    # does (another route, a future Bolt), a body still never reaches the log.
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Invalid request signature"):
            message = "Invalid request signature detected (details not logged)"
        elif len(message) > MAX_BOLT_LOG_CHARS:
            message = f"{message[:MAX_BOLT_LOG_CHARS]} [{len(message)} characters, cut]"
        record.msg, record.args = message, None
        return True


def bolt_logger() -> logging.Logger:
    """The logger Bolt is given (for itself and its middleware), filtered once per process."""
    logger = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, _NoRequestBodies) for f in logger.filters):
        logger.addFilter(_NoRequestBodies())
    return logger


SWITCH_INTERVAL_S = 0.0005
"""How long a thread waiting for the GIL lets the running one go on (Python's default: 5 ms).

Every SQLite statement is handed to aiosqlite's thread and back; while the event loop is
busy (a burst of acks, the worker inside ``serve``) each hand-over waited up to the
default 5 ms for the GIL, holding the write lock meanwhile (issue 24's ack profile)."""


def build_app(
    deps: BotDeps,
    *,
    client: AsyncWebClient,
    signing_secret: str,
    identity: IdentityCache,
    background: Background,
    multi: MultiWorkspace | None = None,
) -> AsyncApp:
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
    # One workspace: our authorize (auth.test cached at start-up). Many: Bolt's, over the
    # installation store, with its OAuth flow and token rotation (bot/oauth.py).
    who: dict[str, Any] = (
        {"oauth_settings": multi.oauth_settings}
        if multi is not None
        else {"authorize": identity.authorizer()}
    )
    app = AsyncApp(
        client=client,
        logger=bolt_logger(),
        **who,
        signing_secret=signing_secret,
        process_before_response=True,
        # bot/slack_ingress.py verifies every request's signature before Bolt sees it (and
        # Socket Mode has none); Bolt checking the same bytes again was a second HMAC.
        request_verification_enabled=False,
        ignoring_self_events_enabled=True,
        # A click inside a Workflow Builder step carries the step's bot_access_token; Bolt
        # puts it on the listener's client, as Slack requires for its views (tests/functions).
        attaching_function_token_enabled=True,
    )
    # The request's work is its workspace's: its token, its runs (bot/team_tokens.py).
    app.use(workspace_scope(unassigned=multi is None))
    _listen(app, deps, background, multi)
    return app


def _listen(
    app: AsyncApp, deps: BotDeps, background: Background, multi: MultiWorkspace | None
) -> None:
    """Every Slack surface's listeners: one line a command, event, action or view."""
    installs = InstallListeners(multi)
    app.event("tokens_revoked")(installs.on_tokens_revoked)
    app.event("app_uninstalled")(installs.on_app_uninstalled)
    forms = FormListeners(deps, background)
    app.command("/flow")(FlowCommands(deps, forms=forms).on_flow)
    app.action(START_ACTION)(forms.on_start_button)
    app.view(START_VIEW)(forms.on_start_submit)
    intake = Intake(deps)
    app.event("message")(intake.on_message)
    app.event("app_mention")(intake.on_mention)
    app.event("reaction_added")(intake.on_reaction)
    app.shortcut("send_to_switchboard")(intake.on_shortcut)
    routing = RoutingListeners(deps, background)
    app.action(re.compile(r"^route:"))(routing.on_click)
    app.view(REASSIGN_VIEW)(routing.on_reassign_submit)
    home = HomeTab(deps, background)
    app.event("app_home_opened")(home.on_opened)
    approvals = ApprovalListeners(deps, background, home)
    app.action(re.compile(r"^approval:"))(approvals.on_click)
    app.view(REJECT_VIEW)(approvals.on_reject_submit)
    app.view(DELEGATE_VIEW)(approvals.on_delegate_submit)
    app.view(APPROVE_VIEW)(approvals.on_approve_submit)
    questions = AskListeners(deps, background, home)
    app.action(ASK_ACTION)(questions.on_click)
    app.view(ASK_VIEW)(questions.on_submit)
    steps = FunctionStepListeners(deps, background)  # Workflow Builder (manifest functions)
    app.function("run_workflow")(steps.on_run_workflow)
    app.function("ask_for_approval")(steps.on_ask_for_approval)
