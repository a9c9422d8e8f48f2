"""The sample-log generator: deterministic, realistic in shape, and honest about its defects."""

import gzip
import json
import shlex
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from samples.synthetic import MODELS, ORGS, Anomaly, Defects, generate, main

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


def lines_by_file(root):
    return {p.relative_to(root).as_posix(): gzip.open(p, "rt").read().splitlines()
            for p in sorted(root.glob("dt=*/hour=*/*.jsonl.gz"))}


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    manifest = generate(root, START, 7, 4000, seed=3)
    return root, manifest, lines_by_file(root)


def parsed(files):
    for name, lines in files.items():
        for line in lines:
            try:
                yield name, json.loads(line)
            except json.JSONDecodeError:
                continue


def test_same_seed_gives_identical_files(tmp_path, week):
    root, _, files = week
    again = generate(tmp_path, START, 1, 4000, seed=3)
    first_day = {k: v for k, v in files.items() if k.startswith("dt=2026-03-02")}
    regenerated = lines_by_file(tmp_path)
    # the last hour differs only by the late events that would spill past the window's end
    assert {k: v for k, v in regenerated.items() if "hour=23" not in k} == {
        k: v for k, v in first_day.items() if "hour=23" not in k}
    assert again.files == 24


def test_manifest_counts_match_the_files(week):
    _, manifest, files = week
    lines = [line for ls in files.values() for line in ls]
    assert len(lines) == manifest.lines and len(files) == manifest.files == 7 * 24
    malformed = 0
    for line in lines:
        try:
            json.loads(line)
        except json.JSONDecodeError:
            malformed += 1
    assert malformed == manifest.planted["malformed"] > 0
    ids = Counter(e["event_id"] for _, e in parsed(files))
    assert sum(n - 1 for n in ids.values()) == manifest.planted["duplicate"] > 0


def test_late_events_sit_in_a_later_hour_file(week):
    _, manifest, files = week
    late = 0
    for name, e in parsed(files):
        file_hour = datetime.strptime(name[:21], "dt=%Y-%m-%d/hour=%H").replace(tzinfo=UTC)
        late += datetime.fromisoformat(e["event_time"]) < file_hour
    # duplicates copied into the next hour look late too
    assert manifest.planted["late"] <= late <= manifest.planted["late"] + manifest.planted["duplicate"]


def test_traffic_peaks_in_each_orgs_local_afternoon_and_dips_at_weekends(week):
    _, _, files = week
    by_local_hour = defaultdict(Counter)
    weekday, weekend = Counter(), Counter()
    for _, e in parsed(files):
        org = next(o for o in ORGS if o.org_id == e["org_id"])
        local = datetime.fromisoformat(e["event_time"]).astimezone(ZoneInfo(org.time_zone))
        by_local_hour[org.org_id][local.hour] += 1
        (weekend if local.weekday() >= 5 else weekday)[org.org_id] += 1
    for org_id, hours in by_local_hour.items():
        peak = max(hours, key=hours.get)
        assert 11 <= peak <= 17, (org_id, peak)
        assert hours[peak] > 4 * hours[3]
    for org in ORGS:  # per day, a weekend day has well under the traffic of a weekday
        assert weekend[org.org_id] / 2 < 0.6 * weekday[org.org_id] / 5


def test_latency_is_per_model_and_errors_come_in_bursts(week):
    _, _, files = week
    latency = defaultdict(list)
    errors_per_hour = Counter()
    for _, e in parsed(files):
        if e["latency_ms"] < 0 or e["output_tokens"] < 0 or e["input_tokens"] < 0:
            continue  # a planted out-of-range defect
        if e["status"] == "success":
            latency[e["model"]].append(e["latency_ms"])
            assert e["ttft_ms"] <= e["latency_ms"]
        else:
            errors_per_hour[(e["org_id"], e["event_time"][:13])] += 1
            assert e["error_code"] and e["http_status"] >= 400
    medians = {m: statistics.median(v) for m, v in latency.items()}
    assert medians["o4-mini"] > 2 * medians["gpt-4o-mini"]
    assert max(errors_per_hour.values()) >= 10  # a burst, not a trickle


def test_cached_and_reasoning_tokens_and_sessions_and_variants(week):
    _, _, files = week
    events = [e for _, e in parsed(files)]
    assert any(e["cached_input_tokens"] > 0 for e in events)
    assert all(e["cached_input_tokens"] <= e["input_tokens"] for e in events if e["input_tokens"] > 0)
    reasoning_models = {m.name for m in MODELS.values() if m.reasoning}
    assert all(e["reasoning_tokens"] == 0 for e in events if e["model"] not in reasoning_models)
    assert any(e["reasoning_tokens"] > 0 for e in events if e["model"] in reasoning_models)
    sessions = Counter(e["session_id"] for e in events)
    assert statistics.mean(sessions.values()) > 2
    assert {e["metadata"]["variant"] for e in events} == {"control", "treatment"}


