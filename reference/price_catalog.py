"""Where prices enter: the genai-prices snapshot (offline, shipped with the package) as price rows.

Each row is one provider, model, price period and input-token tier band, with the period's validity
window (valid_from / valid_to in UTC, and a time-of-day window for off-peak prices) and the rates
for the contract's five token buckets. The rates are measured with genai-prices' own calculator on
one-token probes, so its rules (which bucket falls back to which price, cliff tiers on the total
input) are what the SQL applies; tests/test_costs.py checks event costs against `calc_price`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from importlib.metadata import version

from reference.files import analyze_reference

# the per-event cost is fee + sum(bucket tokens x rate) / 1e6; see dbt_project/models/costs
RATES = ("usd_per_request", "usd_per_mtok_input", "usd_per_mtok_cache_read", "usd_per_mtok_cache_write",
         "usd_per_mtok_output", "usd_per_mtok_reasoning")
DAY_SECONDS = 24 * 3600

CATALOG_DDL = """
create schema if not exists reference;

-- one row per provider, model, price period and tier band of the genai-prices catalog
create table if not exists reference.catalog_prices (
    price_id text primary key,  -- hash of the row's content: a changed price is a new id
    provider_id text not null,
    model_id text not null,
    model_name text,
    valid_from timestamptz,  -- null: since always
    valid_to timestamptz,  -- null: until further notice
    time_of_day_from time,  -- UTC time-of-day window (off-peak prices); null: all day
    time_of_day_to time,
    input_tokens_over bigint,  -- tier band: applies when the request's input tokens exceed this
    input_tokens_up_to bigint,  -- ... and do not exceed this (null: no upper bound)
    usd_per_request numeric not null,
    usd_per_mtok_input numeric not null,
    usd_per_mtok_cache_read numeric not null,
    usd_per_mtok_cache_write numeric not null,
    usd_per_mtok_output numeric not null,
    usd_per_mtok_reasoning numeric not null,
    listed_prices jsonb not null,  -- the catalog's own price keys for the period, for people
    catalog_version text not null
);

