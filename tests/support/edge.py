"""Helpers for tests of the HTTP edge: Slack-signed raw bodies, captured logs, and the
trigger labels the bot's ``/metrics`` shows.

The signature is computed here (not with the emulator's signer) so the tests state
Slack's scheme themselves: ``v0=hex(HMAC-SHA256(secret, "v0:{ts}:{raw body}"))``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import logging
import time
from collections.abc import Iterator

import httpx
import structlog
from prometheus_client.parser import text_string_to_metric_families

from bot.logs import configure_logging

FORM = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"


def slack_headers(
    secret: str, body: bytes, content_type: str = FORM, timestamp: int | None = None
) -> dict[str, str]:
    sent_at = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"v0:{sent_at}:".encode() + body, hashlib.sha256)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(sent_at),
        "X-Slack-Signature": f"v0={mac.hexdigest()}",
    }


@contextlib.contextmanager
def captured_logs(level: str = "DEBUG") -> Iterator[io.StringIO]:
    """Every log record, rendered by the product's own pipeline (JSON lines), into a buffer."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging(level=level, fmt="json", stream=stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        structlog.reset_defaults()


def log_records(stream: io.StringIO) -> list[dict[str, object]]:
    records: list[dict[str, object]] = []
    for line in stream.getvalue().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            records.append({"event": line, "level": "unparsed"})
    return records


async def request_counts(bot_url: str) -> dict[tuple[str, str], float]:
    """``switchboard_requests_received_total`` by (trigger, status)."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{bot_url}/metrics")
    response.raise_for_status()
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "switchboard_requests_received_total":
                counts[(sample.labels["trigger"], sample.labels["status"])] = sample.value
    return counts


async def trigger_labels(bot_url: str) -> set[str]:
    """Every ``trigger`` label value in the exposition, across all families."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{bot_url}/metrics")
    response.raise_for_status()
    return {
        sample.labels["trigger"]
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if "trigger" in sample.labels
    }
