"""Installing Switchboard in many workspaces, the Bolt way (``Settings.multi_workspace``).

Bolt's ``AsyncOAuthFlow`` serves ``GET /slack/install`` (a ``state`` from our state store,
also set as a browser cookie, then a redirect to Slack's authorize URL with our scopes)
and ``GET /slack/oauth_redirect`` (``state`` checked against store and cookie, the code
exchanged with ``oauth.v2.access``, ``auth.test`` for the bot id, the installation saved).
Bolt's authorize then finds each request's token in the installation store and refreshes
an expiring one (``token_rotation_expiration_minutes``); ``bot/team_tokens.py`` does the same
for the engine's chat. ``bot/listeners/installs.py`` deletes an installation on
``app_uninstalled`` / ``tokens_revoked``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from bot.installations import DatabaseInstallationStore, DatabaseStateStore
from bot.settings import Settings
from bot.team_tokens import TeamTokens
from workflows.ports import Clock
from workflows.store import Store

BOT_SCOPES = (
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
)
"""What an install asks for: manifest.yml's bot scopes (``tests/oauth`` holds them equal)."""


@dataclass(frozen=True)
class MultiWorkspace:
    """What multi-workspace mode adds to the runtime."""

    installations: DatabaseInstallationStore
    tokens: TeamTokens
    oauth_settings: AsyncOAuthSettings


def multi_workspace(
    settings: Settings, store: Store, clock: Clock, client: AsyncWebClient
) -> MultiWorkspace | None:
    """None in single-workspace mode (``SLACK_BOT_TOKEN``, or no client id and secret)."""
    if not settings.multi_workspace:
        return None
    client_id = settings.slack_client_id
    secret = settings.slack_client_secret.get_secret_value()
    installations = DatabaseInstallationStore(store, clock, client_id)
    oauth_settings = AsyncOAuthSettings(
        client_id=client_id,
        client_secret=secret,
        scopes=list(BOT_SCOPES),
        redirect_uri=settings.slack_redirect_uri or None,
        authorization_url=settings.authorize_url(),
        install_page_rendering_enabled=False,  # /slack/install redirects to Slack at once
        installation_store=installations,
        installation_store_bot_only=True,
        state_store=DatabaseStateStore(store, clock),
        token_rotation_expiration_minutes=settings.slack_token_refresh_minutes,
    )
    # Bolt's own authorize, given our client: the one it builds refreshes at slack.com
    # whatever SLACK_API_URL says. Its rotator is then told the refresh window (0 stays 0).
    authorize = AsyncInstallationStoreAuthorize(
        logger=logging.getLogger("slack_bolt.AsyncApp"),
        installation_store=installations,
        client_id=client_id,
        client_secret=secret,
        bot_only=True,
        client=client,
    )
    oauth_settings.authorize = authorize
    rotator = AsyncTokenRotator(client_id=client_id, client_secret=secret, client=client)
    minutes = settings.slack_token_refresh_minutes
    tokens = TeamTokens(installations, rotator, minutes_before_expiration=minutes)
    return MultiWorkspace(installations, tokens, oauth_settings)
