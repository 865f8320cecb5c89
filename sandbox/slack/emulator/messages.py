"""People post, edit, react, run slash commands and shortcuts; raw Events API delivery."""

from __future__ import annotations

from .. import payloads
from ..delivery import DeliveryResult
from ..methods import ApiError
from ..records import JSON, Ephemeral, Message
from .core import EmulatorCore


class MessageActions(EmulatorCore):
    """What people do to messages and conversations, delivered to the app as Slack would."""

    async def send_event(self, event: JSON) -> DeliveryResult:
        """Deliver any event (wrapped in an event_callback envelope), with Slack's retries."""
        return await self._deliver_event(event)

    async def verify_url(self, challenge: str = "sandbox-challenge") -> DeliveryResult:
        """Slack's url_verification handshake; ``outcome`` is "verified" when echoed back."""
        result = await self._deliverer.send_json(
            "url_verification", payloads.url_verification(challenge)
        )
        body = result.json()
        echoed = body.get("challenge") if isinstance(body, dict) else result.body.strip()
        result.outcome = "verified" if result.ok and echoed == challenge else "failed"
        return result

    async def retry_event(self, event_id: str) -> DeliveryResult:
        """Send the next retry of a failed event now (see ``event_retry_delays=None``)."""
        return await self._deliverer.retry_event(event_id, self._spawn)

    def failed_events(self) -> list[str]:
        return self._deliverer.failed_events()

    async def user_posts(
        self,
        user: str,
        channel: str,
        text: str,
        thread_ts: str | None = None,
        blocks: list[JSON] | None = None,
    ) -> JSON:
        """A person posts a message: stored, then delivered as message (and app_mention) events."""
        u = self.user(user)
        ch = self._conversation(u, channel)
        if u.id not in ch.members:
            raise PermissionError(f"{u.name} is not a member of {ch.name}")

        def act() -> Message:
            parent = ch.messages.get(thread_ts) if thread_ts else None
            msg = Message(
                channel=ch.id,
                ts=self.workspace.clock.next(),
                user=u.id,
                text=text,
                blocks=blocks if blocks is not None else payloads.rich_text_blocks(text),
                thread_ts=(parent.thread_ts or parent.ts) if parent else None,
                team=self.workspace.team_id,
            )
            return self._methods.post(msg)

        msg, _ = await self._deliver_collected(act)
        out = self.workspace.message_dict(msg)
        out["channel"] = ch.id
        return out

    async def user_edits(self, user: str, channel: str, ts: str, text: str) -> list[DeliveryResult]:
        """A person edits their message: delivered as a message_changed event."""
        msg = self._message(ts, channel)
        if msg.user != self.user_id(user):
            raise PermissionError("people can only edit their own messages")
        _, results = await self._deliver_collected(
            lambda: self._methods.replace(msg, text, payloads.rich_text_blocks(text))
        )
        return results

    async def add_reaction(
        self, user: str, channel: str, ts: str, name: str
    ) -> list[DeliveryResult]:
        """A person reacts to a message: delivered as a reaction_added event."""
        msg = self._message(ts, channel)
        uid = self.user_id(user)
        try:
            _, results = await self._deliver_collected(
                lambda: self._methods.react(msg, uid, name.strip(":"))
            )
        except ApiError as exc:
            raise ValueError(exc.error) from None
        return results

    async def open_home(self, user: str) -> DeliveryResult:
        """A person opens the app's Home tab: delivers app_home_opened."""
        u = self.user(user)
        dm = self.dm_channel(u.id)
        view = self.workspace.views.get(self.workspace.home_views.get(u.id, ""))
        event = payloads.app_home_opened_event(
            self.workspace, u.id, dm.id, view, self.workspace.clock.next()
        )
        return await self._deliver_event(event)

    async def slash_command(
        self, user: str, channel: str | None, text: str = "", command: str = "/flow"
    ) -> DeliveryResult:
        """A person runs a slash command; an answer in the ack body is shown as Slack shows it."""
        u = self.user(user)
        ch = self._conversation(u, channel)
        trigger = self.workspace.new_trigger(u.id)
        ru = self.workspace.new_response_url(u.id, ch.id)
        form = payloads.slash_command_form(
            self.workspace, u, ch, command, text, self._response_url(ru.id), trigger.id
        )
        result = await self._deliverer.send_form("slash_command", form)
        if not result.ok:
            reason = "operation_timeout" if result.timed_out else "dispatch_failed"
            self._slackbot_says(u.id, ch.id, f'{command} failed with the error "{reason}"')
            result.outcome = reason
            return result
        if result.body.strip():
            body = result.json()
            reply = body if isinstance(body, dict) else {"text": result.body}
            try:
                self._methods.respond(ru, reply, source="command_response")
                result.outcome = "responded"
            except ApiError as exc:
                result.outcome = exc.error
        return result

    def _slackbot_says(self, user: str, channel: str, text: str) -> None:
        self.workspace.ephemerals.append(
            Ephemeral(
                user=user,
                channel=channel,
                ts=self.workspace.clock.next(),
                text=text,
                source="slackbot",
            )
        )

    async def message_shortcut(
        self, user: str, channel: str, ts: str, callback_id: str = "send_to_switchboard"
    ) -> DeliveryResult:
        """A person picks the app's message shortcut on a message."""
        u = self.user(user)
        msg = self._message(ts, channel)
        ch = self.channel(msg.channel)
        trigger = self.workspace.new_trigger(u.id)
        ru = self.workspace.new_response_url(u.id, ch.id)
        payload = payloads.message_action(
            self.workspace, u, ch, msg, callback_id, trigger.id, self._response_url(ru.id)
        )
        return await self._deliverer.send_interaction(payload)
