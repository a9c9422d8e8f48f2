"""A corpus of bad inputs through the real loader: where every row went, and why."""

import gzip
import json
from datetime import UTC, datetime

import pytest

from ingestion.landing import load_hour
from orchestration.database import connect
from tests.conftest import query

pytestmark = pytest.mark.db

HOUR = datetime(2026, 3, 7, 12, tzinfo=UTC)
GOOD = {"event_id": "good-1", "event_time": "2026-03-07T12:01:00Z", "org_id": "org_a", "provider": "openai",
        "model": "gpt-4o", "status": "success", "input_tokens": 100, "output_tokens": 20, "latency_ms": 900.5}


def land(root, name: str, lines: list[bytes], compress: bool = False) -> None:
    folder = root / "dt=2026-03-07" / "hour=12"
    folder.mkdir(parents=True, exist_ok=True)
    payload = b"".join(line + b"\n" for line in lines)
    (folder / name).write_bytes(gzip.compress(payload) if compress else payload)


def line(**changes) -> bytes:
    record = {**GOOD, **changes}
    return json.dumps({k: v for k, v in record.items() if v is not ...}).encode()


def load(dsn, root):
    conn = connect(dsn)
    try:
        return {b.file: b for b in load_hour(conn, root, HOUR)}
    finally:
        conn.close()


def quarantined(dsn) -> dict[int, list[str]]:
    return {n: r for n, r in query(dsn, "select line_number, reasons from raw.quarantine")}


def test_every_bad_line_is_quarantined_with_its_reason(warehouse, tmp_path):
    lines = [
        line(),                                                         # 1 loaded
        line(event_id="trunc")[:-9],                                    # 2 truncated JSON
        line(event_id="types", input_tokens="12", status=["ok"]),       # 3 wrong types
        line(event_id="neg", output_tokens=-4),                         # 4 negative tokens
        line(event_id="future", event_time="2030-01-01T00:00:00Z"),     # 5 far future
        line(event_id="past", event_time="2001-01-01T00:00:00Z"),       # 6 far past
        b'{"event_id": "bytes", "org_id": "\xc3\x28"}',                  # 7 not UTF-8
        line(event_id="missing", org_id=..., model=...),                # 8 missing required fields
        line(event_id="naive", event_time="2026-03-07 12:05:00"),       # 9 no time zone
        b"[1, 2, 3]",                                                   # 10 not an object
        line(event_id="extra", team="search", cost_center=42),          # 11 unknown fields: loaded
        line(event_id="cache", input_tokens=100, cached_input_tokens=80, cache_write_tokens=30),  # 12 parts > whole
        line(event_id="think", output_tokens=10, reasoning_tokens=11),  # 13 reasoning above output
    ]
    land(tmp_path, "corpus.jsonl", lines)
    batch = load(warehouse, tmp_path)["dt=2026-03-07/hour=12/corpus.jsonl"]

    assert (batch.read, batch.loaded, batch.duplicate, batch.quarantined) == (13, 2, 0, 11)
    assert quarantined(warehouse) == {
        2: ["malformed_json"],
        3: ["input_tokens:not_a_number", "status:not_text"],
        4: ["output_tokens:out_of_range"],
        5: ["event_time:in_the_future"],
        6: ["event_time:too_late"],
        7: ["not_utf8"],
        8: ["org_id:missing", "model:missing"],
        9: ["event_time:timestamp_without_zone"],
        10: ["not_an_object"],
        12: ["tokens:cache_exceeds_input"],
        13: ["tokens:reasoning_exceeds_output"],
    }
    raw_text = query(warehouse, "select raw_text from raw.quarantine where line_number = 7")[0][0]
    assert raw_text == '{"event_id": "bytes", "org_id": "\\xc3("}'  # the bad byte shown, not lost
    assert query(warehouse, "select metadata from raw.usage_events where event_id = 'extra'") == [
        ({"team": "search", "cost_center": 42},)]


