"""Where reference data enters: price overrides, org time zones and budgets, from CSV files people edit.

Each file is checked whole before anything is written, and a bad value stops the load with one line
that names the file, the line, the column and what to write instead (ReferenceDataError).
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

OVERRIDES_FILE = "price_overrides.csv"
ORGS_FILE = "orgs.csv"
BUDGETS_FILE = "org_budgets.csv"

REFERENCE_DDL = """
create schema if not exists reference;

-- negotiated or private prices and custom models; they win over the catalog inside their window
create table if not exists reference.price_overrides (
    price_id text primary key,
    provider text not null,
    model text not null,
    valid_from timestamptz,
    valid_to timestamptz,
    usd_per_request numeric not null,
    usd_per_mtok_input numeric not null,
    usd_per_mtok_cache_read numeric not null,
    usd_per_mtok_cache_write numeric not null,
    usd_per_mtok_output numeric not null,
    usd_per_mtok_reasoning numeric not null,
    note text
);

create table if not exists reference.orgs (
    org_id text primary key,
    org_name text,
    time_zone text not null  -- IANA name: local days and months of the cost marts follow it
);

create table if not exists reference.org_budgets (
    org_id text not null,
    month date,  -- first day of the month; null: the budget of every month without its own row
    budget_usd numeric not null,
    unique (org_id, month)
);
"""


class ReferenceDataError(ValueError):
    """A reference file that cannot be used, with where and what to do."""


@dataclass(frozen=True)
class Override:
    provider: str
    model: str
    valid_from: datetime | None
    valid_to: datetime | None
    rates: tuple[Decimal, ...]  # reference.price_catalog.RATES order
    note: str

    @property
    def price_id(self) -> str:
        content = json.dumps([self.provider, self.model, _iso(self.valid_from), _iso(self.valid_to),
                              [str(r) for r in self.rates]])
        return "ov-" + hashlib.md5(content.encode()).hexdigest()[:16]


def read_overrides(folder: Path) -> list[Override]:
    """price_overrides.csv: provider, model, valid_from, valid_to, usd_per_mtok_input, usd_per_mtok_output,
    and optionally usd_per_mtok_cache_read / _cache_write (default: the input price),
    usd_per_mtok_reasoning (default: the output price), usd_per_request (default 0), note."""
    overrides: list[Override] = []
    for where, row in _rows(folder / OVERRIDES_FILE, ("provider", "model", "usd_per_mtok_input",
                                                      "usd_per_mtok_output")):
        provider, model = _text(row, "provider", where), _text(row, "model", where)
        valid_from = _instant(row.get("valid_from"), "valid_from", where)
        valid_to = _instant(row.get("valid_to"), "valid_to", where)
        if valid_from and valid_to and valid_from >= valid_to:
            raise ReferenceDataError(f"{where}: valid_from {valid_from:%Y-%m-%d %H:%M} is not before valid_to "
                                     f"{valid_to:%Y-%m-%d %H:%M}; the window is [valid_from, valid_to)")
        price_in = _price(row, "usd_per_mtok_input", where)
        price_out = _price(row, "usd_per_mtok_output", where)
        rates = (_price(row, "usd_per_request", where, Decimal(0)), price_in,
                 _price(row, "usd_per_mtok_cache_read", where, price_in),
                 _price(row, "usd_per_mtok_cache_write", where, price_in),
                 price_out, _price(row, "usd_per_mtok_reasoning", where, price_out))
        new = Override(provider, model, valid_from, valid_to, rates, (row.get("note") or "").strip())
        for other in overrides:
            if (other.provider.lower(), other.model.lower()) == (provider.lower(), model.lower()) and _overlap(
                    other, new):
                raise ReferenceDataError(f"{where}: the window of this {provider}/{model} price overlaps an earlier "
                                         "line's; give each window its own dates (valid_to of one = valid_from of "
                                         "the next)")
        overrides.append(new)
    return overrides


def read_orgs(folder: Path) -> list[tuple[str, str | None, str]]:
    """orgs.csv: org_id, org_name, time_zone (IANA, e.g. Europe/Berlin). Orgs not listed use UTC."""
    orgs = []
    for where, row in _rows(folder / ORGS_FILE, ("org_id", "time_zone")):
        zone = _text(row, "time_zone", where)
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ReferenceDataError(f"{where}: time_zone {zone!r} is not an IANA time zone; write a name like "
                                     "America/New_York or UTC") from None
        orgs.append((_text(row, "org_id", where), (row.get("org_name") or "").strip() or None, zone))
    return orgs


def read_budgets(folder: Path) -> list[tuple[str, date | None, Decimal]]:
    """org_budgets.csv: org_id, month (YYYY-MM; empty for every month), budget_usd."""
    budgets: dict[tuple[str, date | None], Decimal] = {}
    for where, row in _rows(folder / BUDGETS_FILE, ("org_id", "budget_usd")):
        org_id = _text(row, "org_id", where)
        raw_month = (row.get("month") or "").strip()
        try:
            month = datetime.strptime(raw_month, "%Y-%m").date() if raw_month else None
        except ValueError:
            raise ReferenceDataError(f"{where}: month {raw_month!r} is not YYYY-MM; write e.g. 2026-11, "
                                     "or leave it empty for every month") from None
        budget = _price(row, "budget_usd", where)
        if budget <= 0:
            raise ReferenceDataError(f"{where}: budget_usd must be above 0")
        if (org_id, month) in budgets:
            raise ReferenceDataError(f"{where}: a second budget for {org_id} {raw_month or '(every month)'}; "
                                     "keep one line per org and month")
        budgets[(org_id, month)] = budget
    return [(org, month, budget) for (org, month), budget in budgets.items()]


def write_reference(cur, folder: Path) -> dict[str, int]:
    """Check every file, then replace the three tables in the caller's transaction; returns row counts."""
    overrides, orgs, budgets = read_overrides(folder), read_orgs(folder), read_budgets(folder)
    cur.execute(REFERENCE_DDL)
    cur.execute("truncate reference.price_overrides, reference.orgs, reference.org_budgets")
    for o in overrides:
        cur.execute("insert into reference.price_overrides values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (o.price_id, o.provider, o.model, o.valid_from, o.valid_to, *o.rates, o.note or None))
    cur.executemany("insert into reference.orgs values (%s, %s, %s)", orgs)
    cur.executemany("insert into reference.org_budgets values (%s, %s, %s)", budgets)
    analyze_reference(cur, "price_overrides", "orgs", "org_budgets")
    return {"price_overrides": len(overrides), "orgs": len(orgs), "org_budgets": len(budgets)}


def _rows(path: Path, required: tuple[str, ...]):
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ReferenceDataError(f"{path}: no column {', '.join(missing)} in the header; the header must "
                                     f"name at least {', '.join(required)}")
        for row in reader:
            if any((v or "").strip() for v in row.values() if isinstance(v, str)):
                yield f"{path} line {reader.line_num}", row


def _text(row: dict, column: str, where: str) -> str:
    value = (row.get(column) or "").strip()
    if not value:
        raise ReferenceDataError(f"{where}: {column} is empty; every line needs one")
    return value


def _price(row: dict, column: str, where: str, default: Decimal | None = None) -> Decimal:
    raw = (row.get(column) or "").strip()
    if not raw:
        if default is None:
            raise ReferenceDataError(f"{where}: {column} is empty; write an amount in USD")
        return default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ReferenceDataError(f"{where}: {column} {raw!r} is not a number; write an amount in USD like 2.50"
                                 ) from None
    if not value.is_finite() or value < 0:
        raise ReferenceDataError(f"{where}: {column} {raw!r} must be a finite amount of 0 or more")
    return value


def _instant(raw: str | None, column: str, where: str) -> datetime | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ReferenceDataError(f"{where}: {column} {raw!r} is not a date; write 2026-11-01 (UTC midnight) "
                                 "or 2026-11-01T09:00:00+00:00") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _overlap(a: Override, b: Override) -> bool:
    far_past, far_future = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    return (a.valid_from or far_past) < (b.valid_to or far_future) and (b.valid_from or far_past) < (
        a.valid_to or far_future)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def analyze_reference(cur, *tables: str) -> None:
    """Statistics for reference tables just written: the pricing join plans by them, and autovacuum may be
    off or late (PostgreSQL 15 here runs without it; never analyzed, 1 override row looked like 220 and the
    1M events were sorted twice to merge-join them)."""
    for table in tables:
        cur.execute(f"analyze reference.{table}")
