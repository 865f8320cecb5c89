"""Model of the ``digest`` step: a summary of the past day or week posted to a channel."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from workflows.language.spec import StepBase, Strict


class DigestSpec(Strict):
    channel: str = Field(description="Where the digest goes: #name or a channel ID")
    period: Literal["day", "week"] = Field(default="week", description="The past 24 h or 7 days")
    workflow: str | None = Field(
        default=None, description="Only this workflow (default: all others)"
    )
    title: str | None = Field(default=None, description="Heading (default: Daily/Weekly digest)")
    chart: bool = Field(default=True, description="Upload a chart of volume and cycle time")


class DigestStep(StepBase):
    KIND: ClassVar[str] = "digest"
    OUTPUT: ClassVar[tuple[str, ...]] = ("channel", "ts", "volume", "failures", "pending")
    digest: DigestSpec
