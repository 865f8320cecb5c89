"""The demo's guided tour, from the workflows it actually loaded.

The bundled examples have hand-written tips (``BUNDLED_TIPS``: who types what where, and
what to expect). With ``switchboard demo --workflows DIR`` (or ``SWITCHBOARD_WORKFLOWS``)
the tour follows *your* workflows instead: one tip per workflow with a ``/flow`` command,
its text taken from the workflow's first ``tests:`` input, its channel from where the
workflow may be started (when the demo workspace has it), its expectation from the
workflow's description or its steps. ``demo_tips`` is run again whenever the definitions
reload, so the page's tips follow edits.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sandbox.slack.page import Tip
from workflows.language.triggers import MessageTrigger
from workflows.language.workflow import Workflow

LIST_TIP = Tip(
    title="See what you can start",
    user="alice",
    channel="general",
    text="/flow list",
    expect="An ephemeral catalogue of the workflows, visible only to Alice.",
)

# The bundled examples' tour (workflows/examples, stand-ins in sandbox/standins), in order.
BUNDLED_TIPS: dict[str, Tip] = {
    "hello": Tip(
        title="Say hello",
        user="alice",
        channel="general",
        text="/flow hello world",
        expect="Switchboard posts a root message in #general and threads every step under it.",
    ),
    "invoice": Tip(
        title="Vendor invoice approval",
        user="alice",
        channel="ap-inbox",
        text="/flow invoice ACME INV-1042 for 12,400 EUR, PO-7781",
        expect="3.3 % over its PO: a card in #finance-approvals; approve it as Dana and the"
        " thread shows the ledger entry and ACME's new balance.",
    ),
    "campaign-report": Tip(
        title="Campaign performance report",
        user="alice",
        channel="campaigns",
        text="/flow campaign-report acme",
        expect="Ads and CRM numbers checked (2 flagged), summarised; as Erin approve or"
        " 'Request changes'; approved, it is posted in #client-acme with Jira follow-ups.",
    ),
    "inquiries": Tip(
        title="Customer inquiry routing",
        user="alice",
        channel="support-inbox",
        text="/flow inquiry I was charged twice for our subscription this month",
        expect="Classified billing, P1 for an enterprise customer (escalated in the CRM),"
        " routed to #billing with an SLA; or just post a question in #support-inbox.",
    ),
    "it-access": Tip(
        title="Access request",
        user="alice",
        channel="it-help",
        text="/flow access tableau quarterly churn analysis",
        expect="Policy checked for Alice's role; her manager Carol approves in a DM; access is"
        " provisioned, confirmed in the thread and by DM (e-mail: /standins/mail).",
    ),
    "compliance-scan": Tip(
        title="Compliance monitoring",
        user="frank",
        channel="compliance",
        text="/flow compliance-scan",
        expect="3 payment exceptions for Frank to review; then an audit report in #compliance,"
        " archived and e-mailed to the auditors (see /standins/mail).",
    ),
}

WALKTHROUGH: tuple[Tip, ...] = (
    BUNDLED_TIPS["hello"],
    LIST_TIP,
    *(tip for name, tip in BUNDLED_TIPS.items() if name != "hello"),
)
"""The tour of the bundled examples, as ``demo_tips`` gives it for them."""


def demo_tips(
    workflows: Mapping[str, Workflow], channels: Collection[str], *, bundled: bool
) -> tuple[Tip, ...]:
    """The tour of ``workflows``: the bundled tips when they are the bundled examples."""
    if bundled:
        order = [name for name in BUNDLED_TIPS if name in workflows]
        tips = [BUNDLED_TIPS[name] for name in order]
        return (*tips[:1], LIST_TIP, *tips[1:])
    own = [tip for workflow in workflows.values() if (tip := _tip(workflow, channels))]
    return (*own[:1], LIST_TIP, *own[1:])


def _tip(workflow: Workflow, channels: Collection[str]) -> Tip | None:
    if not workflow.commands:
        return None
    example = workflow.tests[0].input.text if workflow.tests else ""
    text = f"/flow {workflow.commands[0]} {example}".strip()
    steps = ", ".join(step.id for step in workflow.steps[:6])
    more = ", …" if len(workflow.steps) > 6 else ""
    expect = workflow.description or f"Runs {workflow.name}: {steps}{more}."
    return Tip(
        title=workflow.title or workflow.name,
        user="alice",
        channel=_channel(workflow, channels),
        text=text,
        expect=expect,
    )


def _channel(workflow: Workflow, channels: Collection[str]) -> str:
    """Where the tip types the command: where the workflow is meant to be started."""
    candidates = [*workflow.in_channels, workflow.channel or ""]
    candidates += [t.message.channel for t in workflow.triggers if isinstance(t, MessageTrigger)]
    for candidate in candidates:
        name = candidate.lstrip("#")
        if candidate.startswith("#") and name in channels:
            return name
    return "general"
