"""A realistic, seeded generator of LLM usage logs, written as hourly files into a landing zone.

Each org has its own time zone, model mix and services; traffic follows the org's local day and
week; latency is lognormal per model; error bursts, cached and reasoning tokens, multi-event
sessions and an experiment variant in metadata are all there. A configurable share of defects is
planted (duplicates, late events, malformed lines, out-of-range values) and counted in a manifest,
so a test can check that every planted defect ended up where it should. Anomalies (a cost spike,
an error burst, a latency regression for one org, model and hour) can be planted too, and the
natural error bursts turned off, so anomaly detection can be tested on otherwise clean seasonal data.

Every (org, hour) draws from its own seeded random stream, so the same seed gives byte-identical
files for the same hours, whatever window is generated.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import itertools
import json
import math
import random
import sys
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Model:
    provider: str
    name: str
    median_latency_ms: float
    ttft_share: float  # median time to first token as a share of latency
    usd_per_mtok: tuple[float, float, float, float]  # input, cache read, cache write, output
    reasoning: bool = False


MODELS: dict[str, Model] = {m.name: m for m in (
    Model("openai", "gpt-4o", 1800, 0.22, (2.50, 1.25, 2.50, 10.00)),
    Model("openai", "gpt-4o-mini", 900, 0.20, (0.15, 0.075, 0.15, 0.60)),
    Model("openai", "o4-mini", 5200, 0.55, (1.10, 0.275, 1.10, 4.40), reasoning=True),
    Model("anthropic", "claude-sonnet-4-20250514", 2600, 0.25, (3.00, 0.30, 3.75, 15.00)),
    Model("anthropic", "claude-3-5-haiku-20241022", 1100, 0.20, (0.80, 0.08, 1.00, 4.00)),
    Model("google", "gemini-2.0-flash", 700, 0.18, (0.10, 0.025, 0.10, 0.40)),
    Model("google", "gemini-2.5-pro", 4800, 0.50, (1.25, 0.31, 1.25, 10.00), reasoning=True),
    # a fine-tune served in-house: priced by reference/price_overrides.csv, unknown to the catalog
    Model("vllm", "acme-llama-3.1-70b-ft", 1500, 0.15, (0.60, 0.60, 0.60, 0.60)),
    # a model nobody priced: its requests stay unpriced and raise an insight
    Model("internal", "triage-classifier-v2", 300, 0.30, (0.0, 0.0, 0.0, 0.0)),
)}

TEAMS = ("platform", "growth", "support-eng", "research")


@dataclass(frozen=True)
class Service:
    name: str
    operation: str
    median_input_tokens: float
    median_output_tokens: float
    tools: tuple[str, ...]
    actions: tuple[str, ...]


SERVICES: dict[str, Service] = {s.name: s for s in (
    Service("support-bot", "chat", 1500, 280, ("search_kb", "lookup_order", ""), ("answer_ticket", "escalate")),
    Service("code-review", "chat", 6000, 650, ("read_file", "run_tests", ""), ("review_pr", "suggest_fix")),
    Service("doc-summarizer", "completion", 12000, 450, ("",), ("summarize_doc",)),
    Service("sales-copilot", "chat", 2500, 350, ("crm_lookup", "draft_email", ""), ("draft_reply", "qualify_lead")),
    Service("search-rerank", "completion", 800, 40, ("",), ("rerank",)),
)}


@dataclass(frozen=True)
class Org:
    org_id: str
    time_zone: str
    weight: float  # share of traffic
    users: int
    models: dict[str, float]  # model -> share of requests
    services: dict[str, float]


ORGS: tuple[Org, ...] = (
    Org("org_acme", "America/New_York", 1.0, 180,
        {"gpt-4o": 0.30, "gpt-4o-mini": 0.40, "claude-sonnet-4-20250514": 0.25, "acme-llama-3.1-70b-ft": 0.05},
        {"support-bot": 0.6, "code-review": 0.4}),
    Org("org_globex", "Europe/Berlin", 0.8, 120,
        {"claude-sonnet-4-20250514": 0.4, "claude-3-5-haiku-20241022": 0.4, "gemini-2.0-flash": 0.2},
        {"doc-summarizer": 0.5, "support-bot": 0.5}),
    Org("org_initech", "Asia/Tokyo", 0.6, 90,
        {"gemini-2.0-flash": 0.5, "gemini-2.5-pro": 0.2, "gpt-4o-mini": 0.28, "triage-classifier-v2": 0.02},
        {"search-rerank": 0.6, "sales-copilot": 0.4}),
    Org("org_umbrella", "America/Los_Angeles", 0.5, 60,
        {"o4-mini": 0.35, "gpt-4o": 0.35, "claude-3-5-haiku-20241022": 0.3},
        {"code-review": 0.7, "doc-summarizer": 0.3}),
    Org("org_hooli", "Australia/Sydney", 0.3, 40,
        {"gpt-4o-mini": 0.6, "gemini-2.5-pro": 0.4},
        {"sales-copilot": 1.0}),
)

BASE_ERRORS = (("timeout", 504, 0.3), ("server_error", 500, 0.3), ("rate_limit_exceeded", 429, 0.25),
               ("context_length_exceeded", 400, 0.15))
BURST_ERRORS = (("rate_limit_exceeded", 429, 0.6), ("overloaded", 529, 0.3), ("server_error", 500, 0.1))
BASE_ERROR_RATE = 0.015
BURST_ERROR_RATE = 0.35


@dataclass
class Defects:
    """Shares of events that get each defect planted."""

    duplicate: float = 0.005
    late: float = 0.01
    malformed: float = 0.001
    out_of_range: float = 0.001

    def scaled(self, factor: float) -> Defects:
        return Defects(*(min(1.0, getattr(self, k) * factor) for k in ("duplicate", "late", "malformed",
                                                                           "out_of_range")))


@dataclass
class Manifest:
    start: str
    end: str
    seed: int
    events: int = 0  # distinct valid events written (what the marts must count)
    lines: int = 0  # every line in every file
    files: int = 0
    planted: Counter = field(default_factory=Counter)
    anomalies: tuple[Anomaly, ...] = ()

    def to_json(self) -> str:
        return json.dumps({"start": self.start, "end": self.end, "seed": self.seed, "events": self.events,
                           "lines": self.lines, "files": self.files, "planted": dict(self.planted),
                           "anomalies": [a.describe() for a in self.anomalies]}, indent=2)


ANOMALY_KINDS = {  # kind -> default factor
    "cost_spike": 8.0,  # prompts FACTOR times longer: cost jumps, request count does not
    "error_burst": 0.5,  # FACTOR of the requests fail (rate limiting)
    "latency_regression": 3.0,  # every request FACTOR times slower
}


@dataclass(frozen=True)
class Anomaly:
    """Something planted in one org's use of one model during one UTC hour."""

    kind: str
    org_id: str
    model: str
    hour: datetime
    factor: float | None = None

    @property
    def strength(self) -> float:
        return ANOMALY_KINDS[self.kind] if self.factor is None else self.factor

    def describe(self) -> str:
        return f"{self.kind}:{self.org_id}:{self.model}:{self.hour:%Y-%m-%dT%H}:{self.strength:g}"

    @classmethod
    def parse(cls, text: str) -> Anomaly:
        """KIND:ORG:MODEL:HOUR[:FACTOR], HOUR a UTC hour like 2026-06-29T14."""
        parts = text.split(":")
        try:
            if len(parts) not in (4, 5) or parts[0] not in ANOMALY_KINDS:
                raise ValueError
            hour = datetime.strptime(parts[3], "%Y-%m-%dT%H").replace(tzinfo=UTC)
            return cls(parts[0], parts[1], parts[2], hour, float(parts[4]) if len(parts) == 5 else None)
        except ValueError:
            raise ValueError(f"anomaly {text!r} is not KIND:ORG:MODEL:HOUR[:FACTOR] with KIND one of "
                             f"{', '.join(ANOMALY_KINDS)}, e.g. cost_spike:org_acme:gpt-4o:2026-06-29T14") from None


