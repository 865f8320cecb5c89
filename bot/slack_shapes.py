"""The minimal shape of each kind of request Slack sends to ``/slack/events``, checked after
the signature and before Bolt, so a signed but malformed body is one short 400.

Bolt reads fields such as ``user.id`` or ``view.type`` without checking them and a
missing one is an exception (a 500 and a traceback in the log). The rules here are
the fields Bolt and our listeners rely on, no more: Slack adds fields often and
anything extra passes. The body is parsed the way Bolt parses it
(``slack_bolt.request.internals.parse_body``), so what is checked is what Bolt sees.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from bot.http_limits import BadJSON, loads_bounded

Payload = dict[str, Any]
MAX_FORM_FIELDS = 200
"""A slash command has about 12 fields; a form with hundreds is not from Slack."""


class Malformed(ValueError):
    """A signed body Slack would not send; the message is one short line."""


def parse_like_bolt(text: str, content_type: str) -> Payload:
    """The payload Bolt will build from ``text``, or ``Malformed``."""
    if not text:
        raise Malformed("empty body")
    try:
        if content_type.split(";")[0].strip() == "application/json" or text.startswith("{"):
            data = loads_bounded(text)
        else:
            form = dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
            if "payload" in text:  # Bolt's test: the substring, anywhere in the body
                data = loads_bounded(form["payload"]) if "payload" in form else {}
            else:
                data = form
    except BadJSON as exc:
        raise Malformed(f"body is {exc}") from None
    except ValueError:
        raise Malformed(f"a form body has more than {MAX_FORM_FIELDS} fields") from None
    if not isinstance(data, dict):
        raise Malformed(f"payload must be a JSON object, not {type(data).__name__}")
    return data


def kind_of(data: Payload) -> str:
    """``command``, ``ssl_check`` or the payload's ``type`` (checked by ``check_shape``)."""
    if "command" in data and "type" not in data:
        return "command"
    if "ssl_check" in data and "type" not in data:
        return "ssl_check"
    kind = data.get("type")
    return kind if isinstance(kind, str) else ""


def check_shape(data: Payload) -> None:
    """Raise ``Malformed`` naming the first missing or mistyped field."""
    kind = kind_of(data)
    if not kind:
        raise Malformed("payload has no type (and is not a slash command)")
    _check_ids(data, "payload")
    rule = _RULES.get(kind)
    if rule is not None:
        rule(data)


# ------------------------------------------------------------------ helpers


def _text(data: Payload, key: str, where: str, *, empty: bool = False) -> None:
    value = data.get(key)
    if not isinstance(value, str) or (not value and not empty):
        raise Malformed(f"{where}.{key} must be a string")


def _object(data: Payload, key: str, where: str) -> Payload:
    value = data.get(key)
    if not isinstance(value, dict):
        raise Malformed(f"{where}.{key} must be an object")
    return value


def _with_id(data: Payload, key: str, where: str, *, optional: bool = False) -> None:
    if optional and data.get(key) is None:
        return
    _text(_object(data, key, where), "id", f"{where}.{key}")


def _check_ids(data: Payload, where: str) -> None:
    # Bolt's context extractors read these from every payload (and its event or message):
    # each may be absent, null, an id string or an object; anything else raises inside Bolt.
    for key in ("enterprise", "team", "user", "channel"):
        if not isinstance(data.get(key), str | dict | None):
            raise Malformed(f"{where}.{key} must be an id or an object")
    authorizations = data.get("authorizations")
    if authorizations is not None and not (
        isinstance(authorizations, list) and all(isinstance(a, dict) for a in authorizations)
    ):
        raise Malformed(f"{where}.authorizations must be a list of objects")
    for inner in ("event", "message", "previous_message"):
        if isinstance(data.get(inner), dict):
            _check_ids(data[inner], f"{where}.{inner}")


# ------------------------------------------------------------------ one rule per kind


def _command(data: Payload) -> None:
    for key in ("command", "team_id", "user_id", "channel_id"):
        _text(data, key, "command")
    if not data["command"].startswith("/"):
        raise Malformed("command.command must start with /")


def _url_verification(data: Payload) -> None:
    _text(data, "challenge", "url_verification")


def _event_callback(data: Payload) -> None:
    _text(data, "team_id", "event_callback")
    _text(_object(data, "event", "event_callback"), "type", "event_callback.event")


def _actor(data: Payload, kind: str) -> None:
    _with_id(data, "user", kind)
    _with_id(data, "team", kind, optional=True)  # null for some org-wide installs


def _block_actions(data: Payload) -> None:
    _actor(data, "block_actions")
    actions = data.get("actions")
    if not isinstance(actions, list) or not actions:
        raise Malformed("block_actions.actions must be a non-empty list")
    for action in actions:
        if not isinstance(action, dict):
            raise Malformed("block_actions.actions must hold objects")
        _text(action, "action_id", "block_actions.actions[]")
    _with_id(data, "channel", "block_actions", optional=True)
    for key in ("message", "view", "container"):
        if data.get(key) is not None:
            _object(data, key, "block_actions")


def _view(data: Payload) -> None:
    kind = str(data["type"])
    _actor(data, kind)
    view = _object(data, "view", kind)
    for key in ("id", "type"):
        _text(view, key, f"{kind}.view")
    _text(view, "callback_id", f"{kind}.view", empty=True)
    if kind == "view_submission":
        _object(_object(view, "state", "view_submission.view"), "values", "view.state")


def _shortcut(data: Payload) -> None:
    kind = str(data["type"])
    _actor(data, kind)
    _text(data, "callback_id", kind)
    if kind == "message_action":
        _with_id(data, "channel", kind)
        _text(_object(data, "message", kind), "ts", "message_action.message")


_RULES: dict[str, Callable[[Payload], None]] = {
    "command": _command,
    "url_verification": _url_verification,
    "event_callback": _event_callback,
    "block_actions": _block_actions,
    "view_submission": _view,
    "view_closed": _view,
    "shortcut": _shortcut,
    "message_action": _shortcut,
}
