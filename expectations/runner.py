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
    docs_page: Path | None = None  # the Data Docs page of this validation, when docs were built

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


def run_suite(name: str, sqlalchemy_url: str, query: str, parameters: dict | None = None,
              docs_dir: Path | None = None) -> SuiteOutcome:
    """Validate the rows `query` returns against suite `name` (expectations/<name>.json).

    `parameters` fill the suite's {"$PARAMETER": name} values (thresholds that are settings);
    with `docs_dir`, the validation's Data Docs are written under docs_dir/<name> as HTML."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    spec = load_suite(name)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep run logs readable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # add_postgres would refuse a Unix-socket URL; add_sql takes it
        # create_temp_table: the suite's rows are read once into a temporary table its expectations query;
        # without it every expectation ran the gate's query again (36 queries for the raw suite)
        source = context.data_sources.add_sql(name="warehouse", connection_string=sqlalchemy_url,
                                              create_temp_table=True)
    # GX takes only a query that starts with SELECT; wrapping lets a suite's query use a WITH clause
    asset = source.add_query_asset(name=name, query=f"select * from ({query}) as checked_rows")
    batch = asset.add_batch_definition_whole_table("batch").get_batch()
    # each expectation carries its severity in its meta, so the result says it whatever GX's order
    expectations = [{**e, "meta": {**e.get("meta", {}), "severity": e.get("severity", "critical")}}
                    for e in spec["expectations"]]
    suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations, meta=spec.get("meta")))
    result = batch.validate(suite, expectation_parameters=parameters or {},
                            result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE})
    outcomes = []
    for r in result.results:
        config = r.expectation_config
        details = r.result or {}
        outcomes.append(ExpectationOutcome(
            expectation=config.type,
            column=config.kwargs.get("column") or _pair(config.kwargs),
            success=bool(r.success),
            severity=(config.meta or {}).get("severity", "critical"),
            unexpected_count=details.get("unexpected_count"),
            sample=[_plain(v) for v in (details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]],
        ))
    docs_page = _build_docs(context, result, docs_dir / name) if docs_dir else None
    return SuiteOutcome(name, outcomes, docs_page)


def _build_docs(context, result, out_dir: Path) -> Path:
    """Render this validation (and its suite) as Data Docs HTML in out_dir; return the result's page.

    An ephemeral context knows only its own run, so out_dir holds the latest validation of the suite.
    The pages load their styling from public CDNs; offline they stay readable as plain HTML."""
    import datetime as dt
    from urllib.parse import unquote, urlparse

    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    site = "local_site"  # the ephemeral context's own site points at a throw-away temp folder
    context.update_data_docs_site(site, {
        "class_name": "SiteBuilder", "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(out_dir.resolve())},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    run_id = RunIdentifier(run_time=dt.datetime.now(dt.UTC))
    result.meta["run_id"], result.meta["validation_time"] = run_id, run_id.run_time
    suite_key = ExpectationSuiteIdentifier(name=result.suite_name)
    key = ValidationResultIdentifier(expectation_suite_identifier=suite_key, run_id=run_id,
                                     batch_identifier="warehouse")
    context.validation_results_store.set(key, result)
    context.build_data_docs(site_names=[site], resource_identifiers=[key, suite_key])
    url = context.get_docs_sites_urls(resource_identifier=key, site_name=site)[0]["site_url"]
    return Path(unquote(urlparse(url).path))


def _pair(kwargs: dict) -> str | None:
    return f"{kwargs['column_A']} vs {kwargs['column_B']}" if "column_A" in kwargs else None


def _plain(value):
    return value if isinstance(value, int | float | str | bool | None) else str(value)

