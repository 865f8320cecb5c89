"""Start forms: a workflow's ``inputs:`` as a modal, opened from ``/flow <workflow>`` or App Home.

Opening is a Web API call, so it follows the ack (``Background``). A submission is
checked against the fields (``workflows/form_values.py``); problems go back under
their field (``response_action: errors``), otherwise the run starts with the typed
values in ``input`` and the modal closes. A submission is one start: its dedupe key
is the view's id, so a replayed submission finds the run the first one started.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.background import Background
from bot.deps import BotDeps
from bot.render import Renderer
from workflows import form_values
from workflows.language.inputs import InputField
from workflows.runs import StartRequest, record_refusal, start_run

START_VIEW = "flow_form"
START_ACTION = "form:start"
TEXT_KEPT = 1200
"""Request text carried in a form's private_metadata (3,000 characters) to its run."""
PARTLY_FILLED = "I filled in what I could from your message; please complete the rest."
_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{1,20}$")
log = logging.getLogger(__name__)


def field_views(fields: list[InputField], initial: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What ``templates/form_modal.json.j2`` needs of each field."""
    views = []
    for spec in fields:
        value = initial.get(spec.id, spec.default)
        views.append(
            {
                "id": spec.id,
                "label": spec.shown_label,
                "type": spec.type,
                "required": spec.required,
                "hint": spec.hint,
                "min": spec.min,
                "max": spec.max,
                "max_length": spec.max_length or form_values.MAX_TEXT,
                "placeholder": "e.g. 1,250.00 " + (spec.currency or "EUR")
                if spec.type == "money"
                else "",
                "initial": "" if value is None else str(value),
                "options": [
                    {"value": o.value, "label": o.label or o.value} for o in spec.choices()
                ],
            }
        )
    return views


def form_view(
    renderer: Renderer,
    fields: list[InputField],
    *,
    callback_id: str,
    metadata: dict[str, Any],
    title: str,
    submit: str = "Submit",
    intro: str = "",
    initial: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    data = {
        "callback_id": callback_id,
        "private_metadata": json.dumps(metadata, separators=(",", ":")),
        "title": title,
        "submit": submit,
        "intro": intro,
        "fields": field_views(fields, initial or {}),
    }
    return renderer.render_view("form_modal", data)


def read_state(view: Mapping[str, Any]) -> dict[str, str | None]:
    """The submitted modal as one raw string per block (the field id), ``None`` if empty."""
    raw: dict[str, str | None] = {}
    values = (view.get("state") or {}).get("values") or {}
    for block_id, actions in values.items():
        entry = next(iter((actions or {}).values()), None) or {}
        chosen = entry.get("selected_option") or {}
        raw[str(block_id)] = next(
            (
                str(v)
                for v in (
                    entry.get("value"),
                    chosen.get("value") if isinstance(chosen, dict) else None,
                    entry.get("selected_user"),
                    entry.get("selected_conversation"),
                    entry.get("selected_channel"),
                    entry.get("selected_date"),
                )
                if v not in (None, "")
            ),
            None,
        )
    return raw


def metadata_of(view: Mapping[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(str(view.get("private_metadata") or "{}"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def begin_run(deps: BotDeps, request: StartRequest) -> tuple[bool, str]:
    """Start the run unless its starter rules refuse: started?, the line the person is told."""
    workflow = request.workflow
    refused = (
        deps.starters.check(workflow, request.user_id, request.channel_id)
        if deps.starters
        else None
    )
    if refused is not None:
        await record_refusal(deps.store, request, refused.rule, refused.allowed, deps.clock.now())
        return False, refused.message
    started = await start_run(deps.store, request, deps.clock.now())
    deps.wakeup.set()
    # DEBUG: the audit trail records every start (run.started) and the metrics count
    # them; a log record per request is what a bare Bolt app does not build (issue 24).
    log.debug(
        "run started",
        extra={"run_id": started.run_id, "workflow": workflow.name, "source": request.source},
    )
    return True, (
        f"Started *{workflow.title or workflow.name}* (run `{started.run_id}`). "
        "Follow the thread in this channel."
    )


class FormListeners:
    def __init__(self, deps: BotDeps, background: Background) -> None:
        self.deps = deps
        self.background = background

    def fill(self, request: StartRequest) -> tuple[StartRequest, dict[str, str] | None]:
        """The request with its typed inputs, or (when a required one is missing from the
        text) the raw values found, to pre-fill the form."""
        fields = request.workflow.inputs
        found = form_values.extract(fields, request.text) if request.text else {}
        raw = form_values.defaults(fields) | found  # a default stands unless the text says
        parsed = form_values.parse(fields, raw)
        if parsed.errors or not request.text:
            return request, found
        return dataclasses.replace(request, input=parsed.values), None

    def open_start_form(
        self,
        client: AsyncWebClient,
        trigger_id: str,
        request: StartRequest,
        respond: AsyncRespond | None = None,
        initial: Mapping[str, str] | None = None,
    ) -> None:
        """Open the request's workflow's form after the ack (views.open wants the trigger
        within 3 s); what the text already said is pre-filled and the text is kept."""
        workflow = request.workflow
        view = form_view(
            self.deps.renderer,
            workflow.inputs,
            callback_id=START_VIEW,
            metadata={
                "w": workflow.name,
                "c": request.channel_id or "",
                "t": request.text[:TEXT_KEPT],
            },
            title=workflow.title or workflow.name,
            submit="Start",
            intro=PARTLY_FILLED if initial else workflow.description,
            initial=initial,
        )
        self.background.spawn(self._open(client, trigger_id, view, respond), "open-start-form")

    async def _open(
        self,
        client: AsyncWebClient,
        trigger_id: str,
        view: dict[str, Any],
        respond: AsyncRespond | None,
    ) -> None:
        try:
            await client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            log.warning("start form did not open: %s", exc.response.get("error"))
            if respond is not None:
                await respond(
                    text="The form could not be opened just now; please try again.",
                    response_type="ephemeral",
                    replace_original=False,
                )

    async def on_start_button(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """App Home's catalogue "Start" button: the workflow's form."""
        await ack()
        workflow = self.deps.workflows.get(str(action.get("value", "")))
        if workflow is None or not workflow.inputs or not body.get("trigger_id"):
            return
        user = (body.get("user") or {}).get("id")
        request = StartRequest(workflow=workflow, source="form", user_id=user)
        self.open_start_form(client, str(body["trigger_id"]), request)

    async def on_start_submit(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        meta = metadata_of(view)
        workflow = self.deps.workflows.get(str(meta.get("w", "")))
        first = next(iter((view.get("state") or {}).get("values") or {}), None)
        if workflow is None or not workflow.inputs:
            block = first or "form"
            await ack(response_action="errors", errors={block: "This workflow is gone."})
            return
        parsed = form_values.parse(workflow.inputs, read_state(view))
        if parsed.errors:
            await ack(response_action="errors", errors=parsed.errors)
            return
        channel = str(meta.get("c") or "")
        user = body.get("user") or {}
        request = StartRequest(
            workflow=workflow,
            source="form",
            text=str(meta.get("t") or "")[:TEXT_KEPT],
            user_id=user.get("id"),
            channel_id=channel if _CHANNEL.match(channel) else None,
            team_id=(user.get("team_id") or (body.get("team") or {}).get("id")),
            dedupe_key=f"form:{view.get('id')}" if view.get("id") else None,
            input=parsed.values,
            trigger_id=body.get("trigger_id"),
        )
        started, message = await begin_run(self.deps, request)
        if started:
            await ack()
            return
        await ack(response_action="errors", errors={first or workflow.inputs[0].id: message})
