"""manifest.yml validates against Slack's official app manifest schema (draft-07).

That it asks for exactly what the code uses: test_manifest_matches_code.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "data" / "slack" / "manifest.schema.json"


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_manifest_is_valid(validator: Draft7Validator, manifest: dict[str, Any]) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(manifest)]
    assert errors == []


def test_manifest_declares_what_the_bot_uses(manifest: dict[str, Any]) -> None:
    features, settings = manifest["features"], manifest["settings"]
    assert features["bot_user"]["display_name"] == "Switchboard"
    (flow,) = features["slash_commands"]
    assert flow["command"] == "/flow" and flow["usage_hint"]
    url = "https://switchboard.example.com/slack/events"
    assert flow["url"] == settings["interactivity"]["request_url"] == url
    assert settings["event_subscriptions"]["request_url"] == url
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "message.channels",
        "message.groups",
        "message.im",
        "app_mention",
        "reaction_added",
        "app_home_opened",
        "app_uninstalled",
        "tokens_revoked",
    }
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_enabled"] is True
    (shortcut,) = features["shortcuts"]
    assert (shortcut["type"], shortcut["callback_id"]) == ("message", "send_to_switchboard")
    assert settings["socket_mode_enabled"] is False
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "app_mentions:read",
        "channels:history",
        "channels:read",
        "chat:write",
        "chat:write.public",
        "commands",
        "files:write",
        "groups:history",
        "groups:read",
        "im:history",
        "im:write",
        "reactions:read",
        "usergroups:read",
        "users:read",
        "users:read.email",
    }


@pytest.mark.parametrize(
    "breakage",
    [
        lambda m: m.pop("display_information"),
        lambda m: m["features"]["slash_commands"][0].update(command="flow"),
        lambda m: m["features"]["shortcuts"][0].update(type="channel"),
        lambda m: m["settings"].update(socket_mode_enabled="no"),
        lambda m: m["features"]["bot_user"].update(display_name=""),
        lambda m: m["settings"]["interactivity"].pop("is_enabled"),
        lambda m: m.update(unknown_section={}),
    ],
)
def test_schema_catches_broken_manifests(
    validator: Draft7Validator, manifest: dict[str, Any], breakage: Any
) -> None:
    broken = copy.deepcopy(manifest)
    breakage(broken)
    assert list(validator.iter_errors(broken)), "the schema accepted a broken manifest"
