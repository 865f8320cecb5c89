"""The e-mail connector: plain-text messages over SMTP (aiosmtplib), STARTTLS by default.

::

    mail = EmailConnector.from_config("mail", EmailConfig(host="smtp.example.com",
                                      from_addr="bot@example.com", username="bot",
                                      password_env="SMTP_PASSWORD"), env)
    await mail.send(["ap@example.com"], "Invoice booked", "…", idempotency_key=f"{run}:{step}")

One SMTP transaction is not idempotent, so a send is repeated in process only when the server
certainly did not take the message (connection refused, a 4xx reply). ``idempotency_key``
becomes a deterministic ``Message-ID``, which lets mail systems drop the duplicate if the engine
ever repeats a send whose outcome was unknown.

Errors: connect failure, timeout and 4xx replies → ``ConnectorUnavailable``; 5xx replies
(bad address, authentication refused, policy) and header injection attempts →
``ConnectorRejected``.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib
from pydantic import SecretStr

from connectors.base import Hooks, make_guard
from connectors.config import EmailConfig, resolve_secret
from connectors.errors import (
    ConnectorConfigError,
    ConnectorRejected,
    ConnectorUnavailable,
    redact,
)
from connectors.resilience import Guard

__all__ = ["EmailAttachment", "EmailConnector", "EmailResult", "message_id_for"]


@dataclass(frozen=True)
class EmailAttachment:
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class EmailResult:
    message_id: str
    refused: dict[str, str] = field(default_factory=dict)
    """Recipients the server refused (the others got the message), with its reply."""


def message_id_for(idempotency_key: str, from_addr: str) -> str:
    """The ``Message-ID`` of the message sent under ``idempotency_key``: the same every time."""
    domain = from_addr.rpartition("@")[2] or "switchboard.invalid"
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@{domain}>"


def _with_host(config: EmailConfig, address: str, name: str) -> EmailConfig:
    """The configuration with ``host`` (and ``port``, from ``host:port``) read from the variable."""
    host, _, port = address.strip().rpartition(":") if ":" in address else (address, "", "")
    if port and not port.isdigit():
        raise ConnectorConfigError(f"host_env: not host or host:port: {address!r}", connection=name)
    update: dict[str, object] = {"host": host.strip() or address.strip(), "host_env": None}
    if port:
        update["port"] = int(port)
    return config.model_copy(update=update)


class EmailConnector:
    kind = "email"

    def __init__(
        self, name: str, config: EmailConfig, guard: Guard, password: SecretStr | None = None
    ) -> None:
        self.name = name
        self.config = config
        self.guard = guard
        self._password = password

    @classmethod
    def from_config(
        cls, name: str, config: EmailConfig, env: Mapping[str, str], hooks: Hooks | None = None
    ) -> EmailConnector:
        password = None
        if config.password_env:
            if not config.username:
                raise ConnectorConfigError("password_env needs a username", connection=name)
            password = resolve_secret(
                env, config.password_env, connection=name, field="password_env"
            )
        if config.host_env:
            # An address, not a secret: read as is (a secret would be scrubbed from every text).
            address = env.get(config.host_env, "")
            if not address:
                raise ConnectorConfigError(f"{config.host_env} is not set", connection=name)
            config = _with_host(config, address, name)
        secrets = (password.get_secret_value(),) if password else ()
        return cls(
            name, config, make_guard(name, config, hooks or Hooks(), secrets=secrets), password
        )

    def build_message(
        self,
        to: Sequence[str],
        subject: str,
        body: str,
        *,
        cc: Sequence[str] = (),
        reply_to: str | None = None,
        idempotency_key: str | None = None,
        attachments: Sequence[EmailAttachment] = (),
    ) -> EmailMessage:
        message = EmailMessage()
        try:
            message["From"] = self.config.from_addr
            message["To"] = ", ".join(to)
            if cc:
                message["Cc"] = ", ".join(cc)
            if reply_to:
                message["Reply-To"] = reply_to
            message["Subject"] = subject
        except ValueError as exc:  # CR/LF in a header: someone is trying to add headers
            raise ConnectorRejected(f"invalid header value: {exc}", connection=self.name) from None
        message["Date"] = formatdate(localtime=False)
        domain = self.config.from_addr.rpartition("@")[2] or "switchboard.invalid"
        if idempotency_key is not None:
            message["Message-ID"] = message_id_for(idempotency_key, self.config.from_addr)
        else:
            message["Message-ID"] = make_msgid(domain=domain)
        message.set_content(body)
        for attachment in attachments:
            maintype, _, subtype = attachment.content_type.partition("/")
            message.add_attachment(
                attachment.content,
                maintype=maintype,
                subtype=subtype or "octet-stream",
                filename=attachment.filename.replace("\r", " ").replace("\n", " "),
            )
        return message

    async def send(
        self,
        to: str | Sequence[str],
        subject: str,
        body: str,
        *,
        cc: Sequence[str] = (),
        bcc: Sequence[str] = (),
        reply_to: str | None = None,
        idempotency_key: str | None = None,
        attachments: Sequence[EmailAttachment] = (),
    ) -> EmailResult:
        """Send one plain-text message; raise a ``ConnectorError`` unless someone accepted it."""
        recipients = [to] if isinstance(to, str) else list(to)
        message = self.build_message(
            recipients,
            subject,
            body,
            cc=cc,
            reply_to=reply_to,
            idempotency_key=idempotency_key,
            attachments=attachments,
        )
        envelope = [*recipients, *cc, *bcc]

        async def send_once() -> EmailResult:
            refused = await self._smtp_send(message, envelope)
            return EmailResult(str(message["Message-ID"]), refused)

        return await self.guard.call(send_once, idempotent=False)

    async def _smtp_send(self, message: EmailMessage, envelope: list[str]) -> dict[str, str]:
        cfg = self.config
        try:
            errors, _reply = await aiosmtplib.send(
                message,
                recipients=envelope,
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.username if self._password else None,
                password=self._password.get_secret_value() if self._password else None,
                use_tls=cfg.security == "tls",
                start_tls=cfg.security == "starttls",
                validate_certs=cfg.validate_certs,
                cert_bundle=cfg.ca_file,
                timeout=cfg.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            detail = redact(
                "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients),
                self.guard.secrets,
            )
            if all(400 <= r.code < 500 for r in exc.recipients):  # greylisting, full mailbox
                raise ConnectorUnavailable(
                    f"all recipients deferred: {detail}", connection=self.name, not_processed=True
                ) from exc
            raise ConnectorRejected(
                f"all recipients refused: {detail}", connection=self.name
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            detail = redact(f"{exc.code} {exc.message}", self.guard.secrets)
            if 400 <= exc.code < 500:  # transient: the server did not take the message
                raise ConnectorUnavailable(
                    f"SMTP server deferred: {detail}", connection=self.name, not_processed=True
                ) from exc
            raise ConnectorRejected(
                f"SMTP server refused: {detail}", connection=self.name, status_code=exc.code
            ) from exc
        except aiosmtplib.SMTPNotSupported as exc:  # e.g. no STARTTLS or AUTH: a setup problem
            raise ConnectorRejected(
                f"SMTP server does not support what we need: {exc}", connection=self.name
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise ConnectorRejected(
                f"TLS certificate of {cfg.host} not trusted ({exc.verify_message}); "
                "set ca_file to the relay's CA",
                connection=self.name,
            ) from exc
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPConnectTimeoutError) as exc:
            raise ConnectorUnavailable(
                f"cannot connect to {cfg.host}:{cfg.port} ({type(exc).__name__})",
                connection=self.name,
                not_processed=True,
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Timeouts, disconnects, TLS failures: whether the message went is unknown.
            raise ConnectorUnavailable(
                f"SMTP failed ({type(exc).__name__})", connection=self.name
            ) from exc
        return {addr: f"{resp.code} {resp.message}" for addr, resp in errors.items()}

    async def aclose(self) -> None:
        """Nothing to close: each send opens and closes its own SMTP session."""