def test_duplicates_inside_a_file_and_across_files_leave_one_row(warehouse, tmp_path):
    land(tmp_path, "a.jsonl", [line(), line(), line(event_id="x", output_tokens=1)])
    land(tmp_path, "b.jsonl", [line(), line(event_id="x", output_tokens=999)])  # same id, other content
    batches = load(warehouse, tmp_path)
    a, b = batches["dt=2026-03-07/hour=12/a.jsonl"], batches["dt=2026-03-07/hour=12/b.jsonl"]
    assert (a.read, a.loaded, a.duplicate, a.conflicting) == (3, 2, 1, 0)
    assert (b.read, b.loaded, b.duplicate, b.conflicting) == (2, 0, 2, 1)
    assert query(warehouse, "select event_id, output_tokens from raw.usage_events order by 1") == [
        ("good-1", 20), ("x", 1)]  # first occurrence wins


def test_reloading_is_a_no_op_and_a_changed_file_replaces_its_earlier_rows(warehouse, tmp_path):
    land(tmp_path, "a.jsonl", [line()])
    assert load(warehouse, tmp_path)["dt=2026-03-07/hour=12/a.jsonl"].loaded == 1
    assert load(warehouse, tmp_path)["dt=2026-03-07/hour=12/a.jsonl"].status == "skipped"
    land(tmp_path, "a.jsonl", [line(), line(event_id="new")])
    again = load(warehouse, tmp_path)["dt=2026-03-07/hour=12/a.jsonl"]
    assert (again.status, again.read, again.loaded, again.duplicate) == ("loaded", 2, 2, 0)
    assert query(warehouse, "select count(*) from raw.usage_events") == [(2,)]
    assert query(warehouse, "select status, superseded_by from raw.ingestion_batches order by batch_id") == [
        ("superseded", again.batch_id), ("loaded", None)]


@pytest.mark.parametrize("name, compress", [("a.jsonl", False), ("a.jsonl.gz", True), ("a.csv.gz", True)])
def test_a_new_file_is_read_once_and_the_ledger_keeps_its_checksum(warehouse, tmp_path, monkeypatch, name, compress):
    """Rows and checksum come from one read; a rerun reads the file once more, for its checksum only."""
    import hashlib

    from ingestion import readers

    if name.startswith("a.csv"):
        folder = tmp_path / "dt=2026-03-07" / "hour=12"
        folder.mkdir(parents=True)
        rows = "event_id,event_time,org_id,provider,model,status,input_tokens,output_tokens\n" + "".join(
            f"e{i},2026-03-07T12:01:00Z,org_a,openai,gpt-4o,success,10,2\n" for i in range(3000))
        (folder / name).write_bytes(gzip.compress(rows.encode()))
    else:
        land(tmp_path, name, [line(event_id=f"e{i}") for i in range(3000)], compress=compress)
    opened = []
    real_open = readers._open_regular
    monkeypatch.setattr(readers, "_open_regular", lambda path: opened.append(path.name) or real_open(path))
    first = load(warehouse, tmp_path)[f"dt=2026-03-07/hour=12/{name}"]
    assert (first.status, first.loaded, opened) == ("loaded", 3000, [name])
    content = (tmp_path / "dt=2026-03-07" / "hour=12" / name).read_bytes()
    assert query(warehouse, "select checksum from raw.ingestion_batches") == [(hashlib.sha256(content).hexdigest(),)]
    assert load(warehouse, tmp_path)[f"dt=2026-03-07/hour=12/{name}"].status == "skipped"
    assert opened == [name, name]


