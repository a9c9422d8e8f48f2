"""Run a Great Expectations suite from this folder on a SQL query, and summarise the result.

GX takes seconds to import, so it is imported here, inside the call, never at module top.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

SUITES_DIR = Path(__file__).resolve().parent
SAMPLE_SIZE = 5


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    severity: str  # critical | warning | info
    unexpected_count: int | None = None
    sample: list = field(default_factory=list)  # a few offending values

    def describe(self) -> str:
        where = f" on {self.column}" if self.column else ""
        found = f": {self.unexpected_count} rows, e.g. {self.sample}" if self.unexpected_count else ""
        return f"{self.expectation}{where}{found}"


@dataclass(frozen=True)
class SuiteOutcome:
    suite: str
    outcomes: list[ExpectationOutcome]

    @property
    def failed_critical(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "critical"]

    @property
    def failed_warning(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity != "critical"]

    @property
    def passed(self) -> bool:
        return not self.failed_critical


def load_suite(name: str) -> dict:
    return json.loads((SUITES_DIR / f"{name}.json").read_text())


def run_suite(name: str, sqlalchemy_url: str, query: str) -> SuiteOutcome:
    """Validate the rows `query` returns against suite `name` (expectations/<name>.json)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    spec = load_suite(name)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep run logs readable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # add_postgres would refuse a Unix-socket URL; add_sql takes it
        source = context.data_sources.add_sql(name="warehouse", connection_string=sqlalchemy_url)
    asset = source.add_query_asset(name=name, query=query)
    batch = asset.add_batch_definition_whole_table("batch").get_batch()
    suite = gx.ExpectationSuite(name=name, expectations=spec["expectations"], meta=spec.get("meta"))
    result = batch.validate(suite, result_format={"result_format": "SUMMARY",
                                                  "partial_unexpected_count": SAMPLE_SIZE})
    severity_by_key = {_key(e["type"], e["kwargs"]): e.get("severity", "critical") for e in spec["expectations"]}
    outcomes = []
    for r in result.results:
        config = r.expectation_config
        details = r.result or {}
        outcomes.append(ExpectationOutcome(
            expectation=config.type,
            column=config.kwargs.get("column") or _pair(config.kwargs),
            success=bool(r.success),
            severity=severity_by_key.get(_key(config.type, config.kwargs), "critical"),
            unexpected_count=details.get("unexpected_count"),
            sample=[_plain(v) for v in (details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]],
        ))
    return SuiteOutcome(name, outcomes)


def _key(expectation: str, kwargs: dict) -> str:
    relevant = {k: v for k, v in kwargs.items() if k in ("column", "column_A", "column_B", "value_set")}
    return expectation + json.dumps(relevant, sort_keys=True, default=str)


def _pair(kwargs: dict) -> str | None:
    return f"{kwargs['column_A']} vs {kwargs['column_B']}" if "column_A" in kwargs else None


def _plain(value):
    return value if isinstance(value, int | float | str | bool | None) else str(value)