def diurnal(local_hour: float) -> float:
    """Traffic by local hour: low at night, peak mid-afternoon (mean about 1)."""
    return 0.15 + 1.7 * math.exp(-((local_hour - 14.0) ** 2) / (2 * 3.5**2))


def weekly(local_weekday: int) -> float:
    return 0.35 if local_weekday >= 5 else 1.0


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _normaliser() -> float:
    """Expected org-weighted intensity of one UTC day, to turn events/day into hourly rates."""
    daily = sum(diurnal(h + 0.5) for h in range(24)) / 24
    week = sum(weekly(d) for d in range(7)) / 7
    return sum(o.weight for o in ORGS) * daily * week * 24


def error_bursts(seed: int, org: Org, day: datetime) -> list[tuple[datetime, datetime]]:
    """A few windows per week when an org's provider is rate-limiting or overloaded."""
    rng = random.Random(f"{seed}:{org.org_id}:burst:{day:%Y-%m-%d}")
    if rng.random() > 0.3:
        return []
    start = day + timedelta(minutes=rng.uniform(0, 24 * 60 - 90))
    return [(start, start + timedelta(minutes=rng.uniform(20, 90)))]


def _tokens(rng: random.Random, median: float, sigma: float = 0.7) -> int:
    return max(1, int(rng.lognormvariate(math.log(median), sigma)))


