"""Model of the ``sql`` step: a parameterised query through a named connection."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from workflows.language.spec import Reference, StepBase, Strict, ValueType


class SqlSpec(Strict):
    connection: str
    query: str
    params: dict[str, Any] = Field(default_factory=dict)


class SqlStep(StepBase):
    KIND: ClassVar[str] = "sql"
    OUTPUT: ClassVar[tuple[str, ...]] = ("rows", "count", "truncated")
    OUTPUT_TYPES: ClassVar[dict[str, ValueType]] = {
        "rows": "list",
        "count": "number",
        "truncated": "bool",
    }
    sql: SqlSpec

    def connection_reference(self) -> Reference:
        return ("sql", "connection"), self.sql.connection
