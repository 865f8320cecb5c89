"""What the console needs from the settings, checked once: sign-in client, URL, secret."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.settings import Settings


@dataclass(frozen=True)
class ConsoleConfig:
    client_id: str
    client_secret: str
    url: str
    """Public base URL (scheme://host[:port]); the redirect URL and the one allowed Origin."""
    secret: str
    session_hours: float
    api_url: str
    """Slack's Web API base (``…/api/``); the authorize page is beside it."""

    @property
    def enabled(self) -> bool:
        return bool(self.client_id and self.client_secret and self.url)

    @property
    def redirect_uri(self) -> str:
        return f"{self.url}/console/auth/callback"

    @property
    def authorize_url(self) -> str:
        """``https://slack.com/openid/connect/authorize`` for ``https://slack.com/api/``."""
        return self.api_url.removesuffix("/").removesuffix("/api") + "/openid/connect/authorize"

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}".lower()

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc.lower()

    @property
    def secure(self) -> bool:
        return self.url.startswith("https://")


def console_config(settings: Settings) -> ConsoleConfig:
    client_secret = settings.slack_client_secret.get_secret_value()
    secret = settings.console_secret.get_secret_value() or (
        hashlib.sha256(b"console-session:" + client_secret.encode()).hexdigest()
        if client_secret
        else ""
    )
    return ConsoleConfig(
        client_id=settings.slack_client_id,
        client_secret=client_secret,
        url=settings.console_url,
        secret=secret,
        session_hours=settings.console_session_hours,
        api_url=settings.slack_api_url,
    )