def _cost(model: Model, input_tokens: int, cached: int, cache_write: int, output_tokens: int) -> float:
    p_in, p_read, p_write, p_out = model.usd_per_mtok
    return ((input_tokens - cached - cache_write) * p_in + cached * p_read + cache_write * p_write
            + output_tokens * p_out) / 1e6


def _event(rng: random.Random, org: Org, ts: datetime, user: str, session: str, service: Service,
           model: Model, position: int, in_burst: bool, variant: str) -> dict:
    input_tokens = _tokens(rng, service.median_input_tokens)
    cached = int(input_tokens * rng.uniform(0.3, 0.9)) if position > 0 and rng.random() < 0.6 else 0
    cache_write = (input_tokens - cached) // 2 if model.provider == "anthropic" and position == 0 else 0
    error_rate = BURST_ERROR_RATE if in_burst else BASE_ERROR_RATE
    failed = rng.random() < error_rate
    if failed:
        code, http, _ = rng.choices(BURST_ERRORS if in_burst else BASE_ERRORS,
                                    weights=[w for *_, w in (BURST_ERRORS if in_burst else BASE_ERRORS)])[0]
        output_tokens = reasoning = 0
        latency = 30000.0 + rng.uniform(0, 30000) if code == "timeout" else rng.uniform(80, 900)
        ttft = None
    else:
        code, http = None, 200
        output_tokens = _tokens(rng, service.median_output_tokens, 0.6)
        reasoning = int(output_tokens * rng.uniform(0.3, 0.8)) if model.reasoning else 0
        if model.reasoning:
            output_tokens += reasoning * 2  # reasoning models think before they answer
        latency = rng.lognormvariate(math.log(model.median_latency_ms), 0.45) * (1 + output_tokens / 4000)
        ttft = latency * min(0.95, model.ttft_share * rng.uniform(0.6, 1.4))
    cost = _cost(model, input_tokens, cached, cache_write, output_tokens)
    tool = rng.choice(service.tools)
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "event_time": _iso(ts),
        "received_at": _iso(ts + timedelta(milliseconds=latency + rng.uniform(50, 2000))),
        "org_id": org.org_id,
        "user_id": user,
        "session_id": session,
        "service": service.name,
        "operation": service.operation,
        "tool": tool or None,
        "action": rng.choice(service.actions),
        "event_type": "llm_request",
        "provider": model.provider,
        "model": model.name,
        "input_tokens": input_tokens,
        "cached_input_tokens": cached,
        "cache_write_tokens": cache_write,
        "output_tokens": output_tokens,
        "reasoning_tokens": reasoning,
        "credits": round(cost * 100, 4),
        "provider_cost_usd": None if model.provider in ("vllm", "internal") else round(cost, 8) if not failed else 0.0,
        "latency_ms": round(latency, 1),
        "ttft_ms": round(ttft, 1) if ttft is not None else None,
        "status": "error" if failed else "success",
        "error_code": code,
        "http_status": http,
        "metadata": {"experiment": "prompt_v2", "variant": variant, "app_version": "2.4.1",
                     "team": TEAMS[hash_bucket(user + ":team") % len(TEAMS)]},
    }


