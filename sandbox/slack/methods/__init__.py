"""Slack Web API methods over the sandbox workspace, one module per Slack surface.

Each method takes the parsed arguments and returns the success body (without
``ok``) or raises :class:`ApiError` carrying Slack's error code.
"""

from __future__ import annotations

from collections.abc import Callable

from ..records import JSON
from ..state import Workspace
from .args import ApiError, Args
from .base import TRIGGER_TTL_SECONDS, EventSink
from .chat import ChatMethods
from .conversations import ConversationMethods
from .files import FileMethods
from .users import UserMethods
from .views import ViewMethods

Handler = Callable[[Args], JSON]

__all__ = ["TRIGGER_TTL_SECONDS", "ApiError", "Args", "EventSink", "Handler", "Methods"]


class Methods(ChatMethods, ConversationMethods, UserMethods, ViewMethods, FileMethods):
    """The implemented Web API methods, keyed by Slack method name in :attr:`table`."""

    def __init__(
        self, ws: Workspace, events: EventSink, trigger_ttl: float = TRIGGER_TTL_SECONDS
    ) -> None:
        super().__init__(ws, events, trigger_ttl)
        self.table: dict[str, Handler] = {
            "api.test": self.api_test,
            "auth.test": self.auth_test,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.delete": self.chat_delete,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.getPermalink": self.chat_get_permalink,
            "conversations.list": self.conversations_list,
            "conversations.info": self.conversations_info,
            "conversations.history": self.conversations_history,
            "conversations.replies": self.conversations_replies,
            "conversations.members": self.conversations_members,
            "conversations.open": self.conversations_open,
            "conversations.join": self.conversations_join,
            "users.info": self.users_info,
            "users.list": self.users_list,
            "users.lookupByEmail": self.users_lookup_by_email,
            "usergroups.list": self.usergroups_list,
            "usergroups.users.list": self.usergroups_users_list,
            "reactions.add": self.reactions_add,
            "reactions.get": self.reactions_get,
            "views.open": self.views_open,
            "views.push": self.views_push,
            "views.update": self.views_update,
            "views.publish": self.views_publish,
            "files.getUploadURLExternal": self.files_get_upload_url,
            "files.completeUploadExternal": self.files_complete_upload,
        }
