"""The event contract on single lines: what is kept, what is quarantined and why (no database)."""

import json
from datetime import UTC, datetime, timedelta

from ingestion.validation import Rejected, ValidEvent, derived_event_id, validate

LANDING = datetime(2026, 3, 7, 12, tzinfo=UTC)
GOOD = {
    "event_id": "e1", "event_time": "2026-03-07T12:10:00Z", "org_id": "org_a", "provider": "openai",
    "model": "gpt-4o", "status": "success", "input_tokens": 10, "output_tokens": 5, "latency_ms": 800.0,
    "metadata": {"variant": "control"},
}


def check(record=None, raw: bytes | None = None):
    return validate(raw if raw is not None else json.dumps(record).encode(), LANDING)


def reasons(record=None, raw=None) -> tuple[str, ...]:
    outcome = check(record, raw)
    assert isinstance(outcome, Rejected), outcome
    return outcome.reasons


def test_a_good_event_keeps_its_values():
    outcome = check(GOOD)
    assert isinstance(outcome, ValidEvent)
    assert outcome.values["event_time"] == datetime(2026, 3, 7, 12, 10, tzinfo=UTC)
    assert outcome.values["input_tokens"] == 10 and outcome.values["cached_input_tokens"] is None


def test_truncated_json_is_malformed():
    assert reasons(raw=json.dumps(GOOD)[:-7].encode()) == ("malformed_json",)


def test_non_utf8_bytes():
    assert reasons(raw=b'{"event_id": "\xff\xfe"}') == ("not_utf8",)


def test_negative_tokens_and_wrong_types_name_the_field():
    assert reasons({**GOOD, "output_tokens": -3}) == ("output_tokens:out_of_range",)
    assert reasons({**GOOD, "input_tokens": "ten"}) == ("input_tokens:not_a_number",)
    assert reasons({**GOOD, "input_tokens": 1.5}) == ("input_tokens:not_an_integer",)
    assert reasons({**GOOD, "latency_ms": True}) == ("latency_ms:not_a_number",)


def test_missing_required_fields_are_all_listed():
    record = {k: v for k, v in GOOD.items() if k not in ("org_id", "model")}
    assert reasons(record) == ("org_id:missing", "model:missing")


def test_timestamps_need_a_zone_and_a_plausible_time():
    assert reasons({**GOOD, "event_time": "2026-03-07T12:10:00"}) == ("event_time:timestamp_without_zone",)
    assert reasons({**GOOD, "event_time": "yesterday"}) == ("event_time:not_a_timestamp",)
    future = (LANDING + timedelta(days=2)).isoformat()
    assert reasons({**GOOD, "event_time": future}) == ("event_time:in_the_future",)
    ancient = (LANDING - timedelta(days=400)).isoformat()
    assert reasons({**GOOD, "event_time": ancient}) == ("event_time:too_late",)


def test_nul_characters_are_refused_because_postgres_text_cannot_hold_them():
    assert reasons({**GOOD, "user_id": "a\u0000b"}) == ("nul_character",)


def test_unknown_fields_are_kept_in_metadata():
    outcome = check({**GOOD, "team": "search", "region": "eu"})
    assert outcome.values["metadata"] == {"team": "search", "region": "eu", "variant": "control"}


def test_an_event_without_id_gets_the_same_derived_id_every_time():
    record = {k: v for k, v in GOOD.items() if k != "event_id"}
    first, second = check(record), check(dict(reversed(list(record.items()))))
    assert first.values["event_id"] == second.values["event_id"] == derived_event_id(record)
    assert check({**record, "output_tokens": 6}).values["event_id"] != first.values["event_id"]


def test_nan_and_infinity_are_not_json():
    assert reasons(raw=b'{"event_id": "e", "latency_ms": NaN}') == ("malformed_json",)