def events_for_hour(seed: int, org: Org, hour: datetime, events_per_day: int, bursts: bool = True,
                    anomalies: tuple[Anomaly, ...] = ()) -> list[dict]:
    """The events one org sends in one UTC hour, sorted by time."""
    rng = random.Random(f"{seed}:{org.org_id}:{hour:%Y-%m-%dT%H}")
    local = (hour + timedelta(minutes=30)).astimezone(ZoneInfo(org.time_zone))
    rate = events_per_day * org.weight * diurnal(local.hour + 0.5) * weekly(local.weekday()) / _normaliser()
    count = max(0, round(rng.gauss(rate, math.sqrt(rate)))) if rate > 0 else 0
    windows = error_bursts(seed, org, hour.replace(hour=0)) if bursts else []
    events: list[dict] = []
    while len(events) < count:
        # a session: one user, one service, mostly one model, a few requests a minute or so apart
        user = rng.choices(_user_ids(org.org_id, org.users), cum_weights=_user_cum_weights(org.users))[0]
        variant = "treatment" if hash_bucket(user) < 50 else "control"
        service = SERVICES[_pick(rng, org.services)]
        model = MODELS[_pick(rng, org.models)]
        session = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        size = min(count - len(events), 1 + int(rng.expovariate(1 / 3)))
        ts = hour + timedelta(seconds=rng.uniform(0, 3300))
        for position in range(size):
            if position and rng.random() < 0.1:
                model = MODELS[_pick(rng, org.models)]
            in_burst = any(a <= ts < b for a, b in windows)
            events.append(_event(rng, org, ts, user, session, service, model, position, in_burst, variant))
            ts = min(ts + timedelta(seconds=rng.uniform(5, 90)), hour + timedelta(seconds=3599.999))
    events.sort(key=lambda e: e["event_time"])
    for anomaly in anomalies:
        if anomaly.org_id == org.org_id and anomaly.hour == hour:
            _plant(random.Random(f"{seed}:anomaly:{anomaly.describe()}"), anomaly, events)
    return events


def _plant(rng: random.Random, anomaly: Anomaly, events: list[dict]) -> None:
    """Change the anomaly's model's events in place (its own random stream: other hours stay as they were)."""
    model = MODELS[anomaly.model]
    for e in (e for e in events if e["model"] == anomaly.model):
        if anomaly.kind == "cost_spike":
            e["input_tokens"] = int(e["input_tokens"] * anomaly.strength)
        elif anomaly.kind == "latency_regression":
            e["latency_ms"] = round(e["latency_ms"] * anomaly.strength, 1)
            e["ttft_ms"] = e["ttft_ms"] and round(e["ttft_ms"] * anomaly.strength, 1)
        elif anomaly.kind == "error_burst" and e["status"] == "success" and rng.random() < anomaly.strength:
            e.update(status="error", error_code="rate_limit_exceeded", http_status=429, output_tokens=0,
                     reasoning_tokens=0, ttft_ms=None, latency_ms=round(rng.uniform(80, 900), 1))
        if e["status"] == "error":
            e["provider_cost_usd"] = None if model.provider in ("vllm", "internal") else 0.0
        else:
            cost = _cost(model, e["input_tokens"], e["cached_input_tokens"], e["cache_write_tokens"],
                         e["output_tokens"])
            e["credits"] = round(cost * 100, 4)
            if e["provider_cost_usd"] is not None:
                e["provider_cost_usd"] = round(cost, 8)


@functools.cache
def _user_ids(org_id: str, users: int) -> list[str]:
    return [f"{org_id}_u{rank:04d}" for rank in range(1, users + 1)]


@functools.cache
def _user_cum_weights(users: int) -> list[float]:
    """Zipf-like activity: a few power users, a long tail."""
    return list(itertools.accumulate(1 / rank**0.9 for rank in range(1, users + 1)))


def hash_bucket(text: str) -> int:
    """A stable 0-99 bucket (Python's hash() is salted per process)."""
    return int.from_bytes(uuid.uuid5(uuid.NAMESPACE_OID, text).bytes[:4], "big") % 100


def landing_path(landing_dir: Path, hour: datetime) -> Path:
    return landing_dir / f"dt={hour:%Y-%m-%d}" / f"hour={hour:%H}" / "events-0000.jsonl.gz"


def _break(rng: random.Random, event: dict, manifest: Manifest) -> str:
    """Plant one defect that the loader must quarantine; returns the line."""
    if rng.random() < 0.5:
        line = json.dumps(event)
        manifest.planted["malformed"] += 1
        return line[: rng.randint(1, len(line) - 2)]  # a truncated write
    field_name = rng.choice(("output_tokens", "input_tokens", "latency_ms"))
    event = {**event, field_name: -abs(event[field_name] or 1)}
    manifest.planted["out_of_range"] += 1
    return json.dumps(event)


