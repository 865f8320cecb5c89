"""manifest.yml asks for exactly what the code uses (issue 22, item 4).

Derived from the code, not from a list kept by hand beside the manifest:

- the Web API methods are every ``AsyncWebClient`` method named in ``bot/``, ``workflows/``
  or ``connectors/`` (``client.views_open(...)`` or ``self._call("chat_postMessage", ...)``),
  found with ``ast``; each needs one of the scopes in ``METHOD_SCOPES`` (Slack's method pages,
  https://api.slack.com/methods/<method>, "Required scopes"), and every scope requested must
  be needed by a called method, a subscribed event or a declared feature;
- the events, slash commands and shortcuts are those registered on Bolt in ``bot/``; every
  subscribed event and declared command or shortcut is also fed to the product's built
  ``AsyncApp`` (``running_bot``) and must match one of its listeners.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.console.config import ConsoleConfig
from bot.console.signin import SCOPES as SIGN_IN_SCOPES
from tests.support.harness import Harness, running_bot
from tests.support.stores import sqlite_database

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("bot", "workflows", "connectors")

# slack_sdk method -> the Web API methods it calls (slack_sdk's helpers call several).
SDK_HELPERS = {
    "files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal"),
}
# Web API method -> bot scopes of which one is required (empty: none). Source: Slack's method
# pages, https://api.slack.com/methods/<method> ("Required scopes", bot token).
METHOD_SCOPES: dict[str, frozenset[str]] = {
    "auth.test": frozenset(),
    "chat.postMessage": frozenset({"chat:write"}),
    "chat.update": frozenset({"chat:write"}),
    "chat.getPermalink": frozenset(),
    "conversations.history": frozenset({"channels:history", "groups:history", "im:history"}),
    "conversations.replies": frozenset({"channels:history", "groups:history", "im:history"}),
    "conversations.list": frozenset({"channels:read", "groups:read"}),
    "conversations.members": frozenset({"channels:read", "groups:read"}),
    "conversations.open": frozenset({"im:write"}),
    "files.getUploadURLExternal": frozenset({"files:write"}),
    "files.completeUploadExternal": frozenset({"files:write"}),
    "usergroups.list": frozenset({"usergroups:read"}),
    "usergroups.users.list": frozenset({"usergroups:read"}),
    "users.info": frozenset({"users:read"}),  # a Workflow Builder error names its decider
    "users.list": frozenset({"users:read"}),
    "users.lookupByEmail": frozenset({"users:read.email"}),
    "views.open": frozenset(),
    "views.publish": frozenset(),
    # Workflow Builder steps: "No scope required" (https://api.slack.com/methods/functions.completeSuccess).
    "functions.completeSuccess": frozenset(),
    "functions.completeError": frozenset(),
}
# Scopes that widen a method rather than unlock it: chat:write.public lets chat.postMessage
# post in a public channel the bot has not joined (https://api.slack.com/scopes/chat:write.public).
WIDENING_SCOPES = {"chat:write.public": "chat.postMessage"}
# Not bot-token methods: their scopes are not bot scopes of this manifest.
OTHER_TOKENS = {
    "apps.connections.open",  # app-level token, connections:write (Socket Mode)
    "openid.connect.token",  # console sign-in: client id and secret
    "openid.connect.userInfo",  # console sign-in: the person's token (openid scope)
}
# Bot event -> the scope Slack requires to subscribe to it (https://api.slack.com/events/<e>).
EVENT_SCOPES = {
    "app_home_opened": frozenset(),
    "app_mention": frozenset({"app_mentions:read"}),
    "app_uninstalled": frozenset(),
    "tokens_revoked": frozenset(),
    "message.channels": frozenset({"channels:history"}),
    "message.groups": frozenset({"groups:history"}),
    "message.im": frozenset({"im:history"}),
    "message.mpim": frozenset({"mpim:history"}),
    "reaction_added": frozenset({"reactions:read"}),
}
# Slash commands and shortcuts need "commands" (https://api.slack.com/scopes/commands).
FEATURE_SCOPES = {"commands"}


def load_manifest() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert isinstance(data, dict)
    return data


@functools.cache
def product_trees() -> tuple[tuple[Path, ast.AST], ...]:
    files = sorted(p for pkg in PRODUCT for p in (ROOT / pkg).rglob("*.py"))
    return tuple((p, ast.parse(p.read_text())) for p in files)


def called_sdk_methods(trees: list[ast.AST] | None = None) -> set[str]:
    """Every AsyncWebClient method the product names, as an attribute or a string."""
    sdk = {n for n in dir(AsyncWebClient) if "_" in n and not n.startswith("_")}
    sdk -= {"api_call", "base_url"}
    found: set[str] = set()
    for tree in [t for _, t in product_trees()] if trees is None else trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in sdk:
                found.add(node.attr)
            elif isinstance(node, ast.Constant) and node.value in sdk:
                found.add(str(node.value))
    return found


def web_api_methods(sdk_methods: set[str]) -> set[str]:
    methods: set[str] = set()
    for name in sdk_methods:
        methods.update(SDK_HELPERS.get(name, (name.replace("_", "."),)))
    return methods


def registrations(trees: list[ast.AST] | None = None) -> dict[str, set[str]]:
    """Bolt registrations: ``.event("x")``, ``.command("/x")``, ``.shortcut``, ``.function``."""
    found: dict[str, set[str]] = {k: set() for k in ("event", "command", "shortcut", "function")}
    for tree in [t for _, t in product_trees()] if trees is None else trees:
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            kind, args = node.func.attr, node.args
            arg = args[0].value if args and isinstance(args[0], ast.Constant) else None
            if kind == "message" and isinstance(node.func.value, ast.Name):
                found["event"].add("message")
            if not isinstance(arg, str):
                continue
            if kind in ("event", "shortcut", "function") or (kind == "command" and arg[:1] == "/"):
                found[kind].add(arg)
    return found


def bolt_event_type(subscribed: str) -> str:
    """``message.channels`` arrives as a ``message`` event; others keep their name."""
    return subscribed.split(".")[0]


def test_every_called_method_has_a_requested_scope() -> None:
    scopes = set(load_manifest()["oauth_config"]["scopes"]["bot"])
    methods = web_api_methods(called_sdk_methods()) - OTHER_TOKENS
    assert "chat.postMessage" in methods and "views.open" in methods  # the scan finds calls
    unknown = sorted(methods - METHOD_SCOPES.keys())
    assert unknown == [], f"add these methods' required scopes to METHOD_SCOPES: {unknown}"
    missing = {m: sorted(need) for m in methods if (need := METHOD_SCOPES[m]) and not need & scopes}
    assert missing == {}, f"manifest.yml lacks a scope for: {missing}"


def test_every_requested_scope_is_needed() -> None:
    manifest = load_manifest()
    methods = web_api_methods(called_sdk_methods()) - OTHER_TOKENS
    needed = set().union(*(METHOD_SCOPES.get(m, frozenset()) for m in methods))
    needed |= {s for s, method in WIDENING_SCOPES.items() if method in methods}
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    needed |= set().union(*(EVENT_SCOPES.get(e, frozenset()) for e in events))
    if manifest["features"].get("slash_commands") or manifest["features"].get("shortcuts"):
        needed |= FEATURE_SCOPES
    unused = sorted(set(manifest["oauth_config"]["scopes"]["bot"]) - needed)
    assert unused == [], f"manifest.yml requests scopes nothing uses: {unused}"


def test_subscribed_events_are_the_registered_listeners() -> None:
    subscribed = set(load_manifest()["settings"]["event_subscriptions"]["bot_events"])
    assert subscribed <= EVENT_SCOPES.keys(), "add the new event's scope to EVENT_SCOPES"
    listened = registrations()["event"]
    assert {bolt_event_type(e) for e in subscribed} == listened


def test_commands_and_shortcuts_are_the_registered_ones() -> None:
    features = load_manifest()["features"]
    found = registrations()
    assert {c["command"] for c in features.get("slash_commands", [])} == found["command"]
    assert {s["callback_id"] for s in features.get("shortcuts", [])} == found["shortcut"]
    # Workflow Builder steps: manifest ``functions`` keys are the callback ids of app.function.
    assert set(load_manifest().get("functions", {})) == found["function"]


def test_sign_in_with_slack_is_declared() -> None:
    """The console's OpenID Connect scopes are user scopes, its callback a redirect URL."""
    oauth = load_manifest()["oauth_config"]
    assert set(oauth["scopes"]["user"]) == set(SIGN_IN_SCOPES.split())
    host = "https://switchboard.example.com"
    console = ConsoleConfig("id", "secret", host, "s", 1.0, "https://slack.com/api/")
    assert oauth["redirect_urls"][0] == console.redirect_uri


