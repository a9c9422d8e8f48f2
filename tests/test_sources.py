"""Logs in other shapes: CSV, Parquet and source specs, through the real loader."""

import csv
import gzip
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingestion.contract import FIELD_NAMES
from ingestion.landing import load_hour
from ingestion.sources import SourceSpecError, load_specs, parse_spec
from orchestration.database import connect
from orchestration.settings import PROJECT_ROOT
from tests.conftest import query

HOUR = datetime(2026, 3, 7, 12, tzinfo=UTC)
LITELLM_COLUMNS = ["request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens",
                   "completion_tokens", "startTime", "endTime", "completionStartTime", "model", "model_group",
                   "custom_llm_provider", "api_base", "user", "metadata", "cache_hit", "cache_key",
                   "request_tags", "team_id", "end_user", "session_id", "status"]


def folder(root):
    path = root / "dt=2026-03-07" / "hour=12"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_csv(path, header, rows, compress=False) -> None:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    data = text.getvalue().encode()
    path.write_bytes(gzip.compress(data) if compress else data)


def load(dsn, root, specs=()):
    conn = connect(dsn)
    try:
        return {b.file.split("/")[-1]: b for b in load_hour(conn, root, HOUR, list(specs))}
    finally:
        conn.close()


def litellm_row(i: int, **changes) -> list:
    start = datetime(2026, 3, 7, 12, 0, 0) + timedelta(minutes=i, milliseconds=250)
    row = {"request_id": f"chatcmpl-{i}", "call_type": "acompletion", "api_key": "88dc28d0f030c55ed4ab77ed8faf",
           "spend": f"{0.0012 * (i + 1):.6f}", "total_tokens": str(300 + i), "prompt_tokens": "200",
           "completion_tokens": str(100 + i), "startTime": f"{start:%Y-%m-%d %H:%M:%S.%f}",
           "endTime": f"{start + timedelta(seconds=1.5):%Y-%m-%d %H:%M:%S.%f}",
           "completionStartTime": f"{start + timedelta(seconds=0.4):%Y-%m-%d %H:%M:%S.%f}",
           "model": "gpt-4o-mini", "model_group": "gpt-4o-mini", "custom_llm_provider": "openai",
           "api_base": "https://api.openai.com", "user": "", "metadata": json.dumps({"tags": ["search"]}),
           "cache_hit": "False", "cache_key": "", "request_tags": "[]", "team_id": "team-search",
           "end_user": f"user-{i % 3}", "session_id": f"s-{i // 2}", "status": "success"}
    row.update(changes)
    return [row[c] for c in LITELLM_COLUMNS]


def litellm_spec():
    return next(s for s in load_specs(PROJECT_ROOT / "sources") if s.name == "litellm_spend_logs")


# --- specs on their own (no database) ---

def test_the_shipped_example_spec_parses():
    assert litellm_spec().files == "litellm-*.csv*"


@pytest.mark.parametrize(("data", "message"), [
    ({"name": "x", "format": "csv", "files": "*", "columns": {"tokens_in": "a"}}, "'tokens_in' is not a field"),
    ({"name": "x", "format": "xlsx", "files": "*"}, "format 'xlsx' is not one of jsonl, csv, parquet"),
    ({"name": "x", "format": "csv", "files": "*", "timezone": "Mars/Olympus"}, "timezone 'Mars/Olympus'"),
    ({"name": "x", "format": "csv", "files": "*", "columns": {"latency_ms": {"column": "d", "unit": "h"}}},
     "unit 'h' is not one of s, ms, us"),
    ({"name": "x", "format": "csv", "files": "*", "columns": {"model": {"column": "m", "unit": "s"}}},
     "'unit' applies to durations"),
    ({"name": "x", "format": "csv", "files": "*", "colums": {}}, "unknown key colums"),
    ({"format": "csv", "files": "*"}, "'name' is required"),
    ({"name": "x", "format": "csv", "files": "*", "columns": {"event_time": {"column": "t", "format": "unix"}}},
     "timestamp format 'unix' is not iso, epoch_s, epoch_ms"),
    ({"name": "x", "format": "csv", "files": "*", "columns": {"event_time": {"column": "t", "format": "relative_s"}}},
     "format relative_s counts from a 'base:' time; give one"),
    ({"name": "x", "format": "csv", "files": "*", "columns": {"event_time": {"column": "t", "base": "2026-01-01"}}},
     "base '2026-01-01' must be a time with its zone"),
    ({"name": "x", "format": "csv", "files": "*", "columns": {"event_time": {"column": "t", "offset": "3 weeks"}}},
     "offset '3 weeks' is not a duration like -334d"),
    ({"name": "x", "format": "csv", "files": "*", "columns": {"model": {"column": "m", "offset": "1d"}}},
     "'base' and 'offset' apply to timestamps"),
])
def test_a_broken_spec_is_refused_with_the_key_that_is_wrong(data, message):
    with pytest.raises(SourceSpecError, match=message):
        parse_spec(data)


