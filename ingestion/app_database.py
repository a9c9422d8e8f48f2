"""Extractor: new rows of an application's own usage table, by a watermark column, resuming where it stopped.

A source spec with `format: postgres` names the table, its watermark column (a timestamp that only grows,
such as created_at) and the environment variable holding the database URL. The run for landing hour H
takes the rows whose watermark is below the end of H and at or after the stored watermark (minus the
spec's `lookback`, for rows whose transactions commit late); rows read twice are duplicates by event id.
Rows, ledger and the new watermark commit in one transaction, so a crash resumes where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import psycopg2
from psycopg2 import sql

from ingestion.loader import BatchResult, load_batch, record_failure
from ingestion.sources import SourceSpec, SourceSpecError
from ingestion.validation import MAX_LATENESS

TIMESTAMP_TYPES = {1114: "timestamp", 1184: "timestamptz"}  # PostgreSQL type oids
FETCH_ROWS = 10_000


class SourceUnavailable(ValueError):
    """The application database cannot be reached or read; the batch fails with this message."""


@dataclass
class Newest:
    """The highest watermark value read so far; stored with the batch when it commits."""

    value: datetime | None = None

    def see(self, mark: datetime) -> None:
        if self.value is None or mark > self.value:
            self.value = mark


def extract_hour(conn, spec: SourceSpec, hour: datetime, max_lateness: timedelta = MAX_LATENESS) -> BatchResult:
    db = spec.database
    end = hour + timedelta(hours=1)
    name = f"{db['table']} where {db['watermark']} < {end.isoformat()}"
    dsn = os.environ.get(db["dsn_env"], "").strip()
    if not dsn:
        return record_failure(conn, name, "", hour, spec.name, f"source '{spec.name}': environment variable "
                       f"{db['dsn_env']} (its dsn_env) is not set; set it to the application database's URL")
    with conn, conn.cursor() as cur:
        cur.execute("select watermark from raw.extract_watermarks where source = %s", (spec.name,))
        stored = cur.fetchone()
    previous = stored[0] if stored else None
    if previous is not None and previous >= end:
        return BatchResult(name, "skipped")  # a rerun of an hour this source has already passed
    lookback = timedelta(seconds=float(db.get("lookback") or 0))
    since = previous - lookback if previous is not None else None
    newest = Newest()

    def open_source():
        return _read_table(dsn, spec, since, end, newest)

    def store_watermark(cur, result: BatchResult) -> None:
        if newest.value is not None:
            cur.execute("""insert into raw.extract_watermarks (source, watermark, updated_at) values (%s, %s, now())
                           on conflict (source) do update set watermark = greatest(raw.extract_watermarks.watermark,
                           excluded.watermark), updated_at = now()""", (spec.name, newest.value))

    digest = f"from {since.isoformat() if since else 'the start'}"  # the read's identity in the ledger
    return load_batch(conn, spec, name, lambda: digest, hour, open_source, store_watermark, max_lateness)


def _read_table(dsn: str, spec: SourceSpec, since, end, newest: Newest) -> tuple[list[str], Iterator]:
    db = spec.database
    table = sql.Identifier(*db["table"].split("."))
    watermark = db["watermark"]
    try:
        source = psycopg2.connect(dsn, connect_timeout=10, application_name="llm-usage-warehouse extractor")
    except psycopg2.Error as exc:
        raise SourceUnavailable(f"source '{spec.name}': cannot connect to the database in {db['dsn_env']}: "
                                f"{str(exc).strip().splitlines()[0]}") from None
    try:
        with source.cursor() as cur:
            cur.execute(f"set timezone to '{spec.timezone.key if spec.timezone else 'UTC'}'")
            cur.execute(sql.SQL("select * from {} limit 0").format(table))
            columns = [d.name for d in cur.description]
            kinds = {d.name: d.type_code for d in cur.description}
    except psycopg2.Error as exc:
        source.close()
        raise SourceUnavailable(f"source '{spec.name}': cannot read table {db['table']}: "
                                f"{str(exc).strip().splitlines()[0]}") from None
    if watermark not in columns or kinds[watermark] not in TIMESTAMP_TYPES:
        source.close()
        found = "is not a column" if watermark not in columns else "is not a timestamp column"
        raise SourceSpecError(f"source '{spec.name}': watermark '{watermark}' {found} of {db['table']}; "
                              "name a timestamp column that only grows, such as created_at")

    def rows():
        query = sql.SQL("select * from {t} where {w} < %s" + (" and {w} >= %s" if since else "") + " order by {w}")
        try:
            with source, source.cursor(name="extract") as cur:  # server-side: rows stream, memory stays flat
                cur.itersize = FETCH_ROWS
                cur.execute(query.format(t=table, w=sql.Identifier(watermark)), (end, since) if since else (end,))
                for number, values in enumerate(cur, start=1):
                    row = {c: float(v) if isinstance(v, Decimal) else v for c, v in zip(columns, values, strict=True)}
                    mark = row[watermark]
                    if mark is not None:
                        newest.see(mark if mark.tzinfo else mark.replace(tzinfo=spec.timezone or UTC))
                    yield number, orjson.dumps(row, default=str), row
        except psycopg2.Error as exc:
            raise SourceUnavailable(f"source '{spec.name}': reading {db['table']} failed: "
                                    f"{str(exc).strip().splitlines()[0]}") from None
        finally:
            source.close()

    return columns, rows()
