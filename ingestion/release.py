"""Releasing a failed landing hour: the rows that stop its gate go to the quarantine, with an audit trail.

The loader quarantines what breaks the contract, so a raw gate fails on rows that got past it: a loader
bug, a hand edit, or a stricter setting since the load (a shorter raw retention). `release_hour` checks
every raw row of the hour against the contract as it stands now, moves the rows that break it to
raw.quarantine (reasons `released:<reason>`, the row as stored for its text), drops extra copies of a
repeated event id (the ledger never counted them), accepts the quarantined share of the hour's files
over the limit, writes who, when and why to audit.releases, and marks the hour pending so its next run
gates it again. The ledger keeps adding up: a released row counts as quarantined instead of loaded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from ingestion.contract import FIELD_NAMES
from ingestion.schema import ensure_schema
from ingestion.validation import MAX_LATENESS, Rejected, validate_record

REPEATED = "event_id:repeated"
SHARE_MIN_ROWS = 100  # files with fewer rows are not judged by their quarantined share: a few bad rows are no signal


@dataclass(frozen=True)
class Release:
    landing_hour: datetime
    rows: int  # moved to the quarantine
    copies: int  # extra copies of a repeated id, dropped
    reasons: dict[str, int] = field(default_factory=dict)
    files_accepted: list[str] = field(default_factory=list)

    @property
    def changed_anything(self) -> bool:
        return bool(self.rows or self.copies or self.files_accepted)


def release_hour(conn, hour: datetime, released_by: str, note: str | None, max_share: float,
                 max_lateness: timedelta = MAX_LATENESS) -> Release:
    """Release what stops landing hour `hour` (see the module's docstring), in one transaction."""
    with conn, conn.cursor() as cur:
        ensure_schema(cur)
        cur.execute("select pg_advisory_xact_lock(hashtext('llm-usage-warehouse release ' || %s))", (hour,))
        offending, copies = _offending_rows(cur, hour, max_lateness)
        reasons: Counter[str] = Counter()
        for tableoid, ctid, _, _, why in copies:
            cur.execute("delete from raw.usage_events where tableoid = %s and ctid = %s", (tableoid, ctid))
            reasons[why[0]] += 1
        per_batch: Counter[int] = Counter()
        for tableoid, ctid, batch_id, record, why in offending:
            cur.execute("""insert into raw.quarantine (batch_id, source, file, line_number, raw_text, reasons)
                           select batch_id, source, file, null, %s, %s from raw.ingestion_batches
                           where batch_id = %s""",
                        (orjson.dumps(record, default=str).decode(), [f"released:{r}" for r in why], batch_id))
            cur.execute("delete from raw.usage_events where tableoid = %s and ctid = %s", (tableoid, ctid))
            per_batch[batch_id] += 1
            reasons.update(why)
        released_ids = [record["event_id"] for _, _, _, record, _ in offending]
        if released_ids:  # freed, so a corrected re-delivery of the same events loads
            cur.execute("""delete from raw.event_ids where event_id = any(%s) and event_id not in (
                               select event_id from raw.usage_events where landing_hour = %s)""",
                        (released_ids, hour))
            for batch_id, n in per_batch.items():
                cur.execute("""update raw.ingestion_batches set rows_loaded = rows_loaded - %s,
                                   rows_quarantined = rows_quarantined + %s where batch_id = %s""", (n, n, batch_id))
            # their event hours are recomputed with the landing hour, in case they were published before
            cur.execute("""insert into raw.retracted_event_hours (landing_hour, event_hour)
                           select %s, hour from unnest(%s::timestamptz[]) as hour on conflict do nothing""",
                        (hour, sorted({_hour_of(record["event_time"]) for _, _, _, record, _ in offending
                                       if record["event_time"] is not None})))
        cur.execute("""update raw.ingestion_batches set share_accepted = true
                       where landing_hour = %s and status = 'loaded' and not share_accepted and rows_read >= %s
                         and rows_quarantined::float8 / rows_read > %s
                       returning file""", (hour, SHARE_MIN_ROWS, max_share))
        accepted = sorted(file for (file,) in cur.fetchall())
        release = Release(hour, len(offending), len(copies), dict(reasons), accepted)
        if release.changed_anything:
            cur.execute("""insert into audit.releases (landing_hour, released_by, note, rows_released, reasons,
                               files_accepted) values (%s, %s, %s, %s, %s, %s)""",
                        (hour, released_by, note, release.rows + release.copies,
                         orjson.dumps(release.reasons).decode(), accepted))
            cur.execute("""insert into raw.landing_hours (landing_hour, gate_status) values (%s, 'pending')
                           on conflict (landing_hour) do update set gate_status = 'pending'""", (hour,))
    return release


def _offending_rows(cur, hour: datetime, max_lateness: timedelta) -> tuple[list, list]:
    """The hour's raw rows that break the contract now, and the extra copies of repeated event ids
    (the first copy, by batch, stays): each as (tableoid, ctid, batch_id, row as a dict, reasons)."""
    cur.execute(f"""select tableoid, ctid, batch_id, {', '.join(FIELD_NAMES)} from raw.usage_events
                    where landing_hour = %s order by batch_id, ctid""", (hour,))
    offending, copies, seen = [], [], set()
    for tableoid, ctid, batch_id, *values in cur.fetchall():
        record = dict(zip(FIELD_NAMES, values, strict=True))
        if record["event_id"] in seen:
            copies.append((tableoid, ctid, batch_id, record, (REPEATED,)))
            continue
        seen.add(record["event_id"])
        outcome = validate_record(record, hour, b"", max_lateness)
        if type(outcome) is Rejected:
            offending.append((tableoid, ctid, batch_id, record, outcome.reasons))
    return offending, copies


def _hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