-- how the (provider, model) strings seen in events map onto catalog models (genai-prices' rules)
create table if not exists reference.model_matches (
    provider text not null,
    model text not null,
    catalog_provider_id text,  -- null: genai-prices knows no price for this model
    catalog_model_id text,
    catalog_version text not null,
    matched_at timestamptz not null default now(),
    primary key (provider, model)
);
"""


@dataclass(frozen=True)
class PriceRow:
    provider_id: str
    model_id: str
    model_name: str | None
    valid_from: datetime | None
    valid_to: datetime | None
    time_of_day_from: str | None  # 'HH:MM:SS', '24:00:00' allowed as an end
    time_of_day_to: str | None
    input_tokens_over: int | None
    input_tokens_up_to: int | None
    rates: tuple[Decimal, ...]  # in RATES order
    listed_prices: str  # JSON

    @property
    def price_id(self) -> str:
        content = json.dumps([self.provider_id, self.model_id, _iso(self.valid_from), _iso(self.valid_to),
                              self.time_of_day_from, self.time_of_day_to, self.input_tokens_over,
                              self.input_tokens_up_to, [str(r) for r in self.rates]])
        return "gp-" + hashlib.md5(content.encode()).hexdigest()[:16]


def catalog_version() -> str:
    return f"genai-prices {version('genai-prices')}"


def snapshot():
    from genai_prices import data_snapshot  # half a second of pydantic models: only when prices are needed

    return data_snapshot.get_snapshot()


def catalog_rows(providers=None) -> list[PriceRow]:
    """Every token-priced model of the catalog, as rows with validity windows and tier bands."""
    rows: list[PriceRow] = []
    seen: set[tuple[str, str]] = set()
    for provider in providers if providers is not None else snapshot().providers:
        for model in provider.models:
            if (provider.id, model.id) in seen:  # the catalog lists a few models twice; the first wins
                continue
            seen.add((provider.id, model.id))
            for valid_from, valid_to, tod_from, tod_to, model_price in price_periods(model):
                if not _prices_tokens(model_price):
                    continue  # priced per search, per hour of audio...: not a token price, left unpriced
                for over, up_to, rates in tier_bands(model_price):
                    rows.append(PriceRow(provider.id, model.id, model.name, valid_from, valid_to, tod_from, tod_to,
                                         over, up_to, rates, _listed(model_price)))
    return rows


def price_periods(model) -> list[tuple]:
    """(valid_from, valid_to, time_of_day_from, time_of_day_to, ModelPrice) that never overlap.

    genai-prices tries a model's conditional prices last to first and takes the first active one
    (the first of all when none is): start dates cut time into periods, and within a period
    time-of-day prices cut the day into segments.
    """
    from genai_prices.types import ModelPrice, StartDateConstraint, TimeOfDateConstraint

    if isinstance(model.prices, ModelPrice):
        return [(None, None, None, None, model.prices)]
    conditions = model.prices
    starts = sorted({c.constraint.start_date for c in conditions if isinstance(c.constraint, StartDateConstraint)})
    bounds: list[date | None] = [None, *starts, None]
    daily = [i for i, c in enumerate(conditions) if isinstance(c.constraint, TimeOfDateConstraint)]
    cuts = sorted({0, DAY_SECONDS} | {_seconds(t) for i in daily for t in (_utc(conditions[i].constraint.start_time),
                                                                          _utc(conditions[i].constraint.end_time))})
    periods = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        segments: list[list] = []  # [from_s, to_s, winner]
        for a, b in zip(cuts, cuts[1:], strict=False):
            winner = 0
            for i, condition in enumerate(conditions):
                constraint = condition.constraint
                if (constraint is None
                        or (isinstance(constraint, StartDateConstraint) and lo is not None
                            and constraint.start_date <= lo)
                        or (isinstance(constraint, TimeOfDateConstraint) and constraint.active(
                            datetime.combine(lo or date(2000, 1, 1), _time(a), tzinfo=UTC)))):
                    winner = i
            if segments and segments[-1][2] == winner:
                segments[-1][1] = b
            else:
                segments.append([a, b, winner])
        valid_from = datetime.combine(lo, time(), tzinfo=UTC) if lo else None
        valid_to = datetime.combine(hi, time(), tzinfo=UTC) if hi else None
        if len(segments) == 1:
            periods.append((valid_from, valid_to, None, None, conditions[segments[0][2]].prices))
        else:
            periods += [(valid_from, valid_to, _clock(a), _clock(b), conditions[winner].prices)
                        for a, b, winner in segments]
    return periods


def tier_bands(model_price) -> list[tuple[int | None, int | None, tuple[Decimal, ...]]]:
    """(input_tokens_over, input_tokens_up_to, rates) per tier band: a tier applies to all tokens of a
    request whose input tokens exceed its start (genai-prices' cliff model)."""
    from genai_prices.types import TieredPrices

    starts = sorted({tier.start for value in model_price.__dict__.values() if isinstance(value, TieredPrices)
                     for tier in value.tiers})
    lowers: list[int | None] = [None, *starts]
    uppers: list[int | None] = [*starts, None]
    return [(lo, hi, probe_rates(model_price, 0 if lo is None else lo + 1)) for lo, hi in zip(lowers, uppers,
                                                                                             strict=True)]


def probe_rates(model_price, input_tokens: int) -> tuple[Decimal, ...]:
    """Rates of each bucket for requests with `input_tokens` in all, from one-token differences."""
    from genai_prices import Usage

    def price(**usage) -> Decimal:
        return model_price.calc_price(Usage(**usage))["total_price"]

    base = price(input_tokens=input_tokens)
    per_input = (price(input_tokens=input_tokens + 1) - base) * 1_000_000
    fee = price() if input_tokens == 0 else base - per_input * input_tokens / 1_000_000
    one_more = input_tokens + 1
    return (
        fee,
        per_input,
        (price(input_tokens=one_more, cache_read_tokens=1) - base) * 1_000_000,
        (price(input_tokens=one_more, cache_write_tokens=1) - base) * 1_000_000,
        (price(input_tokens=input_tokens, output_tokens=1) - base) * 1_000_000,
        (price(input_tokens=input_tokens, output_tokens=1, output_reasoning_tokens=1) - base) * 1_000_000,
    )


def match_models(pairs, providers=None) -> dict[tuple[str, str], tuple[str, str] | None]:
    """(provider, model) as seen in events -> (catalog provider id, model id), by genai-prices' rules
    (provider aliases, model match patterns, a provider's fallback to the model's maker)."""
    snap = snapshot()
    owner = {id(model): provider.id for provider in (providers or snap.providers) for model in provider.models}
    matches = {}
    for provider, model in pairs:
        try:
            _, info = snap.find_provider_model(model, None, provider, None)
        except LookupError:
            matches[(provider, model)] = None
            continue
        matches[(provider, model)] = (owner.get(id(info), provider), info.id)
    return matches


def write_catalog(cur, rows: list[PriceRow], catalog: str) -> dict[str, int]:
    """Replace reference.catalog_prices with `rows`; returns how many rows were added, removed, kept."""
    cur.execute(CATALOG_DDL)
    cur.execute("select price_id from reference.catalog_prices")
    before = {pid for (pid,) in cur.fetchall()}
    after = {row.price_id: row for row in rows}
    cur.execute("delete from reference.catalog_prices where not (price_id = any(%s))", (list(after),))
    new = [row for pid, row in after.items() if pid not in before]
    for row in new:
        cur.execute(
            "insert into reference.catalog_prices values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, %s, %s, %s, %s, %s)",
            (row.price_id, row.provider_id, row.model_id, row.model_name, row.valid_from, row.valid_to,
             row.time_of_day_from, row.time_of_day_to, row.input_tokens_over, row.input_tokens_up_to,
             *row.rates, row.listed_prices, catalog))
    cur.execute("update reference.catalog_prices set catalog_version = %s", (catalog,))
    analyze_reference(cur, "catalog_prices")
    return {"added": len(new), "removed": len(before - set(after)), "kept": len(before & set(after))}


def match_new_models(cur, start, end) -> dict:
    """Match and store the (provider, model) pairs of the events that landed in [start, end) that
    reference.model_matches does not know yet; returns the new matches (None: no catalog model)."""
    cur.execute("""select distinct e.provider, e.model from raw.usage_events e
                   where e.landing_hour >= %s and e.landing_hour < %s
                     and not exists (select 1 from reference.model_matches m
                                     where m.provider = e.provider and m.model = e.model)""", (start, end))
    new_pairs = cur.fetchall()
    matches = match_models(new_pairs) if new_pairs else {}
    write_matches(cur, matches, catalog_version())
    return matches


def write_matches(cur, matches: dict, catalog: str) -> list[tuple[str, str]]:
    """Upsert model matches; returns the (provider, model) pairs whose catalog model changed."""
    cur.execute(CATALOG_DDL)
    cur.execute("select provider, model, catalog_provider_id, catalog_model_id from reference.model_matches")
    known = {(p, m): (cp, cm) if cp else None for p, m, cp, cm in cur.fetchall()}
    changed = [pair for pair, target in matches.items() if pair in known and known[pair] != target]
    for (provider, model), target in matches.items():
        cur.execute("""insert into reference.model_matches
                           (provider, model, catalog_provider_id, catalog_model_id, catalog_version)
                       values (%s, %s, %s, %s, %s)
                       on conflict (provider, model) do update
                       set catalog_provider_id = excluded.catalog_provider_id,
                           catalog_model_id = excluded.catalog_model_id,
                           catalog_version = excluded.catalog_version, matched_at = now()""",
                    (provider, model, *(target or (None, None)), catalog))
    if matches:  # most hours bring no new model: nothing written, nothing to analyze
        analyze_reference(cur, "model_matches")
    return changed


def _prices_tokens(model_price) -> bool:
    return model_price.input_mtok is not None or model_price.output_mtok is not None


def _listed(model_price) -> str:
    from genai_prices.types import TieredPrices

    def plain(value):
        if isinstance(value, TieredPrices):
            return {"base": str(value.base), "tiers": [{"over": t.start, "price": str(t.price)} for t in value.tiers]}
        return str(value)

    return json.dumps({k: plain(v) for k, v in sorted(model_price.__dict__.items())
                       if v is not None and not k.startswith("_")})


def _utc(value: time) -> time:
    if value.tzinfo is None:
        return value
    return datetime.combine(date(2000, 1, 1), value).astimezone(UTC).time()


def _seconds(value: time) -> int:
    return value.hour * 3600 + value.minute * 60 + value.second


def _time(seconds: int) -> time:
    return time(seconds // 3600, seconds % 3600 // 60, seconds % 60)


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