def test_a_spec_that_is_not_yaml_names_its_file(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(SourceSpecError, match=r"bad.yaml: not valid YAML"):
        load_specs(tmp_path)


def test_units_epochs_zones_totals_recodes_and_defaults():
    spec = parse_spec({
        "name": "gateway", "format": "csv", "files": "gw-*", "timezone": "Europe/Berlin",
        "columns": {"event_time": {"column": "ts", "format": "epoch_ms"},
                    "received_at": {"column": "recv", "format": "%d/%m/%Y %H:%M"},
                    "latency_ms": {"column": "secs", "unit": "s"},
                    "output_tokens": {"column": "total", "minus": "prompt"}, "input_tokens": "prompt",
                    "status": {"column": "ok", "values": {"true": "success", "false": "error"}}},
        "defaults": {"provider": "anthropic", "org_id": "acme"}, "drop": ["secret"]})
    record = spec.to_record({"ts": "1772884800000", "recv": "07/03/2026 13:00", "secs": "1.25", "total": "350",
                             "prompt": "300", "ok": "false", "model": "claude-sonnet-4", "org_id": "",
                             "region": "eu", "secret": "sk-123"})
    assert record["event_time"] == datetime(2026, 3, 7, 12, tzinfo=UTC)
    assert record["received_at"] == datetime(2026, 3, 7, 13, tzinfo=ZoneInfo("Europe/Berlin"))  # naive: spec zone
    assert record["latency_ms"] == 1250.0 and record["output_tokens"] == 50 and record["input_tokens"] == 300
    assert record["status"] == "error" and record["provider"] == "anthropic" and record["org_id"] == "acme"
    assert record["model"] == "claude-sonnet-4"  # a column named like a contract field maps by itself
    assert record["metadata"] == {"region": "eu"}  # unused columns kept, dropped ones not

    naive = parse_spec({"name": "n", "format": "csv", "files": "*", "columns": {
        "event_time": {"column": "t", "format": "epoch_s"}, "ttft_ms": {"column": "first", "since": "start"}}})
    odd = naive.to_record({"t": "1e300", "first": "2026-03-07 12:00:01.5", "start": "2026-03-07 12:00:00"})
    assert odd["event_time"] == "1e300"  # beyond the calendar: left for the contract check to quarantine
    assert odd["ttft_ms"] == 1500.0  # two naive readings of one clock still give a duration


def test_relative_and_undated_times_count_from_a_base_and_an_offset_moves_a_trace():
    """A trace that gives seconds since its start (or times of day only) lands on dates the warehouse can
    hold; a dated trace from 2023 moves forward by a fixed offset, its spacing kept."""
    relative = parse_spec({"name": "trace", "format": "csv", "files": "*", "columns": {
        "event_time": {"column": "t", "base": "2026-05-01T00:00:00Z"},
        "latency_ms": {"column": "end", "since": "t", "format": "relative_s"}}})
    record = relative.to_record({"t": "3600.5", "end": "3601.75"})
    assert record["event_time"] == datetime(2026, 5, 1, 1, 0, 0, 500000, tzinfo=UTC)
    assert record["latency_ms"] == 1250.0
    assert relative.to_record({"t": "soon", "end": "1"})["event_time"] == "soon"  # not a number: quarantined

    undated = parse_spec({"name": "u", "format": "csv", "files": "*", "columns": {
        "event_time": {"column": "t", "format": "%H:%M:%S", "base": "2026-05-01T00:00:00+02:00"}}})
    assert undated.to_record({"t": "14:03:22"})["event_time"] == datetime(2026, 5, 1, 12, 3, 22, tzinfo=UTC)

    moved = parse_spec({"name": "m", "format": "csv", "files": "*", "columns": {
        "event_time": {"column": "TIMESTAMP", "format": "%Y-%m-%d %H:%M:%S.%f", "offset": "+1000d"}},
        "timezone": "UTC"})
    a = moved.to_record({"TIMESTAMP": "2023-11-16 18:15:46.680590"})["event_time"]
    b = moved.to_record({"TIMESTAMP": "2023-11-16 18:15:47.180590"})["event_time"]
    assert a == datetime(2023, 11, 16, 18, 15, 46, 680590, tzinfo=UTC) + timedelta(days=1000)
    assert b - a == timedelta(milliseconds=500)


# --- through the loader ---



@pytest.mark.db
def test_litellm_spend_logs_load_end_to_end(warehouse, tmp_path):
    rows = [litellm_row(i) for i in range(6)]
    rows.append(litellm_row(6, team_id="", status="failure", completion_tokens="0", total_tokens="200"))
    rows.append(litellm_row(7, total_tokens="lots"))  # not a number: quarantined, not guessed
    write_csv(folder(tmp_path) / "litellm-0001.csv.gz", LITELLM_COLUMNS, rows, compress=True)

    batch = load(warehouse, tmp_path, [litellm_spec()])["litellm-0001.csv.gz"]
    assert (batch.status, batch.read, batch.loaded, batch.quarantined) == ("loaded", 8, 7, 1)
    assert query(warehouse, "select source from raw.ingestion_batches") == [("litellm_spend_logs",)]
    got = {r[0]: r[1:] for r in query(warehouse, """
        select event_id, event_time, org_id, user_id, session_id, operation, provider, model, input_tokens,
               output_tokens, provider_cost_usd, latency_ms, ttft_ms, status, metadata
        from raw.usage_events""")}
    for i in range(7):  # expected values computed from the rows as a LiteLLM user reads them
        raw = dict(zip(LITELLM_COLUMNS, rows[i], strict=True))
        start = datetime.fromisoformat(raw["startTime"]).replace(tzinfo=UTC)
        assert got[raw["request_id"]] == (
            start, raw["team_id"] or "default-team", raw["end_user"], raw["session_id"], "acompletion", "openai",
            "gpt-4o-mini", 200, int(raw["total_tokens"]) - 200, float(raw["spend"]), 1500.0, 400.0,
            "error" if raw["status"] == "failure" else "success",
            {"tags": ["search"], "api_base": "https://api.openai.com", "cache_hit": "False",
             "completion_tokens": raw["completion_tokens"], "model_group": "gpt-4o-mini", "request_tags": "[]"})
    assert query(warehouse, "select line_number, reasons from raw.quarantine") == [(9, ["output_tokens:not_a_number"])]


@pytest.mark.db
def test_a_spec_column_missing_from_the_file_refuses_the_file_before_loading(warehouse, tmp_path):
    header = [c for c in LITELLM_COLUMNS if c != "startTime"]
    write_csv(folder(tmp_path) / "litellm-0002.csv", header, [litellm_row(1)[:7] + litellm_row(1)[8:]])
    (folder(tmp_path) / "good.jsonl").write_text(json.dumps({
        "event_id": "e1", "event_time": "2026-03-07T12:01:00Z", "org_id": "o", "provider": "openai",
        "model": "gpt-4o", "status": "success"}) + "\n")

    batches = load(warehouse, tmp_path, [litellm_spec()])
    refused = batches["litellm-0002.csv"]
    assert refused.status == "failed"
    assert "column 'startTime' is not in dt=2026-03-07/hour=12/litellm-0002.csv" in refused.error
    assert "fix the spec's columns or the export" in refused.error
    assert batches["good.jsonl"].loaded == 1  # the other file of the hour still loads
    assert query(warehouse, "select count(*) from raw.usage_events where batch_id = %s", (refused.batch_id,)) \
        == [(0,)]


@pytest.mark.db
def test_header_only_csv_is_an_empty_batch(warehouse, tmp_path):
    write_csv(folder(tmp_path) / "empty.csv", FIELD_NAMES, [])
    batch = load(warehouse, tmp_path)["empty.csv"]
    assert (batch.status, batch.read, batch.loaded, batch.quarantined) == ("loaded", 0, 0, 0)


@pytest.mark.db
def test_contract_shaped_csv_and_parquet_load_like_json_lines(warehouse, tmp_path):
    events = [{"event_id": f"{fmt}-{i}", "event_time": HOUR + timedelta(minutes=i), "org_id": "org_a",
               "provider": "anthropic", "model": "claude-haiku", "status": "success", "input_tokens": 10 * i,
               "latency_ms": 100.5 + i, "metadata": {"tab\there": "new\nline"}, "team": "ml"}
              for fmt in ("csv", "parquet") for i in range(3)]
    csv_rows = [[e["event_id"], e["event_time"].isoformat(), e["org_id"], e["provider"], e["model"], e["status"],
                 e["input_tokens"], e["latency_ms"], json.dumps(e["metadata"]), e["team"]] for e in events[:3]]
    header = ["event_id", "event_time", "org_id", "provider", "model", "status", "input_tokens", "latency_ms",
              "metadata", "team"]
    csv_rows.append(["csv-bad", "2026-03-07T12:09:00Z", "org_a", "openai", "gpt-4o"])  # too few fields
    write_csv(folder(tmp_path) / "export.csv", header, csv_rows)
    table = pa.table({"event_id": [e["event_id"] for e in events[3:]],
                      "event_time": pa.array([e["event_time"] for e in events[3:]], pa.timestamp("us", tz="UTC")),
                      **{k: [e[k] for e in events[3:]] for k in ("org_id", "provider", "model", "status",
                                                                   "input_tokens", "latency_ms", "team")},
                      "metadata": [json.dumps(e["metadata"]) for e in events[3:]],
                      "provider_cost_usd": pa.array([Decimal("0.0125")] * 3, pa.decimal128(10, 4))})
    pq.write_table(table, folder(tmp_path) / "export.parquet", compression="gzip")
    (folder(tmp_path) / "notes.txt").write_text("not data")

    batches = load(warehouse, tmp_path)
    assert (batches["export.csv"].loaded, batches["export.csv"].quarantined) == (3, 1)
    assert batches["export.parquet"].loaded == 3
    assert query(warehouse, "select distinct provider_cost_usd from raw.usage_events"
                            " where event_id like 'parquet-%%'") == [(0.0125,)]  # a Parquet decimal is a number
    assert batches["notes.txt"].status == "failed" and "no source reads this file" in batches["notes.txt"].error
    assert query(warehouse, "select line_number, reasons from raw.quarantine") == [(5, ["csv:5_fields_for_10_columns"])]
    got = query(warehouse, "select event_id, event_time, input_tokens, latency_ms, metadata from raw.usage_events"
                           " order by event_id")
    assert got == [(e["event_id"], e["event_time"], e["input_tokens"], e["latency_ms"],
                    {**e["metadata"], "team": "ml"}) for e in sorted(events, key=lambda e: e["event_id"])]

    again = load(warehouse, tmp_path)
    assert again["export.csv"].status == again["export.parquet"].status == "skipped"


@pytest.mark.db
def test_nul_in_a_csv_value_is_quarantined_not_sent_to_the_server(warehouse, tmp_path):
    header = ["event_id", "event_time", "org_id", "provider", "model", "status", "metadata"]
    good = ["ok", "2026-03-07T12:00:00Z", "o", "openai", "gpt-4o", "success", ""]
    write_csv(folder(tmp_path) / "nul.csv", header, [
        good, ["a", *good[1:6], '{"note": "x\\u0000y"}'], ["b", *good[1:3], "open\x00ai", *good[4:]]])
    batch = load(warehouse, tmp_path)["nul.csv"]
    assert (batch.status, batch.loaded, batch.quarantined) == ("loaded", 1, 2)
    assert query(warehouse, "select line_number, reasons from raw.quarantine order by 1") == [
        (3, ["nul_character"]), (4, ["nul_character"])]
    assert query(warehouse, "select finished_at >= started_at from raw.ingestion_batches") == [(True,)]


@pytest.mark.db
def test_a_broken_spec_stops_the_run_before_any_file_is_read(warehouse, tmp_path, monkeypatch):
    from tests.conftest import run_hours

    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "gateway.yaml").write_text("name: gateway\nformat: csv\nfiles: 'gw-*.csv'\ncolumns: {tokens: n}\n")
    monkeypatch.setenv("WAREHOUSE_SOURCES_DIR", str(specs))
    (folder(tmp_path / "landing") / "a.jsonl").write_text(json.dumps({
        "event_id": "e1", "event_time": "2026-03-07T12:01:00Z", "org_id": "o", "provider": "openai",
        "model": "gpt-4o", "status": "success"}) + "\n")

    result = run_hours(HOUR, HOUR)

    assert not result.success
    [failure] = result.get_step_failure_events()
    assert failure.step_key == "raw__usage_events"
    description = failure.step_failure_data.user_failure_data.description
    assert "gateway.yaml: 'tokens' is not a field of the event contract" in description
    assert "fix the spec in WAREHOUSE_SOURCES_DIR and rerun" in description
    assert query(warehouse, "select to_regclass('raw.usage_events')") == [(None,)]  # nothing was loaded


