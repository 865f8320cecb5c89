"""Building blocks shared by every part of the definition language (and every step kind)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
# Expressions reach a step's output as ``steps.<id>``, and Jinja looks an attribute up
# before a key: a step named ``items`` would be shadowed by the mapping's method.
RESERVED_STEP_IDS = frozenset(name for name in dir(dict) if not name.startswith("_"))
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """``"4h"``, ``"30s"``, ``"500ms"`` or a number of seconds -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 4h, 2d)")


Duration = Annotated[float, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(Strict):
    attempts: int = Field(default=1, ge=1, le=100, description="Total tries, the first included")
    backoff: Literal["exponential", "fixed"] = "exponential"
    initial: Duration = 1.0
    max_delay: Duration = 300.0
    jitter: bool = True


class StepBase(Strict):
    id: str = Field(pattern=NAME_PATTERN)
    when: str | bool | None = Field(default=None, description="Skip the step unless true")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout: Duration = Field(default=60.0, description="Per attempt")
    goto: str | None = Field(
        default=None, description="Step to run next instead of the following one"
    )
    quiet: bool = Field(default=False, description="Do not thread this step's result")

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_STEP_IDS:
            raise ValueError(
                f"step id {value!r} is reserved: in expressions steps.{value} means the "
                "mapping's method, not the step; choose another id"
            )
        return value

    def connection(self) -> str | None:
        """The named connection this step calls, if any (its limits apply while it runs)."""
        return None