@pytest.fixture
async def harness(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Harness]:
    async with sqlite_database(tmp_path, sqlite_template) as db, running_bot(db) as bot:
        yield bot


def manifest_bodies(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """One minimal Slack payload per subscribed event, command and shortcut."""
    team = {"team_id": "T0001", "api_app_id": "A0001"}
    bodies: list[dict[str, Any]] = []
    for subscribed in manifest["settings"]["event_subscriptions"]["bot_events"]:
        kind = bolt_event_type(subscribed)
        event = {"type": kind, "user": "U0001", "channel": "C0001", "ts": "1.1", "text": "x"}
        bodies.append(team | {"type": "event_callback", "event": event})
    for command in manifest["features"].get("slash_commands", []):
        bodies.append(team | {"command": command["command"], "text": "", "user_id": "U0001"})
    for shortcut in manifest["features"].get("shortcuts", []):
        body = {"type": shortcut["type"] + "_action", "callback_id": shortcut["callback_id"]}
        bodies.append(team | body | {"user": {"id": "U0001"}, "team": {"id": "T0001"}})
    for callback_id in manifest.get("functions", {}):  # Workflow Builder steps
        function = {"callback_id": callback_id, "id": "Fn0001"}
        event = {"type": "function_executed", "function": function, "inputs": {}}
        event |= {"function_execution_id": "Fx0001", "bot_access_token": "xwfp-0001"}
        bodies.append(team | {"type": "event_callback", "event": event})
    return bodies


async def heard(app: AsyncApp, body: dict[str, Any]) -> bool:
    """Whether one of the app's listeners matches this payload (Bolt's own matchers)."""
    request = AsyncBoltRequest(body=body, mode="socket_mode")
    response = BoltResponse(status=200, body="")
    for listener in app._async_listeners:
        if await listener.async_matches(req=request, resp=response):
            return True
    return False


async def test_the_built_app_listens_to_everything_the_manifest_declares(
    harness: Harness,
) -> None:
    app = harness.runtime.app
    unheard = [
        str(body.get("event") or body.get("command") or body["callback_id"])
        for body in manifest_bodies(load_manifest())
        if not await heard(app, body)
    ]
    assert unheard == []
    # The probe can fail: an event, command or shortcut nothing registered matches nothing.
    stray_event = {"type": "event_callback", "event": {"type": "channel_rename"}}
    assert not await heard(app, stray_event)
    assert not await heard(app, {"command": "/other", "text": ""})
    assert not await heard(app, {"type": "message_action", "callback_id": "other"})
    other = {"type": "function_executed", "function": {"callback_id": "other"}}
    other |= {"function_execution_id": "Fx0002"}
    assert not await heard(app, {"type": "event_callback", "event": other | {"inputs": {}}})


def test_the_scan_sees_a_new_call_and_a_new_listener() -> None:
    tree = ast.parse(
        'await client.reactions_add(name="eyes")\nawait self._call("pins_add")\n'
        'app.event("team_join")(f)\napp.command("/other")(g)\n'
        'app.function("run")(r)\ncli.command("purge")(h)\n'
    )
    assert called_sdk_methods([tree]) == {"reactions_add", "pins_add"}
    assert web_api_methods({"reactions_add", "files_upload_v2"}) == {
        "reactions.add",
        *SDK_HELPERS["files_upload_v2"],
    }
    assert registrations([tree]) == {
        "event": {"team_join"},
        "command": {"/other"},
        "shortcut": set(),
        "function": {"run"},
    }