@pytest.mark.db
def test_json_lines_in_another_shape_with_epoch_seconds(warehouse, tmp_path):
    spec = parse_spec({"name": "agent_logs", "format": "jsonl", "files": "agent-*.jsonl.gz",
                       "columns": {"event_id": "id", "event_time": {"column": "ts", "format": "epoch_s"},
                                   "org_id": "tenant", "model": "llm", "input_tokens": "in", "output_tokens": "out",
                                   "latency_ms": {"column": "secs", "unit": "s"}},
                       "defaults": {"provider": "anthropic", "status": "success"}})
    rows = [{"id": f"a{i}", "ts": 1772884860 + i, "tenant": "acme", "llm": "claude-haiku", "in": 10 * i, "out": i,
             "secs": 0.25 * i, "agent": "triage"} for i in range(4)]
    rows.append({"id": "a9", "ts": "yesterday", "tenant": "acme", "llm": "claude-haiku"})  # not an epoch
    (folder(tmp_path) / "agent-1.jsonl.gz").write_bytes(gzip.compress(
        "".join(json.dumps(r) + "\n" for r in rows).encode()))
    batch = load(warehouse, tmp_path, [spec])["agent-1.jsonl.gz"]
    assert (batch.loaded, batch.quarantined) == (4, 1)
    assert query(warehouse, "select event_id, event_time, provider, input_tokens, latency_ms, metadata"
                            " from raw.usage_events order by 1") == [
        (f"a{i}", datetime.fromtimestamp(1772884860 + i, UTC), "anthropic", 10 * i, 250.0 * i, {"agent": "triage"})
        for i in range(4)]
    assert query(warehouse, "select reasons from raw.quarantine") == [(["event_time:not_a_timestamp"],)]


