"""The sandbox: a local Slack stand-in the bot cannot tell from Slack.

Public surface: :class:`SlackEmulator` (Web API + signed delivery + inspection),
the workspace seed models, and the records tests assert on.
"""

from .blockkit_limits import validate_blocks, validate_view
from .delivery import DeliveryResult
from .emulator import DEFAULT_BOT_EVENTS, SlackEmulator
from .seeds import ChannelSeed, UserGroupSeed, UserSeed, WorkspaceSeed
from .signing import signed_headers
from .web_api import DEFAULT_RATE_LIMITS, ApiCall, Fault

__all__ = [
    "DEFAULT_BOT_EVENTS",
    "DEFAULT_RATE_LIMITS",
    "ApiCall",
    "ChannelSeed",
    "DeliveryResult",
    "Fault",
    "SlackEmulator",
    "UserGroupSeed",
    "UserSeed",
    "WorkspaceSeed",
    "signed_headers",
    "validate_blocks",
    "validate_view",
]
