"""views.*: modals (opened with a single-use trigger) and App Home tabs."""

from __future__ import annotations

import secrets
import time

from ..blockkit_limits import Surface, validate_view
from ..records import JSON, View
from .args import ApiError, Args, error_messages
from .base import MethodsBase

MAX_MODAL_STACK = 3


class ViewMethods(MethodsBase):
    def consume_trigger(self, trigger_id: str | None) -> str:
        """Exchange a trigger_id for the user it was issued to (once, within its lifetime)."""
        if not trigger_id:
            raise ApiError(
                "invalid_arguments",
                response_metadata=error_messages(["missing required field: trigger_id"]),
            )
        trigger = self.ws.triggers.get(trigger_id)
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if trigger.used:
            raise ApiError("exchanged_trigger_id")
        if time.monotonic() - trigger.issued_at > self.trigger_ttl:
            raise ApiError("expired_trigger_id")
        trigger.used = True
        return trigger.user

    def _view_arg(self, args: Args, surface: Surface) -> JSON:
        view = args.json("view", "invalid_arguments")
        if view is None:
            raise ApiError(
                "invalid_arguments",
                response_metadata=error_messages(["missing required field: view"]),
            )
        errors = validate_view(view, surface)
        if errors:
            raise ApiError("invalid_arguments", response_metadata=error_messages(errors))
        assert isinstance(view, dict)
        return view

    def make_view(
        self,
        spec: JSON,
        user: str,
        view_id: str | None = None,
        root: str | None = None,
        previous: str | None = None,
    ) -> View:
        view = View(
            id=view_id or self.ws.new_id("V"),
            type=str(spec.get("type")),
            user=user,
            blocks=self._fill_ids(list(spec.get("blocks") or [])),
            callback_id=str(spec.get("callback_id") or ""),
            private_metadata=str(spec.get("private_metadata") or ""),
            external_id=str(spec.get("external_id") or ""),
            title=spec.get("title"),
            submit=spec.get("submit"),
            close=spec.get("close"),
            notify_on_close=bool(spec.get("notify_on_close", False)),
            clear_on_close=bool(spec.get("clear_on_close", False)),
            hash=f"{int(time.time())}.{secrets.token_hex(4)}",
            root_view_id=root,
            previous_view_id=previous,
        )
        if view.external_id:
            for other in self.ws.views.values():
                if other.external_id == view.external_id and other.id != view.id:
                    raise ApiError("duplicate_external_id")
        self.ws.views[view.id] = view
        return view

    def views_open(self, args: Args) -> JSON:
        spec = self._view_arg(args, "modal")
        user = self.consume_trigger(args.opt("trigger_id"))
        view = self.make_view(spec, user)
        view.root_view_id = view.id
        self.ws.modal_stacks[user] = [view.id]
        return {"view": self.ws.view_dict(view)}

    def views_push(self, args: Args) -> JSON:
        spec = self._view_arg(args, "modal")
        user = self.consume_trigger(args.opt("trigger_id"))
        return {"view": self.ws.view_dict(self.push_view(user, spec))}

    def push_view(self, user: str, spec: JSON) -> View:
        stack = self.ws.modal_stacks.get(user) or []
        if not stack:
            raise ApiError("not_found")
        if len(stack) >= MAX_MODAL_STACK:
            raise ApiError("push_limit_reached")
        view = self.make_view(spec, user, root=stack[0], previous=stack[-1])
        stack.append(view.id)
        return view

    def views_update(self, args: Args) -> JSON:
        view_id, external_id = args.opt("view_id"), args.opt("external_id")
        if not view_id and not external_id:
            raise ApiError(
                "invalid_arguments",
                response_metadata=error_messages(["view_id or external_id is required"]),
            )
        current = self.ws.views.get(view_id or "")
        if current is None and external_id:
            current = next(
                (v for v in self.ws.views.values() if v.external_id == external_id), None
            )
        if current is None:
            raise ApiError("not_found")
        surface: Surface = "home" if current.type == "home" else "modal"
        spec = self._view_arg(args, surface)
        given_hash = args.opt("hash")
        if given_hash and given_hash != current.hash:
            raise ApiError("hash_conflict")
        return {"view": self.ws.view_dict(self.update_view(current, spec))}

    def update_view(self, current: View, spec: JSON) -> View:
        view = self.make_view(
            spec,
            current.user,
            view_id=current.id,
            root=current.root_view_id,
            previous=current.previous_view_id,
        )
        if not view.external_id:
            view.external_id = current.external_id
        return view

    def views_publish(self, args: Args) -> JSON:
        user_id = args.opt("user_id")
        if not user_id or user_id not in self.ws.users:
            raise ApiError(
                "invalid_arguments", response_metadata=error_messages(["invalid user_id"])
            )
        spec = self._view_arg(args, "home")
        existing = self.ws.views.get(self.ws.home_views.get(user_id, ""))
        given_hash = args.opt("hash")
        if existing is not None and given_hash and given_hash != existing.hash:
            raise ApiError("hash_conflict")
        view = self.make_view(spec, user_id, view_id=existing.id if existing else None)
        view.root_view_id = view.id
        self.ws.home_views[user_id] = view.id
        return {"view": self.ws.view_dict(view)}
