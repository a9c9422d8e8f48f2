"""What a source makes of a file, without a database: for trying a source spec on a sample export."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ingestion.readers import format_of, open_rows
from ingestion.sources import SourceSpec, SourceSpecError, builtin_source
from ingestion.validation import Rejected

# no landing hour in a preview: the event-time window is not checked (a far landing hour, no lateness limit)
_ANY_HOUR, _ANY_LATENESS = datetime(9000, 1, 1, tzinfo=UTC), timedelta(days=3_000_000)


def source_for(path: Path, specs: list[SourceSpec]) -> SourceSpec:
    """The source that would read the file in a landing hour folder."""
    spec = next((s for s in specs if s.claims(path.name)), None)
    if spec is None and format_of(path) is None:
        raise SourceSpecError(f"no source reads {path.name}: name it *.jsonl, *.csv or *.parquet (gzip allowed "
                              "for text), or add a source spec whose files: pattern matches it")
    return spec or builtin_source(format_of(path))


def preview(path: Path, spec: SourceSpec, shown: int = 10) -> Iterator[str]:
    """One line per row (the first `shown` rows), then the counts; raises SourceSpecError if the spec
    does not fit the file's header."""
    from ingestion.loader import check_row

    header, rows = open_rows(path, spec.format)
    if header is not None:
        spec.check_columns(header, path.name)
    outcomes: Counter = Counter()
    reasons: Counter = Counter()
    for number, raw, row in rows:
        outcome = check_row(raw, row, spec, _ANY_HOUR, _ANY_LATENESS)
        if type(outcome) is Rejected:
            outcomes["quarantined"] += 1
            reasons.update(outcome.reasons)
            text = "quarantined  " + ", ".join(outcome.reasons)
        else:
            outcomes["loaded"] += 1
            text = "ok  " + "  ".join(f"{k}={_shown(v)}" for k, v in outcome.values.items() if v is not None)
        if sum(outcomes.values()) <= shown:
            yield f"line {number}  {text}"
    total = sum(outcomes.values())
    why = ", ".join(f"{reason} x{count}" for reason, count in reasons.most_common())
    yield (f"{total:,} rows: {outcomes['loaded']:,} would load, {outcomes['quarantined']:,} quarantined"
           + (f" ({why})" if why else "") + "; event times are not checked against a landing hour here")


def _shown(value) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
