"""Real servers for the connector tests: a scriptable HTTP API, SMTP, TLS material, PostgreSQL.

``FakeApi`` is a Starlette app served on loopback by ``serve_asgi``. A test scripts replies per
path (``api.script("/x", Reply(503), Reply(200, json=…))``) or installs a handler function;
unscripted requests get 200 with an echo of what was received. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import shutil
import subprocess
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.config import BreakerSettings, RetrySettings
from connectors.resilience import BreakerState, CircuitBreaker
from tests.support.servers import serve_asgi

PG_URL = os.environ.get(
    "SWITCHBOARD_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)

# Settings that keep the suite fast: milliseconds of back-off, sub-second breaker reset.
FAST_RETRY = RetrySettings(attempts=3, backoff_initial_s=0.01, backoff_max_s=0.05, jitter_s=0.01)
FAST_BREAKER = BreakerSettings(failure_threshold=3, reset_timeout_s=0.3)


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """Read the state through a call, so type checkers do not pin it between assertions."""
    return breaker.state


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    content_type: str = "application/json"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[Call, str], Reply]


class FakeApi:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.base_url = ""
        self.in_flight = 0
        self.max_in_flight = 0
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._handlers: dict[str, Handler] = {}
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        self.app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=methods)])

    def script(self, path: str, *replies: Reply) -> None:
        self._scripts[path].extend(replies)

    def handle(self, path: str, handler: Handler) -> None:
        self._handlers[path] = handler

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    async def _endpoint(self, request: Request) -> Response:
        call = Call(
            request.method,
            request.url.path,
            dict(request.query_params),
            {k.lower(): v for k, v in request.headers.items()},
            await request.body(),
        )
        self.calls.append(call)
        if self._scripts[call.path]:
            reply = self._scripts[call.path].popleft()
        elif call.path in self._handlers:
            reply = self._handlers[call.path](call, self.base_url)
        else:
            echo = call.json() if call.body else None
            reply = Reply(json={"method": call.method, "query": call.query, "json": echo})
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(reply.delay_s)
        finally:
            self.in_flight -= 1
        content = reply.body if reply.body is not None else json.dumps(reply.json).encode()
        return Response(content, reply.status, headers=reply.headers, media_type=reply.content_type)


@pytest.fixture
async def api() -> AsyncIterator[FakeApi]:
    fake = FakeApi()
    async with serve_asgi(fake.app) as base_url:
        fake.base_url = base_url
        yield fake


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost, made here: (cert.pem, key.pem).

    Uses the ``cryptography`` package when installed, else the ``openssl`` command.
    """
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    try:
        _write_cert_with_cryptography(cert_path, key_path)
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor openssl is available for a cert")
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-keyout",
                str(key_path),
                "-out",
                str(cert_path),
            ],
            check=True,
            capture_output=True,
        )
    return cert_path, key_path


def _write_cert_with_cryptography(cert_path: Path, key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


async def pg_unavailable_reason() -> str | None:
    import asyncpg

    raw = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    try:
        conn = await asyncio.wait_for(asyncpg.connect(raw), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}"
    await conn.close()
    return None


@pytest.fixture
async def pg_url() -> str:
    reason = await pg_unavailable_reason()
    if reason:
        pytest.skip(reason)
    return PG_URL