def generate(landing_dir: Path, start: datetime, days: int, events_per_day: int, seed: int = 7,
             defects: Defects | None = None, progress=None, bursts: bool = True,
             anomalies: tuple[Anomaly, ...] = ()) -> Manifest:
    """Write `days` of hourly files starting at `start` (UTC hour); returns what was written.
    bursts=False leaves out the natural error bursts; `anomalies` are planted as given."""
    defects = defects or Defects()
    for anomaly in anomalies:
        if anomaly.model not in MODELS or anomaly.org_id not in {o.org_id for o in ORGS}:
            raise ValueError(f"anomaly {anomaly.describe()}: no such org or model in the generator "
                             f"(orgs: {', '.join(o.org_id for o in ORGS)})")
    start = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = [start + timedelta(hours=h) for h in range(days * 24)]
    last = hours[-1]
    for anomaly in anomalies:
        if not start <= anomaly.hour <= last:
            raise ValueError(f"anomaly {anomaly.describe()}: its hour is outside the generated window "
                             f"{start:%Y-%m-%dT%H} to {last:%Y-%m-%dT%H}; move it or set --start and --days")
    manifest = Manifest(start=_iso(start), end=_iso(last + timedelta(hours=1)), seed=seed, anomalies=anomalies)
    spill: dict[datetime, list[str]] = defaultdict(list)  # lines written into a later hour's file
    for i, hour in enumerate(hours):
        rng = random.Random(f"{seed}:defects:{hour:%Y-%m-%dT%H}")
        lines = spill.pop(hour, [])
        for org in ORGS:
            for event in events_for_hour(seed, org, hour, events_per_day, bursts, anomalies):
                roll = rng.random()
                if roll < defects.malformed + defects.out_of_range:
                    lines.append(_break(rng, event, manifest))
                    continue
                line = json.dumps(event)
                manifest.events += 1
                target = hour
                if roll < defects.malformed + defects.out_of_range + defects.late:
                    target = min(last, hour + timedelta(hours=rng.randint(1, 3)))
                    manifest.planted["late"] += target != hour
                (lines if target == hour else spill[target]).append(line)
                if rng.random() < defects.duplicate:
                    manifest.planted["duplicate"] += 1
                    (lines if rng.random() < 0.5 or hour == last else spill[hour + timedelta(hours=1)]).append(line)
        path = landing_path(landing_dir, hour)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = ("\n".join(lines) + "\n").encode() if lines else b""
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
            out.write(payload)  # mtime=0: the same events give the same bytes and checksum
        manifest.lines += len(lines)
        manifest.files += 1
        if progress and (i + 1) % 24 == 0:
            progress(f"generated {hour:%Y-%m-%d}: {manifest.lines:,} lines so far")
    (landing_dir / "_manifest.json").write_text(manifest.to_json())
    return manifest


def default_start(days: int, now: datetime | None = None) -> datetime:
    """`days` whole days ending at the last complete hour."""
    now = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(days=days)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="warehouse generate", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/landing"), help="landing zone (data/landing)")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--events-per-day", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", help="first UTC hour, ISO 8601 (default: DAYS days before the last full hour)")
    parser.add_argument("--defect-scale", type=float, default=1.0, help="multiply every defect share")
    parser.add_argument("--no-error-bursts", action="store_true", help="leave out the natural error bursts")
    parser.add_argument("--plant", action="append", default=[], metavar="KIND:ORG:MODEL:HOUR[:FACTOR]",
                        help=f"plant an anomaly ({', '.join(ANOMALY_KINDS)}); repeatable")
    args = parser.parse_args(argv)
    try:
        anomalies = tuple(Anomaly.parse(text) for text in args.plant)
    except ValueError as error:
        parser.error(str(error))
    if args.days <= 0 or args.events_per_day < 0:
        parser.error("--days must be positive and --events-per-day not negative")
    try:
        start = datetime.fromisoformat(args.start) if args.start else default_start(args.days)
    except ValueError:
        parser.error(f"--start {args.start!r} is not an ISO 8601 time, e.g. 2026-11-01T00:00:00+00:00")
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    try:
        manifest = generate(args.out, start, args.days, args.events_per_day, args.seed,
                            Defects().scaled(args.defect_scale), progress=lambda m: print(m, file=sys.stderr),
                            bursts=not args.no_error_bursts, anomalies=anomalies)
    except ValueError as error:
        parser.error(str(error))
    print(manifest.to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
