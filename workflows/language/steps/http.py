"""Model of the ``http`` step: a REST/JSON API call through a named connection.

Request text must never steer where the request goes: the executor renders ``path``
one percent-encoded segment per value and takes query parameters only from ``params``
(``workflows/steps/http.py``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, model_validator

from workflows.language.spec import Reference, StepBase, Strict, ValueType


class HttpSpec(Strict):
    connection: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str = "/"
    params: dict[str, Any] = Field(
        default_factory=dict,
        validation_alias=AliasChoices("params", "query"),
        description="Query parameters (encoded by the client; `query` is the older name)",
    )
    json_body: Any = Field(default=None, alias="json")
    select: str | None = Field(default=None, description="JSON path into the response")

    @model_validator(mode="before")
    @classmethod
    def _one_name_for_params(cls, data: Any) -> Any:
        if isinstance(data, dict) and "params" in data and "query" in data:
            raise ValueError("give query parameters as `params` or `query`, not both")
        return data

    @property
    def query(self) -> dict[str, Any]:
        """The older name of ``params`` (thresholds read it)."""
        return self.params


class HttpStep(StepBase):
    KIND: ClassVar[str] = "http"
    OUTPUT: ClassVar[tuple[str, ...]] = ("status", "data")
    OUTPUT_TYPES: ClassVar[dict[str, ValueType]] = {"status": "number"}
    http: HttpSpec

    def connection_reference(self) -> Reference:
        return ("http", "connection"), self.http.connection