def test_the_fast_path_agrees_with_the_detailed_check_line_for_line(tmp_path):
    """The msgspec fast path may only accept what the detailed check accepts, with equal values."""
    import gzip

    from ingestion.copy_format import event_line, fast_event_line
    from ingestion.validation import event_time_window, fast_row, validate_slowly
    from samples.synthetic import Defects, generate

    generate(tmp_path, LANDING, 1, 4000, seed=11, defects=Defects().scaled(6))
    lines = [line.rstrip(b"\n") for path in sorted(tmp_path.glob("dt=*/hour=*/*.jsonl.gz"))
             for line in gzip.open(path, "rb") if line.strip()]
    edge = [{**GOOD, "event_time": t} for t in ("2026-03-07T12:10:00z", "2026-03-07T12:10:00.1234567Z",
                                                "2026-03-07T12:10Z", "2026-03-07 12:10:00+01:00", "20260307T121000Z")]
    edge += [{**GOOD, "input_tokens": 5.0}, {**GOOD, "latency_ms": 7}, {**GOOD, "event_id": 42},
             {**GOOD, "model": ""}, {**GOOD, "metadata": None}, {**GOOD, "http_status": True},
             {**GOOD, "event_id": "tab\there"}, {**GOOD, "credits": 1e300}, {**GOOD, "team": "unknown field"},
             {**GOOD, "input_tokens": 10, "cached_input_tokens": 6, "cache_write_tokens": 5},
             {**GOOD, "input_tokens": 10, "cached_input_tokens": 6, "cache_write_tokens": 4},
             {**GOOD, "output_tokens": 3, "reasoning_tokens": 4},
             {**GOOD, "output_tokens": None, "reasoning_tokens": 1}]
    lines += [json.dumps(record).encode() for record in edge]
    hours = [LANDING + timedelta(hours=h) for h in range(24)]
    paths = {"fast": 0, "detailed": 0}
    for raw in lines:
        for hour in hours[::6]:
            assert validate(raw, hour) == validate_slowly(raw, hour), raw
            row = fast_row(raw, *event_time_window(hour))
            paths["fast" if row else "detailed"] += 1
            if row:  # the loader renders such a row in one step: the same line as the detailed check's
                assert fast_event_line(row, b"|tail\n") == event_line(validate_slowly(raw, hour).row, b"|tail\n",
                                                                        plain=True), raw
    assert paths["fast"] > 3000 and paths["detailed"] > 100, paths  # both paths were really compared


def test_status_is_folded_to_lower_case_and_other_values_are_refused():
    for given in ("ERROR", "Error", " success "):
        outcome = check({**GOOD, "status": given})
        assert isinstance(outcome, ValidEvent) and outcome.values["status"] == given.strip().lower()
    assert reasons({**GOOD, "status": "weird"}) == ("status:not_allowed",)


def test_ids_and_names_longer_than_the_contract_allows_are_refused():
    assert isinstance(check({**GOOD, "org_id": "o" * 256}), ValidEvent)
    assert reasons({**GOOD, "event_id": "e" * 3000}) == ("event_id:too_long",)
    assert reasons({**GOOD, "org_id": "o" * 257, "model": "m" * 300}) == ("org_id:too_long", "model:too_long")


def test_ranges_are_the_ones_the_gates_use():
    assert isinstance(check({**GOOD, "latency_ms": 700_000, "ttft_ms": 700_000}), ValidEvent)  # 11.7 minutes
    assert reasons({**GOOD, "latency_ms": 3_600_001}) == ("latency_ms:out_of_range",)
    assert isinstance(check({**GOOD, "output_tokens": 1_000_000}), ValidEvent)
    assert reasons({**GOOD, "output_tokens": 2_000_000}) == ("output_tokens:out_of_range",)


def test_the_first_token_cannot_come_after_the_end():
    assert reasons({**GOOD, "latency_ms": 800, "ttft_ms": 900}) == ("ttft_ms:exceeds_latency",)
    assert reasons({**GOOD, "latency_ms": -1, "ttft_ms": 900}) == ("latency_ms:out_of_range",)  # one reason


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_metadata_nested_past_the_limit_is_too_deep_not_malformed():
    assert isinstance(check({**GOOD, "metadata": nested(32)}), ValidEvent)
    assert reasons({**GOOD, "metadata": nested(33)}) == ("metadata:too_deep",)
    line = json.dumps({**GOOD, "metadata": "M"}).encode()
    past_the_stack = line.replace(b'"M"', b'{"a": ' * 1000 + b"1" + b"}" * 1000)  # deeper than Python recurses
    assert reasons(raw=past_the_stack) == ("metadata:too_deep",)
    assert reasons({**GOOD, "extra": [[[[nested(40)]]]]}) == ("metadata:too_deep",)  # unknown fields go there
    deepest = line.replace(b'"M"', b'{"a": ' * 5000 + b"1" + b"}" * 5000)
    assert reasons(raw=deepest) == ("json_too_deep",)  # valid JSON, deeper than the parser goes
