"""Building blocks shared by every part of the definition language (and every step kind).

``StepBase`` is the contract a step model keeps with ``check`` and the engine:
its kind key (``KIND``), what it refers to (steps it may jump to, templates,
a connection, expressions — each with the field path that holds it, so errors
land on their line) and the output fields its executor produces.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
# Expressions reach a step's output as ``steps.<id>``, and Jinja looks an attribute up
# before a key: a step named ``items`` would be shadowed by the mapping's method. The same
# holds for every name an author gives a value: outputs (``steps.<id>.<name>``) and input
# ids (``input.<id>``).
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


FieldPath = tuple[str | int, ...]
"""Keys from a step's mapping down to one value, e.g. ``("approve", "next", "rejected")``."""
Reference = tuple[FieldPath, str]
"""A value that names something (a step, a template, a connection) or is an expression."""
ValueType = Literal["number", "money", "text", "bool", "list", "mapping"]
"""What an output value is in expressions, as far as ``check`` types them
(``workflows/expression_types.py``); an output not typed may be anything."""


class StepBase(Strict):
    KIND: ClassVar[str] = ""
    """The kind key in YAML; also the field that holds the kind's configuration."""
    OUTPUT: ClassVar[tuple[str, ...]] = ()
    """Every key the executor may put in the step's output (``steps.<id>.<key>``)."""
    WAITS: ClassVar[bool] = False
    """Waits for time or people on every pass, so jumping back to itself cannot spin."""
    OUTPUT_TYPES: ClassVar[dict[str, ValueType]] = {}
    """The type of the outputs whose type is always the same (when not ``None``)."""

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

    @model_validator(mode="after")
    def _outputs_readable(self) -> Self:
        named = set(self.outputs() or ()) - set(self.OUTPUT)  # the names the author chose
        for name in sorted(named):
            if name in RESERVED_STEP_IDS:
                raise ValueError(
                    f"output {name!r} is reserved: in expressions steps.{self.id}.{name} "
                    "means the mapping's method, not the value; choose another name"
                )
        return self

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # A concrete kind must hold its configuration under its own kind key.
        if cls.KIND and cls.KIND not in cls.model_fields:
            raise TypeError(f"{cls.__name__}.KIND {cls.KIND!r} is not one of its fields")

    def jump_targets(self) -> list[Reference]:
        """Steps this step may go to next, besides the following one."""
        return [(("goto",), self.goto)] if self.goto else []

    def templates(self) -> list[Reference]:
        """Block Kit templates (names in templates/) this step renders."""
        return []

    def connection_reference(self) -> Reference | None:
        """The named connection this step calls, with the field naming it."""
        return None

    def connection_types(self) -> tuple[str, ...]:
        """The connection types this step can use (``check`` refuses others); () is any."""
        return ()

    def connection(self) -> str | None:
        """The named connection this step calls, if any (its limits apply while it runs)."""
        reference = self.connection_reference()
        return reference[1] if reference else None

    def people(self) -> list[Reference]:
        """Who the step names as deciders or owners (``@name``, an e-mail, ``user:``/``group:``
        or an id): resolved to user ids at start-up, checked by ``check --workspace``."""
        return []

    def expressions(self) -> list[Reference]:
        """Every string of the step that the engine renders as a template (``{{ }}``, ``{% %}``).

        A plain string is a literal to the engine, so only strings with template syntax count.
        """
        dumped = self.model_dump(by_alias=True, exclude_defaults=True)
        return [(path, text) for path, text in _strings(dumped) if _is_template(text)]

    def outputs(self) -> tuple[str, ...] | None:
        """The keys of this step's output; None when the definition cannot know them."""
        return self.OUTPUT

    def output_types(self) -> dict[str, ValueType]:
        """The type of each output this definition fixes; the others may be anything."""
        return self.OUTPUT_TYPES

    def output_choices(self) -> dict[str, tuple[str, ...]]:
        """Outputs that are always one of a few texts (or ``None``), e.g. a label."""
        return {}

    def children(self) -> list[tuple[FieldPath, StepBase]]:
        """Steps nested in this one (``foreach``, ``parallel``), with the field holding each."""
        return []

    def local_names(self, key: FieldPath) -> frozenset[str]:
        """Names besides input/steps/run that the expression at ``key`` sees (``item``)."""
        return frozenset()


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def _strings(value: Any, path: FieldPath = ()) -> Iterator[Reference]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, path + (index,))
