"""The inquiries routing workflow and its workspace, shared by the routing tests and
``bench/resilience_ai_faults.py``. ``ROUTING`` is a format string: ``min_confidence``,
``shadow`` and ``first_response`` are filled in per test."""

from __future__ import annotations

from sandbox.slack import ChannelSeed, UserGroupSeed, UserSeed, WorkspaceSeed

SEED = WorkspaceSeed(
    users=[UserSeed(name=n) for n in ("alice", "bob", "carol", "dave")],
    channels=[ChannelSeed(name=n) for n in ("requests", "billing", "it-help", "triage", "leads")],
    usergroups=[UserGroupSeed(handle="it", users=["bob"])],
)

ROUTING = """
name: inquiries
title: Customer inquiries
triggers:
  - message: {{channel: "#requests"}}
steps:
  - id: kind
    classify:
      min_confidence: {min_confidence}
      labels:
        billing:
          examples: ["I was charged twice this month", "please refund my last invoice",
                     "my card payment failed", "update the billing address on my account",
                     "the invoice amount is wrong", "cancel my subscription and refund me"]
        tech:
          examples: ["the app crashes when I log in", "password reset email never arrives",
                     "error 500 on the dashboard", "I cannot upload files anymore",
                     "the website is down", "two-factor code is not accepted"]
  - id: route
    route:
      label: "{{{{ steps.kind.label }}}}"
      candidates: "{{{{ steps.kind.candidates }}}}"
      shadow: {shadow}
      owners:
        billing: "#billing"
        tech: {{channel: "#it-help", group: "@it"}}
      triage: "#triage"
      sla: {{first_response: {first_response}, remind_before: 1s, escalate_to: "#leads"}}
"""
