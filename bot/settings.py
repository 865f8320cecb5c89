"""Configuration: read once from the environment (and ``.env``) at start-up, then passed down.

Nothing below ``bot`` reads the environment: the engine and connectors receive
the values they need from here. Secrets are ``SecretStr`` so they never show in
reprs, logs or error messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.secrets import remember_secrets
from workflows.store import Store

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_WORKFLOWS = PROJECT_ROOT / "workflows" / "examples"
BUNDLED_TEMPLATES = PROJECT_ROOT / "templates"


class ConfigurationError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    slack_bot_token: SecretStr = Field(default=SecretStr(""), alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr = Field(default=SecretStr(""), alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr = Field(default=SecretStr(""), alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    slack_max_retries: int = Field(default=5, ge=0, le=20, alias="SWITCHBOARD_SLACK_MAX_RETRIES")
    """In-process retries of one Web API call (429 with Retry-After, 5xx, connection errors)
    before the step's durable retry takes over."""
    slack_post_burst: int = Field(default=5, ge=1, alias="SWITCHBOARD_SLACK_POST_BURST")
    slack_posts_per_second: float = Field(default=1.0, gt=0, alias="SWITCHBOARD_SLACK_POSTS_PER_S")

    admins: str = Field(default="", alias="SWITCHBOARD_ADMINS")
    """Comma-separated user IDs and ``@group`` handles: who may act on any routed request and
    see, cancel or retry any run (``bot/route_access.py``; groups resolved from its cache)."""

    otel_endpoint: str = Field(default="", alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    """OTLP/HTTP base URL: traces are exported when set (``bot/tracing.py``)."""
    otel_service_name: str = Field(default="switchboard", alias="OTEL_SERVICE_NAME")
    slack_client_id: str = Field(default="", alias="SLACK_CLIENT_ID")
    """The Slack app's client id: with the secret and ``SWITCHBOARD_CONSOLE_URL``, the operator
    console (``/console``) signs people in with Slack (OpenID Connect)."""
    slack_client_secret: SecretStr = Field(default=SecretStr(""), alias="SLACK_CLIENT_SECRET")
    """With ``SLACK_CLIENT_ID`` and no ``SLACK_BOT_TOKEN``: installable in many workspaces
    (``/slack/install``, installations in the database; ``bot/oauth.py``)."""
    slack_redirect_uri: str = Field(default="", alias="SLACK_REDIRECT_URI")
    """The OAuth redirect URL (``https://host/slack/oauth_redirect``); unset: the app's only
    configured one, as Slack allows."""
    slack_token_refresh_minutes: int = Field(
        default=120, ge=0, le=720, alias="SWITCHBOARD_SLACK_TOKEN_REFRESH_MINUTES"
    )
    """With token rotation: a token expiring within this many minutes is refreshed before
    use (Bolt's default, 2 hours of a 12-hour token)."""
    slack_authorize_url: str = Field(default="", alias="SLACK_AUTHORIZE_URL")
    """Where ``/slack/install`` sends people; unset: ``oauth/v2/authorize`` beside
    ``SLACK_API_URL`` (https://slack.com/oauth/v2/authorize)."""
    console_url: str = Field(default="", alias="SWITCHBOARD_CONSOLE_URL")
    """Public base URL of this server (``https://bot.example.com``); the sign-in redirect URL
    is ``{console_url}/console/auth/callback`` and the only Host/Origin the console answers."""
    console_secret: SecretStr = Field(default=SecretStr(""), alias="SWITCHBOARD_CONSOLE_SECRET")
    """Signs console session cookies; unset: derived from ``SLACK_CLIENT_SECRET``."""
    console_session_hours: float = Field(
        default=12.0, gt=0, le=720, alias="SWITCHBOARD_CONSOLE_SESSION_HOURS"
    )

    database_url: str = Field(default="sqlite+aiosqlite:///./switchboard.db", alias="DATABASE_URL")

    database_schema: str | None = Field(
        default=None, pattern=r"^[a-z_][a-z0-9_]*$", alias="SWITCHBOARD_DB_SCHEMA"
    )

    openai_api_key: SecretStr = Field(default=SecretStr(""), alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, alias="OPENAI_BASE_URL")
    openai_model: str = Field(default="gpt-4o-mini", alias="OPENAI_MODEL")
    openai_timeout_s: float = Field(default=30.0, gt=0, alias="OPENAI_TIMEOUT_S")
    ai_redact: bool = Field(default=True, alias="SWITCHBOARD_AI_REDACT")

    workflows_dir: Path = Field(default=BUNDLED_WORKFLOWS, alias="SWITCHBOARD_WORKFLOWS")
    templates_dir: Path = Field(default=BUNDLED_TEMPLATES, alias="SWITCHBOARD_TEMPLATES")

    worker_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=256,
        alias="SWITCHBOARD_WORKER_CONCURRENCY",
        description="Jobs in flight per worker; default 32 in `switchboard worker`, 8 for the "
        "worker inside `serve` (it shares the event loop with Slack's acks)",
    )
    lease_seconds: float = Field(default=30.0, gt=0, alias="SWITCHBOARD_LEASE_SECONDS")
    poll_seconds: float = Field(default=0.5, gt=0, alias="SWITCHBOARD_POLL_SECONDS")
    run_scheduler: bool = Field(
        default=True,
        alias="SWITCHBOARD_SCHEDULER",
        description="Fire schedules and threshold checks in this process (serve; never worker)",
    )

    retention_days: int | None = Field(
        default=None,
        ge=1,
        le=36500,
        alias="SWITCHBOARD_RETENTION_DAYS",
        description="Finished runs lose their texts after this many days (unset: kept); "
        "a workflow's own `retention: {days: N}` wins for its runs",
    )

    log_format: Literal["json", "console"] = Field(default="json", alias="SWITCHBOARD_LOG_FORMAT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", alias="SWITCHBOARD_LOG_LEVEL"
    )

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("console_url")
    @classmethod
    def _console_origin(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @property
    def multi_workspace(self) -> bool:
        """Installed through OAuth in any number of workspaces: client id and secret set
        and no ``SLACK_BOT_TOKEN`` (a bot token keeps the single-workspace default)."""
        return bool(
            self.slack_client_id
            and self.slack_client_secret.get_secret_value()
            and not self.slack_bot_token.get_secret_value()
        )

    def authorize_url(self) -> str:
        if self.slack_authorize_url:
            return self.slack_authorize_url
        return self.slack_api_url.removesuffix("/").removesuffix("/api") + "/oauth/v2/authorize"

    def admin_ids(self) -> frozenset[str]:
        """User IDs and ``@group`` handles, as written (``RouteAccess`` resolves the groups)."""
        return frozenset(entry.strip() for entry in self.admins.split(",") if entry.strip())

    @model_validator(mode="after")
    def _announce_secrets(self) -> Settings:
        # Every scrubber in the process (stored requests, threads, logs, AI prompts) knows them.
        remember_secrets(self.secrets())
        return self

    def secrets(self) -> list[str]:
        """Every secret value in force, for scrubbing output that might echo one."""
        values = [
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.openai_api_key,
            self.slack_client_secret,
            self.console_secret,
        ]
        return [v.get_secret_value() for v in values if v.get_secret_value()]


def open_store(settings: Settings) -> Store:
    return Store(settings.database_url, schema=settings.database_schema)


def load_settings(**overrides: object) -> Settings:
    """Read the settings or raise ConfigurationError with one line naming the bad one."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "settings"
        raise ConfigurationError(f"configuration error: {name}: {first['msg']}") from None