def test_defects_can_be_turned_off(tmp_path):
    manifest = generate(tmp_path, START, 1, 2000, seed=1, defects=Defects().scaled(0))
    assert sum(manifest.planted.values()) == 0
    assert manifest.events == manifest.lines


def test_cli_rejects_a_bad_start(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--start", "next tuesday", "--days", "1"])
    assert exit_.value.code == 2
    assert "--start 'next tuesday' is not an ISO 8601 time" in capsys.readouterr().err


def test_cli_writes_the_landing_zone_the_readme_describes(tmp_path, capsys):
    assert main(["--days", "1", "--events-per-day", "500", "--seed", "7", "--out", str(tmp_path),
                 "--start", "2026-03-02T00:00:00Z"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == 24 and summary["start"] == "2026-03-02T00:00:00.000Z"
    assert (tmp_path / "dt=2026-03-02" / "hour=13" / "events-0000.jsonl.gz").exists()
    assert json.loads((tmp_path / "_manifest.json").read_text()) == summary


def readme_generate_commands() -> list[list[str]]:
    """The arguments of every `warehouse generate` command in the README and the docs pages."""
    root = Path(__file__).resolve().parent.parent
    text = "".join(p.read_text() for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))])
    text = text.replace("\\\n", " ")
    return [shlex.split(line)[2:] for line in text.splitlines() if line.startswith(".venv/bin/warehouse generate")]


def test_the_readme_generate_commands_run(tmp_path, capsys):
    commands = readme_generate_commands()
    assert len(commands) == 2
    for i, args in enumerate(commands):  # smaller, and into a temporary landing zone (the last flag wins)
        assert main([*args, "--events-per-day", "300", "--out", str(tmp_path / str(i))]) == 0
        assert json.loads(capsys.readouterr().out)["files"] > 0
    planted = [json.loads((tmp_path / str(i) / "_manifest.json").read_text())["anomalies"] for i in range(2)]
    assert ["error_burst:org_globex:claude-3-5-haiku-20241022:2026-07-02T12:0.5"] in planted


def test_planted_anomalies_change_only_their_org_model_and_hour(tmp_path):
    hour = datetime(2026, 3, 2, 14, tzinfo=UTC)
    plain = generate(tmp_path / "plain", START, 1, 3000, seed=3, defects=Defects().scaled(0), bursts=False)
    planted = generate(tmp_path / "planted", START, 1, 3000, seed=3, defects=Defects().scaled(0), bursts=False,
                       anomalies=(Anomaly("error_burst", "org_acme", "gpt-4o-mini", hour),
                                  Anomaly("latency_regression", "org_acme", "gpt-4o", hour)))
    assert plain.events == planted.events

    def lines(root):
        return {json.loads(line)["event_id"]: json.loads(line)
                for path in sorted(root.rglob("*.jsonl.gz")) for line in gzip.open(path, "rt").read().splitlines()}

    before, after = lines(tmp_path / "plain"), lines(tmp_path / "planted")
    changed = {k for k in before if before[k] != after[k]}
    assert changed and all(before[k]["org_id"] == "org_acme" and before[k]["event_time"].startswith("2026-03-02T14")
                           for k in changed)
    mini = [after[k] for k in before if before[k]["model"] == "gpt-4o-mini" and k in changed]
    assert all(e["status"] == "error" and e["error_code"] == "rate_limit_exceeded" for e in mini)
    slower = [(before[k], after[k]) for k in changed if before[k]["model"] == "gpt-4o"]
    assert slower and all(a["latency_ms"] == pytest.approx(3 * b["latency_ms"], abs=0.2) for b, a in slower)
    # no natural bursts: the hour's other errors are the base rate's
    assert sum(e["status"] == "error" for e in before.values()) < 0.05 * len(before)


def test_cli_rejects_an_anomaly_outside_the_window_or_misspelt(capsys):
    for plant, message in (("cost_spike:org_acme:gpt-4o:2030-01-01T00", "outside the generated window"),
                           ("spike:org_acme:gpt-4o:2026-03-02T14", "is not KIND:ORG:MODEL:HOUR[:FACTOR]"),
                           ("cost_spike:org_nobody:gpt-4o:2026-03-02T14", "no such org or model")):
        with pytest.raises(SystemExit) as exit_:
            main(["--start", "2026-03-02T00:00:00Z", "--days", "1", "--plant", plant])
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err
