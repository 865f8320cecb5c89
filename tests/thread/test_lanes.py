"""What the outbox sends first and what it coalesces (``workflows/chat_lanes.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from workflows.chat_lanes import HUMAN, ROOT, Deliver, Lanes
from workflows.chat_waits import ChatRateLimited
from workflows.null_chat import ChatDisabled
from workflows.ports import MessageRef

Enter = Callable[[tuple[str, str]], Awaitable[None]]


class Chat:
    """Deliveries that record what landed, in order; ``hold`` keeps them at the door."""

    def __init__(self) -> None:
        self.landed: list[str] = []
        self.hold = asyncio.Event()
        self.hold.set()

    def delivery(self, lane: tuple[str, str], state: str, *, held: bool = False) -> Deliver:
        async def deliver(enter: Enter) -> MessageRef:
            await enter(lane)
            if held:
                await self.hold.wait()
            self.landed.append(state)
            return MessageRef(lane[1], state)

        return deliver


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_states_queued_behind_one_in_flight_coalesce_and_the_last_lands() -> None:
    lanes, chat = Lanes(), Chat()
    chat.hold.clear()
    lane = ("update", "")
    await lanes.later("run/_run/card", chat.delivery(lane, "v1", held=True))
    await settle()
    for n in range(2, 6):
        await lanes.later("run/_run/card", chat.delivery(lane, f"v{n}"))
    chat.hold.set()
    await lanes.drain()
    assert chat.landed == ["v1", "v5"]


async def test_a_waiting_caller_returns_once_its_state_or_a_later_one_landed() -> None:
    lanes, chat = Lanes(), Chat()
    chat.hold.clear()
    lane = ("update", "")
    await lanes.later("k", chat.delivery(lane, "draft", held=True))
    await settle()
    final = asyncio.create_task(lanes.deliver("k", chat.delivery(lane, "final")))
    await settle()
    assert not final.done()
    chat.hold.set()
    ref = await asyncio.wait_for(final, 2)
    assert ref.ts == "final" and chat.landed == ["draft", "final"]


async def test_a_run_card_waits_while_a_root_is_in_its_channel_not_in_another() -> None:
    lanes, chat = Lanes(), Chat()
    chat.hold.clear()
    general, other = ("post", "C1"), ("post", "C2")
    root = asyncio.create_task(
        lanes.deliver("r2/_run/root", chat.delivery(general, "root", held=True))
    )
    await settle()
    await lanes.later("r1/_run/card", chat.delivery(general, "card in C1"))
    await lanes.later("r3/_run/card", chat.delivery(other, "card in C2"))
    await settle()
    assert chat.landed == ["card in C2"], "the card behind the root waits; the other goes"
    chat.hold.set()
    await root
    await lanes.drain()
    assert chat.landed == ["card in C2", "root", "card in C1"]


async def test_a_card_a_person_waits_for_is_promoted_past_the_root() -> None:
    lanes, chat = Lanes(), Chat()
    chat.hold.clear()
    general = ("post", "C1")
    root = asyncio.create_task(
        lanes.deliver("r2/_run/root", chat.delivery(general, "root", held=True))
    )
    await settle()
    await lanes.later("r1/_run/card", chat.delivery(general, "card"))
    final = asyncio.create_task(lanes.deliver("r1/_run/card", chat.delivery(general, "final card")))
    await asyncio.wait_for(final, 2)
    assert chat.landed == ["final card"], "an outcome does not wait behind other runs' roots"
    chat.hold.set()
    await root


async def test_the_roots_of_a_busy_channel_go_before_the_runs_own_posts() -> None:
    lanes, chat = Lanes(), Chat()
    chat.hold.clear()
    general = ("post", "C1")
    first = asyncio.create_task(
        lanes.deliver("r1/_run/root", chat.delivery(general, "root 1", held=True), ROOT)
    )
    await settle()
    reply = asyncio.create_task(lanes.deliver("r1/reply/post", chat.delivery(general, "reply 1")))
    await settle()
    second = asyncio.create_task(
        lanes.deliver("r2/_run/root", chat.delivery(general, "root 2"), ROOT)
    )
    await settle()
    assert chat.landed == ["root 2"], "a root does not wait for anything but Slack"
    chat.hold.set()
    await asyncio.gather(first, reply, second)
    assert chat.landed == ["root 2", "root 1", "reply 1"]


async def test_a_background_state_slack_rate_limits_is_sent_again_after_retry_after() -> None:
    lanes, landed = Lanes(), []
    answers = [ChatRateLimited("Slack chat.update: ratelimited", retry_after=0.05)]

    async def deliver(enter: Enter) -> MessageRef:
        await enter(("update", ""))
        if answers:
            raise answers.pop()
        landed.append("final")
        return MessageRef("C1", "1.0")

    await lanes.later("r1/_run/root", deliver, HUMAN)
    await asyncio.wait_for(lanes.drain(), 2)
    assert landed == ["final"]


async def test_a_process_without_chat_keeps_nothing_for_the_keys_it_could_not_send() -> None:
    lanes = Lanes()

    async def deliver(enter: Enter) -> MessageRef:
        await enter(("post", "C1"))
        raise ChatDisabled

    for n in range(3):
        await lanes.later(f"r{n}/_run/card", deliver)
    await lanes.drain()
    assert lanes.pending() == 0
