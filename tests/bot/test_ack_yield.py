"""The in-process worker steps aside while Slack requests are in flight (issue 24).

``switchboard serve`` runs its worker on the event loop that answers Slack. While a
request is in flight the worker neither claims jobs nor starts steps; after a bound it
goes ahead anyway, so a constant stream of requests cannot starve it. A request is held
in flight for real: its headers and half its body sent over a TCP connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import AsyncIterator

from tests.support.harness import Harness, running_bot
from tests.support.stores import Database


@contextlib.asynccontextmanager
async def held_request(harness: Harness) -> AsyncIterator[None]:
    """A POST to /slack/events whose body is only half sent until the block exits."""
    url = urllib.parse.urlsplit(harness.bot_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    body = b"command=%2Fflow&text=hello"
    writer.write(
        b"POST /slack/events HTTP/1.1\r\nHost: bot\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body[:10]
    )
    await writer.drain()
    load = harness.runtime.ingress_load
    await harness.slack.wait_for(lambda: load.in_flight > 0, message="request not in flight")
    try:
        yield
    finally:
        writer.write(body[10:])  # unsigned: a short 401, and the request is over
        await writer.drain()
        assert (await reader.readline()).startswith(b"HTTP/1.1 401")
        writer.close()
        await writer.wait_closed()


async def hello_replied(harness: Harness, text: str) -> None:
    expected = f"Hello, {text}!"
    await harness.slack.wait_for(
        lambda: any(
            expected in m.get("text", "")
            for m in harness.slack.messages("general", include_replies=True)
        ),
        timeout=20,
        message=f"no reply {expected!r}",
    )


async def test_no_claim_while_a_request_is_in_flight(database: Database) -> None:
    async with running_bot(database) as harness:
        load = harness.runtime.ingress_load
        load.max_defer_seconds = 600  # the bound out of the way: only the ingress decides
        async with held_request(harness):
            result = await harness.slack.slash_command("alice", "general", "start hello one")
            assert result.ok and "Started" in result.body, result.body
            await asyncio.sleep(0.5)  # time for a worker that did not yield to run the steps
            texts = [
                m.get("text", "") for m in harness.slack.messages("general", include_replies=True)
            ]
            assert not any("Hello, one!" in text for text in texts), texts
            assert load.deferrals >= 1
        await hello_replied(harness, "one")  # the ingress is idle: the run goes on


async def test_a_constant_stream_of_requests_does_not_starve_the_worker(
    database: Database,
) -> None:
    async with running_bot(database) as harness:
        load = harness.runtime.ingress_load
        load.max_defer_seconds = 0.05
        async with held_request(harness):  # in flight from start to finish
            for name in ("one", "two", "three"):
                result = await harness.slack.slash_command(
                    "alice", "general", f"start hello {name}"
                )
                assert result.ok, result.body
            for name in ("one", "two", "three"):
                await hello_replied(harness, name)
            assert load.in_flight >= 1 and load.deferrals >= 1
