"""Typed configuration of named connections, and resolution of their secrets from an environment.

Operators describe each connection by name; the ``type`` field selects the model::

    erp:
      type: http
      base_url: https://erp.example.com/api
      token_env: ERP_TOKEN            # the *name* of an environment variable, never the token
      retry: {attempts: 5}
    warehouse:
      type: sql
      url: postgresql+asyncpg://reporter@db.internal/warehouse
      password_env: WAREHOUSE_PASSWORD

Secrets never live in configuration values: every ``*_env`` field names an environment variable,
and URLs that embed a password are refused. :func:`resolve_secret` reads those variables from a
mapping the caller passes in (connectors never read ``os.environ``), so the settings object stays
the single place that looks at the process environment. Resolved values are ``SecretStr`` so a
stray ``repr`` cannot print them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from connectors.errors import ConnectorConfigError
from connectors.secrets import remember_secrets

__all__ = [
    "BaseUrlConfig",
    "BreakerSettings",
    "CommonConfig",
    "ConnectionConfig",
    "EmailConfig",
    "GithubConfig",
    "HttpCommonConfig",
    "HttpConfig",
    "JiraConfig",
    "RetrySettings",
    "SqlConfig",
    "WebhookOutConfig",
    "parse_connections",
    "resolve_secret",
]


class _Strict(BaseModel):
    # Unknown keys are almost always typos ("tokn_env"); refuse them instead of ignoring them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySettings(_Strict):
    """In-process retries of one call (tenacity): exponential back-off with jitter."""

    attempts: int = Field(3, ge=1, le=20, description="Total tries, the first one included.")
    backoff_initial_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(10.0, ge=0)
    jitter_s: float = Field(0.5, ge=0)
    max_retry_after_s: float = Field(
        30.0,
        ge=0,
        description="Longest Retry-After honoured in process; a longer one is handed to the "
        "engine (error.retry_after) instead of blocking a worker.",
    )


class BreakerSettings(_Strict):
    failure_threshold: int = Field(5, ge=1, description="Consecutive failures that trip it.")
    reset_timeout_s: float = Field(30.0, gt=0, description="Open time before one probe.")


class CommonConfig(_Strict):
    timeout_s: float = Field(10.0, gt=0, description="Per attempt.")
    max_concurrency: int = Field(10, ge=1, description="In-flight calls in this process.")
    max_concurrency_total: int | None = Field(
        None,
        ge=1,
        description="Steps using this connection that run at once across all worker processes "
        "(held in the database; others wait their turn in the queue).",
    )
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)


def _no_userinfo_password(url: str | None, field: str) -> None:
    # Only the scheme://user:password@host form is refused; keep this cheap and obvious.
    if url and "://" in url:
        authority = url.split("://", 1)[1].split("/", 1)[0]
        if "@" in authority and ":" in authority.rsplit("@", 1)[0]:
            raise ValueError(f"{field} must not contain a password; name it in an *_env field")


class HttpCommonConfig(CommonConfig):
    connect_timeout_s: float = Field(5.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict, description="Static, non-secret.")
    secret_headers: dict[str, str] = Field(
        default_factory=dict, description="Header name -> environment variable holding its value."
    )
    verify_tls: bool = True
    max_response_bytes: int = Field(10 * 1024 * 1024, ge=1)


class BaseUrlConfig(HttpCommonConfig):
    type: str
    base_url: str | None = None
    base_url_env: str | None = Field(None, description="Variable holding the base URL.")

    @model_validator(mode="after")
    def _one_base_url(self) -> BaseUrlConfig:
        _no_userinfo_password(self.base_url, "base_url")
        if self.base_url_env and self.base_url:
            raise ValueError("set base_url or base_url_env, not both")
        if not (self.base_url or self.base_url_env or self.type == "github"):
            raise ValueError("base_url or base_url_env is required")
        return self


class HttpConfig(BaseUrlConfig):
    type: Literal["http"] = "http"
    token_env: str | None = Field(None, description="Sent as 'Authorization: Bearer <token>'.")
    idempotency_header: str = "Idempotency-Key"


class JiraConfig(BaseUrlConfig):
    type: Literal["jira"] = "jira"
    username: str | None = Field(None, description="Jira Cloud: account e-mail, for basic auth.")
    token_env: str = Field(description="API token (Cloud, with username) or PAT (Data Center).")
    api_version: Literal[2, 3] = 2


class GithubConfig(BaseUrlConfig):
    """``base_url`` defaults to the public API; set it for GitHub Enterprise Server."""

    type: Literal["github"] = "github"
    token_env: str
    repo: str | None = Field(None, pattern=r"^[\w.-]+/[\w.-]+$", description="Default owner/repo.")


class WebhookOutConfig(HttpCommonConfig):
    type: Literal["webhook_out"] = "webhook_out"
    url: str | None = None
    url_env: str | None = None
    secret_env: str

    @model_validator(mode="after")
    def _one_url(self) -> WebhookOutConfig:
        _no_userinfo_password(self.url, "url")
        if bool(self.url) == bool(self.url_env):
            raise ValueError("set exactly one of url or url_env")
        return self


class SqlConfig(CommonConfig):
    type: Literal["sql"] = "sql"
    url: str | None = Field(None, description="SQLAlchemy async URL without a password.")
    url_env: str | None = Field(None, description="Variable holding the whole URL.")
    password_env: str | None = None
    read_only: bool = True
    max_rows: int = Field(1000, ge=1)
    decimal_as: Literal["float", "str"] = "float"
    retry: RetrySettings = Field(default_factory=lambda: RetrySettings(attempts=2))

    @model_validator(mode="after")
    def _one_url(self) -> SqlConfig:
        _no_userinfo_password(self.url, "url")
        if bool(self.url) == bool(self.url_env):
            raise ValueError("set exactly one of url or url_env")
        return self


class EmailConfig(CommonConfig):
    type: Literal["email"] = "email"
    host: str = ""
    host_env: str | None = Field(None, description="Variable holding host or host:port.")
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    from_addr: str
    validate_certs: bool = True
    ca_file: str | None = Field(None, description="Extra CA bundle, e.g. an internal relay's.")
    # One SMTP send is not idempotent; repeat only what the server never received.
    retry: RetrySettings = Field(default_factory=lambda: RetrySettings(attempts=2))

    @model_validator(mode="after")
    def _one_host(self) -> EmailConfig:
        if bool(self.host) == bool(self.host_env):
            raise ValueError("set exactly one of host or host_env")
        return self


ConnectionConfig = Annotated[
    HttpConfig | SqlConfig | EmailConfig | JiraConfig | GithubConfig | WebhookOutConfig,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[ConnectionConfig] = TypeAdapter(ConnectionConfig)


def parse_connections(raw: Mapping[str, Any]) -> dict[str, ConnectionConfig]:
    """Validate a ``{name: config}`` mapping; raise ``ConnectorConfigError`` naming the field."""
    parsed: dict[str, ConnectionConfig] = {}
    for name, value in raw.items():
        if isinstance(value, BaseModel):
            value = value.model_dump()
        try:
            parsed[name] = _ADAPTER.validate_python(value)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
                for err in exc.errors(include_input=False, include_url=False)
            )
            # "from None": the pydantic error would carry the raw input, which may hold a
            # secret pasted into the wrong field.
            raise ConnectorConfigError(
                f"invalid configuration: {problems}", connection=name
            ) from None
    return parsed


def resolve_secret(
    env: Mapping[str, str], variable: str, *, connection: str, field: str
) -> SecretStr:
    """Read the secret named by ``field`` (e.g. ``token_env``) from ``env``.

    An unset or empty variable is a configuration error that names the variable, not its value.
    """
    value = env.get(variable, "")
    if not value:
        raise ConnectorConfigError(
            f"environment variable {variable} (from {field}) is not set", connection=connection
        )
    if not field.endswith("url_env"):  # addresses are not secrets (passwords in URLs are refused)
        remember_secrets([value])  # so no thread, row, log line or prompt ever shows it
    return SecretStr(value)
