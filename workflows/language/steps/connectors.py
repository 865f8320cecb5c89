"""Models of the steps that call a connector: ``email``, ``ticket`` and ``webhook``.

Each names its connection (so concurrency limits, breakers and metrics apply, and
``check`` refuses a connection that is missing or of the wrong type) and is idempotent
by a key derived from the run and the step (``workflows/steps/connectors.py``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from workflows.language.spec import Reference, StepBase, Strict

Addresses = list[str] | str
"""A list of addresses, or one expression giving an address, a comma-separated string or a list."""


class Attachment(Strict):
    filename: str = Field(description="File name shown to the recipient (may be an expression)")
    content: Any = Field(description="Text, or any value (sent as JSON), e.g. a step's output")
    content_type: str = Field(default="text/plain", pattern=r"^[\w.+-]+/[\w.+-]+$")


class EmailSpec(Strict):
    connection: str = Field(description="An `email` (SMTP) connection")
    to: Addresses
    cc: Addresses = Field(default_factory=list)
    subject: str
    text: str = Field(description="The plain-text body (a template: `{{ }}`, `{% %}`)")
    attachments: list[Attachment] = Field(default_factory=list)


class EmailStep(StepBase):
    """Send one e-mail per step execution, however often the step is retried or re-run."""

    KIND: ClassVar[str] = "email"
    OUTPUT: ClassVar[tuple[str, ...]] = ("message_id", "to", "refused", "already_sent")
    email: EmailSpec

    def connection_reference(self) -> Reference:
        return ("email", "connection"), self.email.connection

    def connection_types(self) -> tuple[str, ...]:
        return ("email",)


class TicketSpec(Strict):
    connection: str = Field(description="A `jira` or `github` connection")
    action: Literal["create", "comment", "transition"] = "create"
    key: str | None = Field(
        default=None,
        description="What makes two creations the same ticket (default: the run and step)",
    )
    project: str | None = Field(default=None, description="Jira project key (create)")
    repo: str | None = Field(
        default=None, description="GitHub owner/name (default: the connection's)"
    )
    summary: str | None = Field(default=None, description="Title of the ticket (create)")
    description: str = ""
    issue_type: str = "Task"
    labels: list[str] | str = Field(default_factory=list)
    each: str | None = Field(
        default=None,
        description="Create one ticket per item of this list expression; an item is a mapping "
        "of summary, description, labels, issue_type, project (defaults: the fields above)",
    )
    issue: str | None = Field(
        default=None, description="Jira key or GitHub number (comment, transition)"
    )
    text: str | None = Field(default=None, description="The comment (comment)")
    transition: str | None = Field(default=None, description="Transition name or id (transition)")

    @model_validator(mode="after")
    def _fields_of_the_action(self) -> TicketSpec:
        needed = {
            "create": [] if self.each else ["summary"],
            "comment": ["issue", "text"],
            "transition": ["issue", "transition"],
        }[self.action]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a ticket {self.action} needs {' and '.join(missing)}")
        if self.each is not None and self.action != "create":
            raise ValueError("`each` creates tickets: it needs action create")
        return self


class TicketStep(StepBase):
    """Create, comment on or transition a ticket; a re-run finds what it made before."""

    KIND: ClassVar[str] = "ticket"
    OUTPUT: ClassVar[tuple[str, ...]] = ("key", "url", "tickets", "existing", "transition")
    ticket: TicketSpec

    def connection_reference(self) -> Reference:
        return ("ticket", "connection"), self.ticket.connection

    def connection_types(self) -> tuple[str, ...]:
        return ("jira",) if self.ticket.action == "transition" else ("jira", "github")


class WebhookSpec(Strict):
    connection: str = Field(description="A `webhook_out` connection (its URL and signing secret)")
    json_body: Any = Field(default=None, alias="json", description="The payload (expressions)")


class WebhookStep(StepBase):
    """POST a signed JSON payload; every delivery of the step carries one Idempotency-Key."""

    KIND: ClassVar[str] = "webhook"
    OUTPUT: ClassVar[tuple[str, ...]] = ("status", "data", "idempotency_key")
    webhook: WebhookSpec

    def connection_reference(self) -> Reference:
        return ("webhook", "connection"), self.webhook.connection

    def connection_types(self) -> tuple[str, ...]:
        return ("webhook_out",)