def test_a_corrected_file_replaces_its_rows_and_its_bad_lines_are_not_quarantined_twice(warehouse, tmp_path):
    first = [line(event_id="a", output_tokens=10), line(event_id="b", output_tokens=20), b"{oops",
             line(event_id="wrong", latency_ms=-5), line(event_id="gone")]
    land(tmp_path, "a.jsonl", first)
    load(warehouse, tmp_path)
    # delivered again: one value corrected, one bad line fixed, one event dropped, the broken line kept
    land(tmp_path, "a.jsonl", [line(event_id="a", output_tokens=10), line(event_id="b", output_tokens=21), b"{oops",
                               line(event_id="wrong", latency_ms=5)])
    again = load(warehouse, tmp_path)["dt=2026-03-07/hour=12/a.jsonl"]
    assert (again.read, again.loaded, again.duplicate, again.quarantined, again.conflicting) == (4, 3, 0, 1, 0)
    assert query(warehouse, "select event_id, output_tokens, latency_ms from raw.usage_events order by 1") == [
        ("a", 10, 900.5), ("b", 21, 900.5), ("wrong", 20, 5.0)]
    assert query(warehouse, "select line_number, reasons from raw.quarantine") == [(3, ["malformed_json"])]
    assert query(warehouse, "select event_id from raw.event_ids order by 1") == [("a",), ("b",), ("wrong",)]
    # what the loaded batches say adds up to each line of the file once
    assert query(warehouse, """select sum(rows_read), sum(rows_loaded), sum(rows_quarantined) from raw.ingestion_batches
                               where status = 'loaded'""") == [(4, 3, 1)]
    assert query(warehouse, "select gate_status from raw.landing_hours") == [("pending",)]
    # the event hours the earlier version held are recomputed with the landing hour
    assert query(warehouse, "select event_hour from raw.retracted_event_hours") == [(HOUR,)]


def test_an_unreadable_file_is_recorded_and_does_not_stop_the_others(warehouse, tmp_path):
    land(tmp_path, "a-broken.jsonl.gz", [line(event_id="lost")], compress=True)
    broken = tmp_path / "dt=2026-03-07" / "hour=12" / "a-broken.jsonl.gz"
    broken.write_bytes(broken.read_bytes()[:-12])  # a cut-off gzip stream
    land(tmp_path, "b.jsonl", [line()])
    land(tmp_path, "c-empty.jsonl", [])
    batches = load(warehouse, tmp_path)
    failed = batches["dt=2026-03-07/hour=12/a-broken.jsonl.gz"]
    assert failed.status == "failed" and "EOFError" in failed.error
    assert batches["dt=2026-03-07/hour=12/b.jsonl"].loaded == 1
    assert batches["dt=2026-03-07/hour=12/c-empty.jsonl"].read == 0
    assert query(warehouse, "select event_id from raw.usage_events") == [("good-1",)]  # nothing partial
    assert query(warehouse, "select status, error is not null from raw.ingestion_batches order by batch_id") == [
        ("failed", True), ("loaded", False), ("loaded", False)]


def test_a_ten_megabyte_line_is_loaded_or_quarantined_whole(warehouse, tmp_path):
    huge_text = "x" * 10_000_000
    cut = b'{"event_id": "cut", "metadata": "' + huge_text.encode()  # a write that never finished
    land(tmp_path, "huge.jsonl", [line(event_id="huge", metadata={"prompt": huge_text}), cut])
    batch = load(warehouse, tmp_path)["dt=2026-03-07/hour=12/huge.jsonl"]
    assert (batch.loaded, batch.quarantined) == (1, 1)
    assert query(warehouse, "select length(metadata->>'prompt') from raw.usage_events") == [(10_000_000,)]
    assert query(warehouse, "select reasons, length(raw_text) from raw.quarantine") == [
        (["malformed_json"], len(cut))]


def test_the_ledger_adds_up_for_every_batch(warehouse, tmp_path):
    land(tmp_path, "a.jsonl", [line(), line(), b"{oops", line(event_id="y", latency_ms=-1)])
    load(warehouse, tmp_path)
    assert query(warehouse, """select count(*) from raw.ingestion_batches
                               where rows_read <> rows_loaded + rows_duplicate + rows_quarantined""") == [(0,)]
    assert query(warehouse, "select rows_read, rows_loaded, rows_duplicate, rows_quarantined"
                            " from raw.ingestion_batches") == [(4, 1, 1, 2)]


def test_tabs_newlines_quotes_and_backslashes_in_values_survive_the_copy(warehouse, tmp_path):
    tricky = 'a\tb\nc\\d\re \\N "q" \\"'
    land(tmp_path, "a.jsonl", [line(event_id="t", user_id=tricky, metadata={"note": tricky}), line(),
                               line(event_id="n", user_id="null", service=",", metadata={"k": 'v "w"'})])
    load(warehouse, tmp_path)
    assert query(warehouse, "select event_id, user_id, service, metadata from raw.usage_events order by 1") == [
        ("good-1", None, None, None),
        ("n", "null", ",", {"k": 'v "w"'}),  # the text "null" is not NULL
        ("t", tricky, None, {"note": tricky})]


