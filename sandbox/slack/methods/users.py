"""users.* and usergroups.*: the workspace directory."""

from __future__ import annotations

import time

from ..records import JSON
from .args import ApiError, Args, cursor_page
from .base import MethodsBase


class UserMethods(MethodsBase):
    def users_info(self, args: Args) -> JSON:
        user = self.ws.users.get(args.opt("user") or "")
        if user is None:
            raise ApiError("user_not_found")
        return {"user": self.ws.user_dict(user)}

    def users_list(self, args: Args) -> JSON:
        members = [self.ws.user_dict(u) for u in self.ws.users.values()]
        page, cursor = cursor_page(members, args, default_limit=1000)
        return {
            "members": page,
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": cursor},
        }

    def users_lookup_by_email(self, args: Args) -> JSON:
        email = (args.opt("email") or "").lower()
        for user in self.ws.users.values():
            if user.email and user.email.lower() == email and not user.is_bot:
                return {"user": self.ws.user_dict(user)}
        raise ApiError("users_not_found")

    def usergroups_list(self, args: Args) -> JSON:
        include_users = args.flag("include_users")
        include_count = args.flag("include_count")
        out = []
        for g in self.ws.usergroups.values():
            item: JSON = {
                "id": g.id,
                "team_id": self.ws.team_id,
                "is_usergroup": True,
                "is_subteam": True,
                "name": g.name,
                "description": g.description,
                "handle": g.handle,
                "is_external": False,
                "date_create": g.created,
                "date_update": g.created,
                "date_delete": 0,
                "auto_type": None,
                "created_by": self.ws.bot_user_id,
                "updated_by": self.ws.bot_user_id,
                "deleted_by": None,
                "prefs": {"channels": [], "groups": []},
            }
            if include_users:
                item["users"] = list(g.users)
            if include_count:
                item["user_count"] = len(g.users)
            out.append(item)
        return {"usergroups": out}

    def usergroups_users_list(self, args: Args) -> JSON:
        group = self.ws.usergroups.get(args.opt("usergroup") or "")
        if group is None:
            raise ApiError("no_such_subteam")
        return {"users": list(group.users)}
