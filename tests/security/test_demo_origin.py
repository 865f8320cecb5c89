"""The demo's act-as-anyone endpoints answer only their own page: a request for another
Host (DNS rebinding), from another Origin (a malicious web page) or a cross-site "simple"
POST (``text/plain``, a form) is a 403/415 with a short reason, and nothing happens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.sandbox.page_harness import RunningDemo, channel_messages, running_demo

HELLO = b'{"user": "alice", "channel": "general", "text": "/flow hello from afar"}'


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningDemo]:
    async with running_demo(tmp_path) as demo:
        yield demo


async def general_texts(running: RunningDemo) -> list[str]:
    return [m.get("text", "") for m in channel_messages(await running.state("alice"), "general")]


async def test_cross_site_and_rebound_requests_are_refused(running: RunningDemo) -> None:
    port = urlsplit(running.url).port
    json_type = {"Content-Type": "application/json"}
    refused: list[tuple[str, dict[str, str], bytes, int]] = [
        ("rebound Host", json_type | {"Host": f"attacker.example:{port}"}, HELLO, 403),
        ("Host without the port", json_type | {"Host": "127.0.0.1"}, HELLO, 403),
        ("loopback on another port", json_type | {"Host": "127.0.0.1:1"}, HELLO, 403),
        ("cross Origin", json_type | {"Origin": "http://attacker.example"}, HELLO, 403),
        ("Origin null", json_type | {"Origin": "null"}, HELLO, 403),
        ("same host, other port", json_type | {"Origin": "http://127.0.0.1:1"}, HELLO, 403),
        ("cross-site fetch", json_type | {"Sec-Fetch-Site": "cross-site"}, HELLO, 403),
        ("text/plain simple POST", {"Content-Type": "text/plain"}, HELLO, 415),
        ("no content type", {}, HELLO, 415),
        (
            "form simple POST",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"user=alice&channel=general&text=%2Fflow+hello",
            415,
        ),
    ]
    before = await general_texts(running)
    for name, headers, body, status in refused:
        response = await running.http.post("/sandbox/act/command", content=body, headers=headers)
        assert response.status_code == status, f"{name}: {response.status_code} {response.text}"
        assert response.json()["ok"] is False, name
        assert len(response.text) < 200, name
    # Reads of the workspace are refused to a rebound name too (the page would show it).
    rebound = await running.http.get(
        "/sandbox/state", params={"user": "alice"}, headers={"Host": f"attacker.example:{port}"}
    )
    assert rebound.status_code == 403
    assert await general_texts(running) == before
    assert not [e for e in running.demo.page.devlog.entries(0) if e.get("kind") == "delivery"]


async def test_the_pages_own_same_origin_json_still_acts(running: RunningDemo) -> None:
    headers = {
        "Content-Type": "application/json",
        "Origin": running.url,
        "Sec-Fetch-Site": "same-origin",
    }
    response = await running.http.post("/sandbox/act/command", content=HELLO, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["delivered"] is True
    localhost = running.url.replace("127.0.0.1", "localhost")
    by_name = await running.http.post(
        "/sandbox/act/command",
        content=HELLO,
        headers=headers | {"Origin": localhost, "Host": urlsplit(localhost).netloc},
    )
    assert by_name.status_code == 200, by_name.text
