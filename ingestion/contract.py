"""The event contract: one usage event is one model request. The single source of truth.

The raw table's columns (ingestion/schema.py), the validator and the contract table of docs/contract.md
all follow `FIELDS`; tests/test_project_files.py keeps that page in step.
"""

from __future__ import annotations

from dataclasses import dataclass

# The limits below are the contract's and the quality gates' alike: the suites read them as parameters
# (orchestration/defs/quality.py), so a row the loader accepts cannot fail a raw gate by its own values.
MAX_TOKENS = 10_000_000  # one request's prompt above this is a unit mistake, not traffic
MAX_OUTPUT_TOKENS = 1_000_000  # no model writes this much in one answer
MAX_LATENCY_MS = 3600 * 1000  # long reasoning and research calls run tens of minutes; an hour is a clock error
# ids and names are keys of indexes and of every mart's grain: a B-tree entry holds at most 2,704 bytes, and
# 256 characters are at most 1 KB in UTF-8, so two of them still fit in one entry
MAX_TEXT_LENGTH = 256  # characters
MAX_JSON_DEPTH = 32  # nesting of objects and arrays in one line; deeper is a runaway serializer
MAX_LINE_BYTES = 16 << 20  # one event's line (prompts kept in metadata included)
STATUSES = ("success", "error")  # any case: "ERROR" is stored as "error"


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # id | timestamp | text | int | number | json
    required: bool
    description: str
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] = ()  # the only values allowed (text), compared case-insensitively

    @property
    def max_length(self) -> int | None:
        return MAX_TEXT_LENGTH if self.kind in ("id", "text") else None

    @property
    def limits(self) -> str:
        """The field's limits as docs/contract.md's table shows them."""
        if self.values:
            return ", ".join(self.values) + " (any case)"
        if self.max_length:
            return f"at most {self.max_length} characters"
        if self.kind == "json":
            return f"an object nested at most {MAX_JSON_DEPTH} levels"
        if self.min is None and self.max is None:
            return ""
        return f"{'' if self.min is None else f'{self.min:,}'}..{'' if self.max is None else f'{self.max:,}'}"

    @property
    def sql_type(self) -> str:
        return {"id": "text", "timestamp": "timestamptz", "text": "text", "int": "bigint",
                "number": "double precision", "json": "jsonb"}[self.kind]


FIELDS: tuple[Field, ...] = (
    Field("event_id", "id", False, "Unique id of the request; derived from the content when absent"),
    Field("event_time", "timestamp", True, "When the request started (ISO 8601 with a zone)"),
    Field("received_at", "timestamp", False, "When the logging pipeline received the event"),
    Field("org_id", "text", True, "Organisation (tenant) that made the request"),
    Field("user_id", "text", False, "End user on whose behalf the request was made"),
    Field("session_id", "text", False, "Conversation or session the request belongs to"),
    Field("service", "text", False, "Calling application or service"),
    Field("operation", "text", False, "Kind of call: chat, completion, embedding, ..."),
    Field("tool", "text", False, "Tool invoked in this step, if any"),
    Field("action", "text", False, "Product action that triggered the request"),
    Field("event_type", "text", False, "Event type, e.g. llm_request"),
    Field("provider", "text", True, "Model provider, e.g. openai, anthropic"),
    Field("model", "text", True, "Model name as sent to the provider"),
    Field("input_tokens", "int", False, "All prompt tokens, cache reads and cache writes included", 0, MAX_TOKENS),
    Field("cached_input_tokens", "int", False, "Prompt tokens read from the provider's cache (part of input_tokens)",
          0, MAX_TOKENS),
    Field("cache_write_tokens", "int", False, "Prompt tokens written to the provider's cache (part of input_tokens)",
          0, MAX_TOKENS),
    Field("output_tokens", "int", False, "Completion tokens including reasoning ones", 0, MAX_OUTPUT_TOKENS),
    Field("reasoning_tokens", "int", False, "Reasoning tokens (part of output_tokens)", 0, MAX_OUTPUT_TOKENS),
    Field("credits", "number", False, "Internal credits charged for the request", 0, None),
    Field("provider_cost_usd", "number", False, "Cost the provider reported, in USD", 0, None),
    Field("latency_ms", "number", False, "Total request latency in milliseconds", 0, MAX_LATENCY_MS),
    Field("ttft_ms", "number", False, "Time to first token in milliseconds (at most latency_ms)", 0,
          MAX_LATENCY_MS),
    Field("status", "text", True, "Whether the request succeeded", values=STATUSES),
    Field("error_code", "text", False, "Provider or client error code when status is error"),
    Field("http_status", "int", False, "HTTP status of the provider call", 100, 599),
    Field("metadata", "json", False, "Free-form attributes; unknown top-level fields are kept here"),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
REQUIRED: tuple[str, ...] = tuple(f.name for f in FIELDS if f.required)

# Columns the loader adds to every raw row, after the contract's fields.
LINEAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("landing_hour", "timestamptz"),  # hour partition of the file the event arrived in
    ("batch_id", "bigint"),  # ingestion batch (one file) that loaded it
)