def test_warehouse_sources_lists_specs_and_tries_one_on_a_file(tmp_path, capsys):
    from orchestration.cli import main

    assert main(["sources"]) == 0
    assert "litellm_spend_logs       csv      files litellm-*.csv*" in capsys.readouterr().out

    export = tmp_path / "litellm-2026-03-07.csv"
    write_csv(export, LITELLM_COLUMNS, [litellm_row(0), litellm_row(1, total_tokens="lots")])
    assert main(["sources", "--try", str(export)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "litellm-2026-03-07.csv: read by source 'litellm_spend_logs' (csv)"
    assert out[1].startswith("line 2  ok  event_id=chatcmpl-0  event_time=2026-03-07T12:00:00.250000+00:00")
    assert "output_tokens=100" in out[1] and "latency_ms=1500.0" in out[1]
    assert out[2] == "line 3  quarantined  output_tokens:not_a_number"
    assert out[3].startswith("2 rows: 1 would load, 1 quarantined (output_tokens:not_a_number x1)")

    write_csv(export, [c for c in LITELLM_COLUMNS if c != "request_id"], [])
    assert main(["sources", "--try", str(export)]) == 2
    assert "column 'request_id' is not in litellm-2026-03-07.csv" in capsys.readouterr().err


def test_warehouse_sources_names_a_broken_spec(tmp_path, monkeypatch, capsys):
    from orchestration.cli import main

    (tmp_path / "gateway.yaml").write_text(
        "name: gateway\nformat: csv\nfiles: 'gw-*'\ncolumns: {latency_ms: {column: d, unit: h}}\n")
    monkeypatch.setenv("WAREHOUSE_SOURCES_DIR", str(tmp_path))
    assert main(["sources"]) == 2
    assert "gateway.yaml, columns.latency_ms: unit 'h' is not one of s, ms, us" in capsys.readouterr().err