def test_lines_without_backslashes_take_the_encoded_path_and_keep_every_value(warehouse, tmp_path):
    # lines without a backslash are turned into COPY lines by msgspec (ingestion/copy_format.py): a comma in
    # a string, the text "null", unicode line separators and nested metadata must come through as they were
    cases = {
        "comma": {"user_id": "a, b", "service": "x,y,z"},
        "null-text": {"user_id": "null", "service": "nul", "metadata": {"n": "null", "v": None}},
        "unicode": {"user_id": "ünïcødé ✓", "action": "line\u2028separator", "tool": "{x}"},
        "metadata": {"metadata": {"a": [1.5, "b,c", {"d": None}], "e": 10 ** 15}, "credits": 1e-07},
        "no-metadata": {"metadata": None, "error_code": None, "http_status": None},
    }
    lines = [json.dumps({**GOOD, "event_id": name, **fields}, ensure_ascii=False).encode()
             for name, fields in cases.items()]
    assert not any(b"\\" in raw for raw in lines)
    land(tmp_path, "a.jsonl", lines)
    load(warehouse, tmp_path)
    columns = ["user_id", "service", "action", "tool", "metadata", "credits", "error_code", "http_status"]
    stored = {row[0]: dict(zip(columns, row[1:], strict=True)) for row in query(
        warehouse, f"select event_id, {', '.join(columns)} from raw.usage_events")}
    assert stored == {name: {c: {**GOOD, **fields}.get(c) for c in columns} for name, fields in cases.items()}


def test_a_big_file_with_late_duplicates_keeps_the_first_of_each_past_the_savepoint_cap(warehouse, tmp_path,
                                                                                       monkeypatch):
    import ingestion.loader as loader

    monkeypatch.setattr(loader, "MAX_SAVEPOINTS", 3)  # the rest of the batch registers ids the slow way
    lines = [line(event_id=f"e{i}", output_tokens=i) for i in range(3000)]
    lines += [line(event_id=f"e{i}", output_tokens=-1 if i % 200 else 7) for i in range(0, 3000, 100)]  # repeats
    land(tmp_path, "big.jsonl", lines)
    batch = load(warehouse, tmp_path)["dt=2026-03-07/hour=12/big.jsonl"]
    assert (batch.read, batch.loaded, batch.duplicate, batch.quarantined) == (3030, 3000, 15, 15)
    assert batch.conflicting == 15  # output_tokens 7 instead of i: same id, other content
    assert query(warehouse, "select count(*), sum(output_tokens) from raw.usage_events") == [
        (3000, sum(range(3000)))]  # the first occurrence of each id won


def test_chunks_after_a_refused_registration_still_load_whole(warehouse, tmp_path):
    """A chunk holding an id of an earlier file is undone to its savepoint and registered the slow way;
    the chunks after it, whose savepoints follow on the undone one, load as usual."""
    land(tmp_path, "a.jsonl", [line(event_id=f"a{i}", output_tokens=5) for i in range(20)])
    b = [line(event_id=f"b{i}", output_tokens=1) for i in range(4000)]  # chunks of 125, 250, 500, 1000, ...
    b[10] = line(event_id="a3", output_tokens=5)  # in the first chunk: the same as a's line
    b[475] = line(event_id="a7", output_tokens=9)  # in the third chunk: a conflict
    land(tmp_path, "b.jsonl", b)
    batch = load(warehouse, tmp_path)["dt=2026-03-07/hour=12/b.jsonl"]
    assert (batch.read, batch.loaded, batch.duplicate, batch.conflicting) == (4000, 3998, 2, 1)
    assert query(warehouse, "select count(*), count(distinct event_id), sum(output_tokens) from raw.usage_events") == [
        (20 + 3998, 20 + 3998, 20 * 5 + 3998)]  # a's rows kept, every other row of b once
    assert query(warehouse, "select count(*) from raw.event_ids") == [(20 + 3998,)]


