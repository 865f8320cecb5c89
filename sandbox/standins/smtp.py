"""An SMTP sink: accepts every message on a loopback port and keeps it in a list.

aiosmtpd (a development dependency: ``make demo`` and the tests install it) runs
the server on its own thread and event loop. Without aiosmtpd the sink is simply
absent and the stand-in systems send no e-mail.
"""

from __future__ import annotations

import email
import email.policy
import logging
import socket
from email.message import EmailMessage
from typing import Any

from sandbox.standins.api import Mail

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _attachment_names(message: Any) -> list[str]:
    if not isinstance(message, EmailMessage):
        return []
    return [str(part.get_filename()) for part in message.iter_attachments()]


class _Keep:
    def __init__(self, mailbox: list[Mail]) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(("plain",)) if isinstance(message, EmailMessage) else None
        self.mailbox.append(
            Mail(
                sender=str(envelope.mail_from),
                recipients=[str(r) for r in envelope.rcpt_tos],
                subject=str(message.get("Subject", "")),
                body=body.get_content() if body is not None else "",
                message_id=str(message.get("Message-ID", "")),
                attachments=_attachment_names(message),
            )
        )
        return "250 Message accepted for delivery"


class SmtpSink:
    """``start()`` / ``stop()`` a sink on ``host:port`` appending to ``mailbox``."""

    def __init__(self, mailbox: list[Mail], host: str = "127.0.0.1", port: int = 0) -> None:
        self.mailbox = mailbox
        self.host = host
        self.port = port or free_port(host)
        self._controller: Any = None

    def start(self) -> bool:
        """Start the sink; False (and a log line) when aiosmtpd is not installed."""
        try:
            from aiosmtpd.controller import Controller
        except ImportError:
            log.warning("aiosmtpd is not installed: the stand-ins' SMTP sink is off")
            return False
        # aiosmtpd logs every connection at INFO ("mail.log"); a sink needs none of it.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self._controller = Controller(_Keep(self.mailbox), hostname=self.host, port=self.port)
        self._controller.start()
        return True

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
