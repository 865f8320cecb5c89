"""``SlackEmulator``: one local Slack workspace the bot cannot tell from Slack.

It serves the Web API (``.asgi_app``), delivers signed commands, clicks, view
submissions, shortcuts and events to the bot's request URL, and lets tests and
the demo read what every user saw. Typical use::

    emu = SlackEmulator(signing_secret, bot_token, WorkspaceSeed.demo())
    async with serve_asgi(emu.asgi_app) as url:
        emu.base_url = url                    # where response_urls and uploads point
        emu.request_url = bot_url + "/slack/events"
        await emu.slash_command("alice", "#general", "start invoice")
        await emu.wait_for(lambda: emu.messages("#general"))
"""

from __future__ import annotations

from .core import DEFAULT_BOT_EVENTS
from .inspection import Inspection
from .messages import MessageActions
from .views import ViewActions

__all__ = ["DEFAULT_BOT_EVENTS", "SlackEmulator"]


class SlackEmulator(MessageActions, ViewActions, Inspection):
    """A local Slack workspace: Web API, signed delivery to the bot, and inspection helpers.

    One class per Slack surface (``messages``, ``interactions`` + ``views``,
    ``inspection``) over :class:`~.core.EmulatorCore`; this class only combines
    them, so tests and the demo keep one flat object to drive.
    """