def test_loading_does_not_wait_behind_autovacuum(warehouse, tmp_path):
    """An existing schema is not re-declared: `create index if not exists` would queue behind a vacuum."""
    land(tmp_path, "a.jsonl", [line()])
    load(warehouse, tmp_path)
    vacuum = connect(warehouse)  # holds what autovacuum holds on a partition while it works
    try:
        with vacuum.cursor() as cur:
            cur.execute("lock table raw.usage_events_p20260307 in share update exclusive mode")
        land(tmp_path, "b.jsonl", [line(event_id="good-2")])
        conn = connect(warehouse)
        try:
            with conn.cursor() as cur:
                cur.execute("set lock_timeout = '2s'")  # waiting would raise here instead of hanging
            batches = {b.file: b for b in load_hour(conn, tmp_path, HOUR)}
        finally:
            conn.close()
    finally:
        vacuum.rollback()
        vacuum.close()
    assert batches["dt=2026-03-07/hour=12/b.jsonl"].loaded == 1


def deep_line(depth: int, event_id: str) -> bytes:
    """A valid JSON line whose metadata nests `depth` objects deep (built as bytes: json.dumps would
    run out of Python's stack itself)."""
    return line(event_id=event_id, metadata="M").replace(b'"M"', b'{"a": ' * depth + b"1" + b"}" * depth)


def test_json_nested_too_deep_is_quarantined_and_the_rest_of_the_file_loads(warehouse, tmp_path):
    # depth 1,000 crashed the step with a RecursionError that named no file and recorded no batch
    land(tmp_path, "deep.jsonl", [line(event_id="before"), deep_line(1000, "deep"), deep_line(5000, "deeper"),
                                  deep_line(33, "33-levels"), deep_line(31, "ok-31"), line(event_id="after")])
    batch = load(warehouse, tmp_path)["dt=2026-03-07/hour=12/deep.jsonl"]
    assert (batch.status, batch.read, batch.loaded, batch.quarantined) == ("loaded", 6, 3, 3)
    assert quarantined(warehouse) == {2: ["metadata:too_deep"], 3: ["json_too_deep"], 4: ["metadata:too_deep"]}
    assert query(warehouse, "select event_id from raw.usage_events order by 1") == [("after",), ("before",),
                                                                                    ("ok-31",)]


def test_ids_and_names_past_the_length_limit_are_quarantined_not_a_crash(warehouse, tmp_path):
    # a 3 KB event_id broke the id registry's index; a 3,000-character org_id broke five marts' indexes
    land(tmp_path, "long.jsonl", [line(event_id="e" * 3000), line(event_id="org", org_id="o" * 3000),
                                  line(event_id="ok", org_id="ü" * 256), line(event_id="model", model="m" * 257)])
    batch = load(warehouse, tmp_path)["dt=2026-03-07/hour=12/long.jsonl"]
    assert (batch.status, batch.loaded, batch.quarantined) == ("loaded", 1, 3)
    assert quarantined(warehouse) == {1: ["event_id:too_long"], 2: ["org_id:too_long"], 4: ["model:too_long"]}
    assert query(warehouse, "select length(org_id) from raw.usage_events") == [(256,)]


def test_rows_the_raw_gate_would_refuse_are_normalised_or_quarantined_at_the_contract(warehouse, tmp_path):
    # each was loaded, then failed the critical raw suite and blocked its whole hour
    land(tmp_path, "gate.jsonl", [
        line(event_id="upper", status="ERROR", error_code="rate_limit"),   # 1 normalised: loaded as error
        line(event_id="weird", status="weird"),                            # 2 not a status
        line(event_id="slow", latency_ms=3_700_000),                       # 3 over an hour
        line(event_id="long-answer", output_tokens=2_000_000),             # 4 more than any model writes
        line(event_id="late-token", latency_ms=900, ttft_ms=901),          # 5 first token after the end
        line(event_id="deep-research", latency_ms=700_000, ttft_ms=650_000),  # 6 11.7 minutes: loaded
    ])
    batch = load(warehouse, tmp_path)["dt=2026-03-07/hour=12/gate.jsonl"]
    assert (batch.loaded, batch.quarantined) == (2, 4)
    assert quarantined(warehouse) == {2: ["status:not_allowed"], 3: ["latency_ms:out_of_range"],
                                      4: ["output_tokens:out_of_range"], 5: ["ttft_ms:exceeds_latency"]}
    assert query(warehouse, "select event_id, status from raw.usage_events order by 1") == [
        ("deep-research", "success"), ("upper", "error")]


