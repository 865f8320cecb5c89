"""The email connector against a real aiosmtpd server: plain, STARTTLS with AUTH, failures."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from connectors.config import EmailConfig, RetrySettings
from connectors.email import EmailConnector
from connectors.errors import ConnectorConfigError, ConnectorRejected, ConnectorUnavailable
from tests.support.servers import free_port

ENV = {"SMTP_PASSWORD": "smtp-s3cret-000"}


class Inbox:
    """aiosmtpd handler that keeps what it receives; can defer or refuse on request."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.rcpt_reply: dict[str, str] = {}

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.rcpt_reply:
            return self.rcpt_reply[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"


def check_login(
    server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"bot",
        b"smtp-s3cret-000",
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535


StartSmtp = Callable[..., Controller]


@pytest.fixture
async def smtp() -> AsyncIterator[StartSmtp]:
    controllers: list[Controller] = []

    async def start(handler: Inbox, **kwargs: Any) -> Controller:
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
        await asyncio.to_thread(controller.start)  # its own thread and loop, like a real server
        controllers.append(controller)
        return controller

    yield start  # type: ignore[misc]
    for controller in controllers:
        await asyncio.to_thread(controller.stop)


def mail_connector(port: int, env: dict[str, str] = ENV, **overrides: Any) -> EmailConnector:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from_addr": "switchboard@example.com",
        "timeout_s": 5,
        "retry": RetrySettings(attempts=2, backoff_initial_s=0.01, jitter_s=0.01),
        **overrides,
    }
    return EmailConnector.from_config("mail", EmailConfig(**settings), env)


async def test_plain_send_delivers_text_with_idempotent_message_id(smtp: Any) -> None:
    inbox = Inbox()
    server = await smtp(inbox)
    mail = mail_connector(server.port)

    first = await mail.send(
        ["ap@example.com"],
        "Invoice booked",
        "Booked.\nThanks",
        bcc=["audit@example.com"],
        idempotency_key="run-1:notify",
    )
    second = mail.build_message(["x@example.com"], "s", "b", idempotency_key="run-1:notify")

    assert first.message_id == second["Message-ID"]
    assert first.refused == {}
    (envelope,) = inbox.envelopes
    assert envelope.mail_from == "switchboard@example.com"
    assert envelope.rcpt_tos == ["ap@example.com", "audit@example.com"]
    received = message_from_bytes(envelope.original_content or b"")
    assert received["Subject"] == "Invoice booked"
    assert "Bcc" not in received  # blind copies stay blind
    payload = received.get_payload(decode=True)
    assert isinstance(payload, bytes)
    text = payload.decode()
    assert text.replace("\r\n", "\n").strip() == "Booked.\nThanks"  # CRLF on the wire


async def test_starttls_with_self_signed_cert_and_auth(
    smtp: Any, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    server = await smtp(
        inbox,
        tls_context=context,
        require_starttls=True,
        authenticator=check_login,
        auth_required=True,
        auth_require_tls=True,
    )
    mail = mail_connector(
        server.port,
        security="starttls",
        ca_file=str(cert),
        username="bot",
        password_env="SMTP_PASSWORD",
    )
    await mail.send("ops@example.com", "Hello", "over TLS")
    assert len(inbox.envelopes) == 1

    untrusted = mail_connector(
        server.port, security="starttls", username="bot", password_env="SMTP_PASSWORD"
    )
    with pytest.raises(ConnectorRejected, match="not trusted"):  # not in the default store
        await untrusted.send("ops@example.com", "Hello", "over TLS")

    wrong = mail_connector(
        server.port,
        {"SMTP_PASSWORD": "not-it"},
        security="starttls",
        ca_file=str(cert),
        username="bot",
        password_env="SMTP_PASSWORD",
    )
    with pytest.raises(ConnectorRejected) as info:
        await wrong.send("ops@example.com", "Hello", "over TLS")
    assert "not-it" not in str(info.value)
    assert len(inbox.envelopes) == 1


async def test_deferred_recipient_is_unavailable_refused_is_rejected(smtp: Any) -> None:
    inbox = Inbox()
    inbox.rcpt_reply = {
        "later@example.com": "451 try again later",
        "gone@example.com": "550 no such user",
    }
    server = await smtp(inbox)
    mail = mail_connector(server.port)

    with pytest.raises(ConnectorRejected, match="550"):
        await mail.send(["gone@example.com"], "s", "b")
    partial = await mail.send(["gone@example.com", "ok@example.com"], "s", "b")
    assert partial.refused == {"gone@example.com": "550 no such user"}
    with pytest.raises(ConnectorUnavailable, match="451") as info:
        await mail.send(["later@example.com"], "s", "b")
    assert info.value.not_processed
    assert len(inbox.envelopes) == 1  # only the partial send above got through


async def test_header_injection_is_rejected() -> None:
    mail = mail_connector(1)
    with pytest.raises(ConnectorRejected, match="header"):
        await mail.send(["a@example.com"], "hi\r\nBcc: victim@example.com", "b")


async def test_unreachable_server_is_unavailable_and_retried() -> None:
    mail = mail_connector(free_port())
    with pytest.raises(ConnectorUnavailable, match="cannot connect") as info:
        await mail.send(["a@example.com"], "s", "b")
    assert info.value.retryable and info.value.not_processed


def test_password_needs_username_and_its_variable() -> None:
    with pytest.raises(ConnectorConfigError, match="username"):
        EmailConnector.from_config(
            "mail", EmailConfig(host="h", from_addr="a@b.c", password_env="SMTP_PASSWORD"), ENV
        )
    with pytest.raises(ConnectorConfigError, match="MISSING_PW"):
        EmailConnector.from_config(
            "mail",
            EmailConfig(host="h", from_addr="a@b.c", username="u", password_env="MISSING_PW"),
            ENV,
        )
