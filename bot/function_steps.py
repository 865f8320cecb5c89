"""Workflow Builder steps over Slack's Web API: ``functions.completeSuccess`` / ``completeError``.

Implements ``workflows.function_runs.FunctionCompleter``. Bolt's own ``complete``/``fail``
call these with the execution's ``bot_access_token`` (its ``AttachingFunctionToken``
middleware); so do we, long after the event, from the token recorded with the run. A token
Slack no longer takes (it expires) is followed by one try with the app's bot token (the
methods need no scope: https://api.slack.com/methods/functions.completeSuccess).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from workflows.function_runs import FunctionGone
from workflows.ports import ChatError

GONE = {"execution_not_in_running_state", "function_execution_not_found"}
"""The execution is not running any more (Slack's method pages, "Errors")."""
TOKEN_REFUSED = {"invalid_auth", "token_expired", "token_revoked", "not_authed"}
RETRYABLE = {
    "ratelimited",
    "internal_error",
    "service_unavailable",
    "fatal_error",
    "request_timeout",
}


class SlackFunctionSteps:
    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def complete_success(
        self, execution_id: str, token: str | None, outputs: Mapping[str, Any]
    ) -> None:
        args = {"function_execution_id": execution_id, "outputs": dict(outputs)}
        await self._call("functions_completeSuccess", token, args)

    async def complete_error(self, execution_id: str, token: str | None, error: str) -> None:
        args = {"function_execution_id": execution_id, "error": error}
        await self._call("functions_completeError", token, args)

    async def display_name(self, user_id: str) -> str:
        try:
            user = (await self._client.users_info(user=user_id))["user"]
        except (SlackApiError, ClientError, TimeoutError):
            return user_id  # the error still says who, as Slack's id
        profile = user.get("profile") or {}
        return str(profile.get("display_name") or user.get("real_name") or user.get("name"))

    async def _call(self, method: str, token: str | None, args: dict[str, Any]) -> None:
        try:
            await self._once(method, token, args)
        except _TokenRefused:
            await self._once(method, None, args)  # the app's own token

    async def _once(self, method: str, token: str | None, args: dict[str, Any]) -> None:
        call = getattr(self._client, method)
        try:
            await (call(**args, token=token) if token else call(**args))
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            if error in GONE:
                raise FunctionGone(error) from None
            if token and error in TOKEN_REFUSED:
                raise _TokenRefused(error) from None
            retryable = error in RETRYABLE or exc.response.status_code >= 500
            raise ChatError(
                f"Slack {method.replace('_', '.', 1)}: {error}", retryable=retryable
            ) from None
        except (ClientError, TimeoutError) as exc:
            raise ChatError(f"Slack {method}: {type(exc).__name__}", retryable=True) from None


class _TokenRefused(Exception):
    pass