def test_a_byte_order_mark_before_the_first_line_is_not_part_of_it(warehouse, tmp_path):
    land(tmp_path, "bom.jsonl", [b"\xef\xbb\xbf" + line(event_id="first"), line(event_id="second")])
    batch = load(warehouse, tmp_path)["dt=2026-03-07/hour=12/bom.jsonl"]
    assert (batch.loaded, batch.quarantined) == (2, 0)


def test_a_line_past_the_size_cap_is_quarantined_with_its_start_and_read_in_linear_time(warehouse, tmp_path):
    import time

    from ingestion.contract import MAX_LINE_BYTES

    folder = tmp_path / "dt=2026-03-07" / "hour=12"
    folder.mkdir(parents=True)
    huge = b'{"event_id": "huge", "metadata": "' + b"x" * (80 << 20)  # 80 MB and no newline: took 64 s
    (folder / "huge.jsonl").write_bytes(line(event_id="first") + b"\n" + huge)
    started = time.monotonic()
    batch = load(warehouse, tmp_path)["dt=2026-03-07/hour=12/huge.jsonl"]
    elapsed = time.monotonic() - started
    assert (batch.read, batch.loaded, batch.quarantined) == (2, 1, 1)
    assert query(warehouse, "select line_number, reasons, length(raw_text), left(raw_text, 20) from raw.quarantine") \
        == [(2, ["line:too_long"], 4096, huge[:20].decode())]
    assert len(huge) > 5 * MAX_LINE_BYTES and elapsed < 30  # not a benchmark: the quadratic read took minutes


def test_symbolic_links_and_other_non_files_are_refused_unread(warehouse, tmp_path):
    import os

    secret = tmp_path / "secret.jsonl"  # outside the landing zone, in the contract's shape: it would load
    secret.write_bytes(line(event_id="SECRET-ROW", user_id="password=hunter2") + b"\n")
    land(tmp_path / "landing", "good.jsonl", [line()])
    folder = tmp_path / "landing" / "dt=2026-03-07" / "hour=12"
    os.symlink(secret, folder / "link.jsonl")
    os.symlink("/proc/self/environ", folder / "environ.jsonl")
    os.mkfifo(folder / "pipe.jsonl")  # a pipe would block a reader (or a checksum) forever
    (folder / "nested.jsonl").mkdir()
    batches = load(warehouse, tmp_path / "landing")
    refused = {name.rsplit("/", 1)[1]: b.error for name, b in batches.items() if b.status == "failed"}
    assert set(refused) == {"link.jsonl", "environ.jsonl", "pipe.jsonl", "nested.jsonl"}
    assert refused["link.jsonl"].startswith("a symbolic link: refused")
    assert refused["pipe.jsonl"].startswith("not a regular file (a pipe")
    assert refused["nested.jsonl"].startswith("a folder: refused")
    assert query(warehouse, "select event_id from raw.usage_events") == [("good-1",)]
    assert query(warehouse, "select count(*) from raw.quarantine") == [(0,)]
    assert query(warehouse, "select count(*) from raw.ingestion_batches where checksum = '-'") == [(4,)]


def test_an_hour_folder_that_leads_outside_the_landing_zone_is_refused(warehouse, tmp_path):
    import os

    elsewhere = tmp_path / "elsewhere"
    land(elsewhere, "a.jsonl", [line()])
    (tmp_path / "landing" / "dt=2026-03-07").mkdir(parents=True)
    os.symlink(elsewhere / "dt=2026-03-07" / "hour=12", tmp_path / "landing" / "dt=2026-03-07" / "hour=12")
    [batch] = load(warehouse, tmp_path / "landing").values()
    assert batch.status == "failed" and "leads outside the landing directory" in batch.error
    assert query(warehouse, "select count(*) from raw.usage_events") == [(0,)]
