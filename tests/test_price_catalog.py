"""The price catalog rows (validity windows, time-of-day segments, tier bands) and the reference CSVs,
checked against genai-prices itself; no database."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from reference import price_catalog
from reference.files import ReferenceDataError, read_budgets, read_orgs, read_overrides


@pytest.fixture(scope="module")
def rows():
    return price_catalog.catalog_rows()


def row_for(rows, provider_id: str, model_id: str, at: datetime, input_tokens: int):
    """The one catalog row that applies, found the way the SQL join finds it."""
    clock = at.astimezone(UTC).strftime("%H:%M:%S")
    found = [r for r in rows if r.provider_id == provider_id and r.model_id == model_id
             and (r.valid_from is None or at >= r.valid_from) and (r.valid_to is None or at < r.valid_to)
             and (r.time_of_day_from is None or r.time_of_day_from <= clock < r.time_of_day_to)
             and (r.input_tokens_over is None or input_tokens > r.input_tokens_over)
             and (r.input_tokens_up_to is None or input_tokens <= r.input_tokens_up_to)]
    assert len(found) == 1, f"{len(found)} rows for {provider_id}/{model_id} at {at} with {input_tokens} tokens"
    return found[0]


def cost(row, input_tokens, cache_read, cache_write, output, reasoning) -> Decimal:
    fee, p_in, p_read, p_write, p_out, p_reason = row.rates
    return fee + ((input_tokens - cache_read - cache_write) * p_in + cache_read * p_read + cache_write * p_write
                  + (output - reasoning) * p_out + reasoning * p_reason) / 1_000_000


@pytest.mark.parametrize("provider_id,model_id", [
    ("deepseek", "deepseek-v4-flash"),  # two start dates and two off-peak windows a day
    ("deepseek", "deepseek-chat"),  # an off-peak window across midnight UTC
    ("anthropic", "claude-sonnet-4-6"),  # a tier above 200k input tokens that ends on 2026-03-13
    ("google", "gemini-2.5-pro"),  # tiers on input, cache reads and output
    ("mistral", "mistral-large-4"),  # two price changes
    ("anthropic", "claude-sonnet-4-0"),  # cache reads and writes, no conditions
])
def test_rows_price_like_genai_prices_at_any_time_and_size(rows, provider_id, model_id):
    from genai_prices import Usage, calc_price

    rng = random.Random(model_id)
    for _ in range(300):
        at = datetime(2025, 6, 1, tzinfo=UTC) + timedelta(seconds=rng.uniform(0, 600 * 86400))
        input_tokens = rng.choice([rng.randint(1, 5000), rng.randint(150_000, 400_000)])
        cache_read = rng.randint(0, input_tokens // 2)
        cache_write = rng.randint(0, input_tokens // 4) if rng.random() < 0.5 else 0
        output = rng.randint(0, 5000)
        reasoning = rng.randint(0, output)
        expected = calc_price(Usage(input_tokens=input_tokens, cache_read_tokens=cache_read,
                                    cache_write_tokens=cache_write, output_tokens=output,
                                    output_reasoning_tokens=reasoning),
                              model_ref=model_id, provider_id=provider_id, genai_request_timestamp=at).total_price
        row = row_for(rows, provider_id, model_id, at, input_tokens)
        assert abs(cost(row, input_tokens, cache_read, cache_write, output, reasoning) - expected) < Decimal(
            "1e-15"), (at, input_tokens)


def test_every_catalog_row_has_a_unique_content_id_and_no_two_rows_overlap(rows):
    assert len({r.price_id for r in rows}) == len(rows)
    by_model: dict[tuple, list] = {}
    for r in rows:
        by_model.setdefault((r.provider_id, r.model_id), []).append(r)
    far = datetime(9999, 1, 1, tzinfo=UTC)
    for key, model_rows in by_model.items():
        for i, a in enumerate(model_rows):
            for b in model_rows[i + 1:]:
                times = (a.valid_from or datetime.min.replace(tzinfo=UTC)) < (b.valid_to or far) and (
                    b.valid_from or datetime.min.replace(tzinfo=UTC)) < (a.valid_to or far)
                clock = a.time_of_day_from is None or b.time_of_day_from is None or (
                    a.time_of_day_from < b.time_of_day_to and b.time_of_day_from < a.time_of_day_to)
                tiers = (a.input_tokens_over or -1) < (b.input_tokens_up_to or 10**12) and (
                    b.input_tokens_over or -1) < (a.input_tokens_up_to or 10**12)
                assert not (times and clock and tiers), f"{key}: {a} overlaps {b}"


def test_models_are_matched_by_genai_prices_rules_and_unknown_ones_stay_unmatched():
    matches = price_catalog.match_models([("anthropic", "claude-sonnet-4-20250514"), ("OpenAI", "gpt-4o"),
                                          ("openai", "gpt-5.2-20251211"), ("acme-labs", "mystery-1"),
                                          ("openai", "no-such-model")])
    assert matches[("anthropic", "claude-sonnet-4-20250514")] == ("anthropic", "claude-sonnet-4-0")
    assert matches[("OpenAI", "gpt-4o")] == ("openai", "gpt-4o")
    assert matches[("openai", "gpt-5.2-20251211")][1].startswith("gpt-5.2")  # LiteLLM's compact dates
    assert matches[("acme-labs", "mystery-1")] is None
    assert matches[("openai", "no-such-model")] is None


def write(folder, name, text):
    (folder / name).write_text(text)
    return folder


def test_overrides_default_cache_prices_to_input_and_reasoning_to_output(tmp_path):
    write(tmp_path, "price_overrides.csv",
          "provider,model,valid_from,valid_to,usd_per_mtok_input,usd_per_mtok_output\n"
          "vllm,ft-1,2026-03-01,2026-04-01,0.5,1.5\n")
    [override] = read_overrides(tmp_path)
    assert override.rates == (0, Decimal("0.5"), Decimal("0.5"), Decimal("0.5"), Decimal("1.5"), Decimal("1.5"))
    assert override.valid_from == datetime(2026, 3, 1, tzinfo=UTC)
    assert override.price_id.startswith("ov-")


@pytest.mark.parametrize("name,text,message", [
    ("price_overrides.csv", "provider,model,usd_per_mtok_input,usd_per_mtok_output\nvllm,ft-1,abc,1\n",
     "price_overrides.csv line 2: usd_per_mtok_input 'abc' is not a number"),
    ("price_overrides.csv", "provider,model,usd_per_mtok_input\nvllm,ft-1,1\n",
     "no column usd_per_mtok_output in the header"),
    ("price_overrides.csv", "provider,model,valid_from,valid_to,usd_per_mtok_input,usd_per_mtok_output\n"
     "vllm,ft-1,2026-03-01,2026-04-01,1,1\nVLLM,FT-1,2026-03-15,,2,2\n",
     "line 3: the window of this VLLM/FT-1 price overlaps an earlier line's"),
    ("price_overrides.csv", "provider,model,valid_from,usd_per_mtok_input,usd_per_mtok_output\nvllm,ft-1,March,1,1\n",
     "valid_from 'March' is not a date"),
    ("price_overrides.csv", "provider,model,usd_per_mtok_input,usd_per_mtok_output\nvllm,ft-1,-1,1\n",
     "usd_per_mtok_input '-1' must be a finite amount of 0 or more"),
    ("orgs.csv", "org_id,time_zone\norg_a,Mars/Olympus\n", "time_zone 'Mars/Olympus' is not an IANA time zone"),
    ("org_budgets.csv", "org_id,month,budget_usd\norg_a,11/2026,100\n", "month '11/2026' is not YYYY-MM"),
    ("org_budgets.csv", "org_id,month,budget_usd\norg_a,,100\norg_a,,200\n", "a second budget for org_a"),
])
def test_a_bad_reference_file_names_file_line_and_fix(tmp_path, name, text, message):
    write(tmp_path, name, text)
    with pytest.raises(ReferenceDataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_overrides(tmp_path), read_orgs(tmp_path), read_budgets(tmp_path)


def test_missing_reference_files_mean_no_overrides_no_zones_no_budgets(tmp_path):
    assert read_overrides(tmp_path) == [] and read_orgs(tmp_path) == [] and read_budgets(tmp_path) == []
