"""The cost model (``python -m local_twin.cost``): each line item's arithmetic on known inputs, the limits
it relies on, Personalize's minimum, the bench files it reads and the report it prints."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from local_twin import cost
from local_twin.cost_bill import stack_bill
from local_twin.cost_model import (
    Assumed,
    Load,
    Measured,
    StackConfig,
    batches_per_second,
    compaction,
    count_item_bytes,
    cpu_share,
    event_batch_share,
    expected_distinct,
    item_bytes,
    kinesis_shards_needed,
    lambda_gb_s,
    profile_item_bytes,
    read_units,
    session_item_bytes,
    traffic,
    value_bytes,
    write_units,
)
from local_twin.cost_personalize import personalize_bill, personalize_hours
from local_twin.cost_prices import HOURS_PER_MONTH, PRICES, SECONDS_PER_MONTH, TIERED, price, tiered_cost
from merchandiser.store import COUNTS_PER_TRANSACTION, SEEN_EVENT_IDS_KEPT, SESSION_EVENTS_KEPT

REPO = Path(__file__).resolve().parents[2]
SMALL = {"catalog_items": 1000}  # keeps the counter arithmetic fast; the sizes do not depend on it


def line(bill, service: str, starts: str):
    [found] = [item for item in bill.lines if item.service == service and item.item.startswith(starts)]
    return found


# -- arithmetic primitives -----------------------------------------------------------------------------
def test_lambda_gb_seconds_are_requests_times_whole_milliseconds_times_memory():
    # Given 1,000 invocations of 41.2 ms: each is billed 42 ms
    assert lambda_gb_s(1000, 41.2, 1024) == pytest.approx(1000 * 0.042 * 1.0)
    assert lambda_gb_s(1000, 41.2, 512) == pytest.approx(1000 * 0.042 * 0.5)
    assert lambda_gb_s(1000, 42.0, 1024) == pytest.approx(42.0)


def test_a_function_below_1769_mb_gets_that_share_of_a_vcpu():
    assert cpu_share(1024) == pytest.approx(1024 / 1769)
    assert cpu_share(1769) == 1.0
    assert cpu_share(4096) == 1.0


def test_tiered_prices_fill_each_tier_before_the_next():
    tiers = TIERED["apigw_rest"].tiers
    assert tiered_cost(0, tiers) == 0.0
    assert tiered_cost(1e6, tiers) == pytest.approx(3.50)
    assert tiered_cost(334e6, tiers) == pytest.approx(333 * 3.50 + 1 * 2.80)
    with pytest.raises(ValueError, match=">= 0"):
        tiered_cost(-1, tiers)


@pytest.mark.parametrize(
    ("records_per_s", "bytes_per_s", "shards"),
    [
        (0, 0, 1),
        (1000, 1000, 1),  # exactly at the 1,000 records/s limit
        (1001, 1000, 2),
        (10, 1024 * 1024, 1),  # exactly at the 1 MB/s limit
        (10, 1024 * 1024 + 1, 2),
        (5000, 3 * 1024 * 1024, 5),  # the records bound the bytes
    ],
)
def test_kinesis_shards_cover_both_per_shard_limits(records_per_s, bytes_per_s, shards):
    assert kinesis_shards_needed(records_per_s, bytes_per_s) == shards


def test_the_processor_runs_once_per_poll_that_finds_records_and_back_to_back_when_batches_fill():
    # Given one shard polled once a second: 0.5 records/s -> P(a poll finds one) = 1 - e^-0.5
    assert batches_per_second(0.5, 1, 100) == pytest.approx(1 - math.exp(-0.5))
    # Given 50 records/s a shard: about one batch a second per shard
    assert batches_per_second(200, 4, 100) == pytest.approx(4 * (1 - math.exp(-50)))
    # Given 1,000 records/s on one shard: full batches of 100
    assert batches_per_second(1000, 1, 100) == pytest.approx(10.0)


def test_batches_of_impressions_alone_touch_no_session():
    assert event_batch_share(3.0, 0.0, 1, 100) == 0.0
    assert event_batch_share(3.0, 3.0, 1, 100) == pytest.approx(1.0)
    assert 0 < event_batch_share(3.0, 1.0, 4, 100) < 1


def test_dynamodb_sizes_follow_the_documented_rules():
    assert value_bytes("abc") == 3
    assert value_bytes(12.5) == 3  # 3 significant digits: 2 bytes + 1
    assert value_bytes(100) == 2  # trailing zeros trimmed: 1 digit
    assert value_bytes(True) == 1
    assert value_bytes(["a", "b"]) == 3 + 2 * (1 + 1)
    assert value_bytes({"a": "x"}) == 3 + 1 + 1 + 1
    assert value_bytes({"ab", "c"}) == 3
    assert item_bytes({"id": "x", "n": 7}) == 2 + 1 + 1 + 2
    with pytest.raises(TypeError, match="no DynamoDB size rule"):
        value_bytes(object())


def test_reads_round_up_to_4_kb_and_half_a_unit_when_eventually_consistent_writes_to_1_kb():
    assert read_units(4096, consistent=False) == 0.5
    assert read_units(4097, consistent=False) == 1.0
    assert read_units(4097, consistent=True) == 2.0
    assert read_units(0, consistent=True) == 1.0
    assert (write_units(1024), write_units(1025), write_units(0)) == (1, 2, 1)


def test_a_session_grows_with_its_events_up_to_the_store_limits():
    limit = max(SESSION_EVENTS_KEPT, SEEN_EVENT_IDS_KEPT)
    assert session_item_bytes(1) < session_item_bytes(SESSION_EVENTS_KEPT) < session_item_bytes(limit)
    assert session_item_bytes(limit) == session_item_bytes(limit + 50)


def test_expected_distinct_items_match_the_closed_form_for_uniform_popularity():
    # Given 10 equally popular items and 10 draws: 10 * (1 - 0.9^10) distinct on average
    assert expected_distinct(10, 10, 0.0) == pytest.approx(10 * (1 - 0.9**10))
    assert expected_distinct(0, 10, 0.9) == 0.0
    assert expected_distinct(1e6, 100, 0.9) == pytest.approx(100, rel=1e-3)


# -- the stack's line items ----------------------------------------------------------------------------
def test_api_gateway_bills_pages_and_event_calls():
    load = Load(rps=1.0, events_per_request=2.0, **SMALL)
    bill = stack_bill(load, Measured(), Assumed(), StackConfig())
    requests = SECONDS_PER_MONTH * (1.0 + 2.0)
    assert line(bill, "API Gateway", "REST").quantity == pytest.approx(requests)
    assert line(bill, "API Gateway", "REST").usd == pytest.approx(requests * 3.50 / 1e6)


def test_data_out_is_the_pages_and_the_event_answers_compressed_only_when_the_api_compresses():
    load, measured, assumed = Load(rps=1.0, events_per_request=2.0, **SMALL), Measured(), Assumed()
    bill = stack_bill(load, measured, assumed, StackConfig(compressed_responses=False))
    per_page = measured.response_bytes_per_page + assumed.response_header_bytes
    per_call = assumed.events_response_bytes + assumed.response_header_bytes
    gb = SECONDS_PER_MONTH * (per_page + 2 * per_call) / 1024**3
    assert line(bill, "API Gateway", "data out").quantity == pytest.approx(gb)
    assert line(bill, "API Gateway", "data out").usd == pytest.approx(gb * 0.09)
    # As built: a page (over 1 KB) is gzip'd, POST /events' short answer is not
    compressed = stack_bill(load, measured, assumed, StackConfig())
    page = measured.response_bytes_per_page * assumed.response_gzip_ratio + assumed.response_header_bytes
    assert line(compressed, "API Gateway", "data out").quantity == pytest.approx(
        SECONDS_PER_MONTH * (page + 2 * per_call) / 1024**3
    )


def test_retrieval_lambda_is_measured_time_scaled_to_its_cpu_share_plus_its_two_calls():
    load, measured, assumed = Load(rps=2.0, **SMALL), Measured(handler_ms=10.0), Assumed()
    bill = stack_bill(load, measured, assumed, StackConfig(serving_memory_mb=1769))
    ms = math.ceil(10.0 + assumed.dynamodb_call_ms + assumed.kinesis_put_ms)
    compute = line(bill, "Lambda", f"retrieval: {ms} ms x 1769 MB")
    assert compute.quantity == pytest.approx(2.0 * SECONDS_PER_MONTH * ms / 1000 * 1769 / 1024)
    assert compute.usd == pytest.approx(compute.quantity * PRICES["lambda_gb_s_x86"].usd)
    arm = stack_bill(load, measured, assumed, StackConfig(serving_memory_mb=1769, arm64=True))
    assert line(arm, "Lambda", f"retrieval: {ms} ms").usd == pytest.approx(
        compute.quantity * price("lambda_gb_s_arm")
    )
    assert line(bill, "Lambda", "retrieval: requests").usd == pytest.approx(2.0 * SECONDS_PER_MONTH * 0.2e-6)


# -- SnapStart (from ~172k items up to ~1.08M, or -c merchandiser:snapStart=on), on-demand init (below),
# provisioned concurrency (beyond) -------------------------------------------------------------------------
# rps 1, 10 ms handler, 2 GB: 2 sandboxes for the peak, recycled every 2 hours = 730 cold starts a month
SNAP_LOAD, SNAP_MEASURED = Load(rps=1.0, **SMALL), Measured(handler_ms=10.0)
SNAP_CONFIG = StackConfig(2048, snap_start="on")  # 1,000 items: SnapStart only when told
COLD_STARTS = 730.0


def test_snapstart_caches_the_two_versions_pruning_keeps_of_each_serving_function_all_month():
    bill = stack_bill(SNAP_LOAD, SNAP_MEASURED, Assumed(), SNAP_CONFIG)
    cache = line(bill, "Lambda", "serving: SnapStart cache, 2 versions x 3 functions x 2048 MB")
    # a version a day, each cached for two days (live, then rollback target) = 2 all month, per function
    assert cache.quantity == pytest.approx(3 * 2 * SECONDS_PER_MONTH * 2.0)
    assert cache.usd == pytest.approx(cache.quantity * 0.0000015046)
    assert cache.usd == pytest.approx(3 * 2 * 730 * 3600 * 2.0 * 0.0000015046)  # $47.45 at 2 GB


def test_a_version_replaced_within_3_hours_is_still_cached_for_3():
    hourly = Load(rps=1.0, training_cadence_days=1 / 24, **SMALL)  # a version kept 2 hours
    bill = stack_bill(hourly, SNAP_MEASURED, Assumed(), SNAP_CONFIG)
    versions = 730.0  # one an hour, per function
    cache = line(bill, "Lambda", "serving: SnapStart cache")
    assert cache.quantity == pytest.approx(3 * versions * 3 * 3600 * 2.0)


def test_each_cold_start_is_a_restore_billed_per_gb_of_memory():
    bill = stack_bill(SNAP_LOAD, SNAP_MEASURED, Assumed(), SNAP_CONFIG)
    restores = line(bill, "Lambda", "retrieval: 730 cold starts restored from the snapshot")
    assert restores.quantity == pytest.approx(COLD_STARTS * 2.0) and restores.unit == "GB"
    assert restores.usd == pytest.approx(COLD_STARTS * 2.0 * 0.0001397998)


def test_a_restore_bills_the_runtime_load_and_the_after_restore_hook_not_the_init():
    assumed = Assumed(snapstart_runtime_load_ms=100.0)
    measured = Measured(handler_ms=10.0, restore_hooks_s=0.0005)
    bill = stack_bill(SNAP_LOAD, measured, assumed, SNAP_CONFIG)
    ms = math.ceil(100.0 + 0.5)  # runtime + hook (2 GB is more than a full core: no CPU share)
    billed = line(bill, "Lambda", f"retrieval: 730 restores x {ms} ms billed")
    assert billed.quantity == pytest.approx(COLD_STARTS * ms / 1000 * 2.0)
    assert billed.usd == pytest.approx(billed.quantity * price("lambda_gb_s_x86"))
    assert not [item for item in bill.lines if "INIT billed" in item.item]


def test_the_init_runs_once_per_published_version_under_snapstart():
    measured = Measured(handler_ms=10.0, cold_start_s=1.0)
    bill = stack_bill(SNAP_LOAD, measured, Assumed(), SNAP_CONFIG)
    init = line(bill, "Lambda", "serving: INIT once per published version")
    versions = 3 * 730 / 24  # three functions, one version a day each
    assert init.quantity == pytest.approx(versions * 1.0 * 2.0)
    assert init.usd == pytest.approx(init.quantity * price("lambda_gb_s_x86"))


def test_past_snapstart_s_limit_the_aliases_pay_provisioned_concurrency_and_cold_starts_their_init():
    big = Load(rps=1.0, catalog_items=2_000_000)
    bill = stack_bill(big, SNAP_MEASURED, Assumed(), StackConfig(2048))  # SnapStart auto, as built
    provisioned = line(bill, "Lambda", "serving: provisioned concurrency, 2 per live alias x 3 x 2048 MB")
    assert provisioned.quantity == pytest.approx(2 * 3 * 2.0 * SECONDS_PER_MONTH)
    assert provisioned.usd == pytest.approx(provisioned.quantity * 0.0000041667)
    assert not [item for item in bill.lines if "SnapStart" in item.item or "restore" in item.item]
    # the INIT at the on-demand estimate of 2M items (2048 MB: over a full core, no CPU share)
    init_ms = math.ceil((0.66 + 2_000_000 * 0.29 / 100_000) * 1000)
    assert line(bill, "Lambda", f"retrieval: 730 cold starts x {init_ms:,} ms (INIT billed)").quantity > 0
    # 1 page/s of 26 ms fits the 2 provisioned environments: all of it at their lower duration price
    compute = line(bill, "Lambda", "retrieval: 26 ms x 2048 MB (100% on provisioned environments)")
    assert compute.usd == pytest.approx(compute.quantity * 0.0000097222)
    # the setting cannot put SnapStart there; off gives the same bill
    with pytest.raises(ValueError, match="snapStart=on"):
        stack_bill(big, SNAP_MEASURED, Assumed(), SNAP_CONFIG)
    off = stack_bill(big, SNAP_MEASURED, Assumed(), replace(SNAP_CONFIG, snap_start="off"))
    assert off.total == pytest.approx(bill.total)


def test_at_the_default_catalogue_cold_starts_pay_the_on_demand_init_and_nothing_else():
    # Given the default 100,000 items and the stack's memory for them (1,024 MB, 58% of a vCPU)
    bill = stack_bill(Load(rps=1.0), SNAP_MEASURED, Assumed(), StackConfig())
    # Then no SnapStart line, no provisioned concurrency, no share of the pages on provisioned environments
    lambda_items = [item.item for item in bill.lines if item.service == "Lambda"]
    assert not [item for item in lambda_items if "SnapStart" in item or "restore" in item]
    assert not [item for item in lambda_items if "provisioned" in item or "INIT once" in item]
    # and each of the month's 730 cold starts bills its INIT at the estimate the start mode was chosen by:
    # (0.66 s of imports + 0.29 s of load) / (1024 / 1769)
    init_s = (0.66 + 0.29) * 1769 / 1024
    ms = math.ceil(init_s * 1000)
    assert ms == 1642
    init = line(bill, "Lambda", f"retrieval: 730 cold starts x {ms:,} ms (INIT billed)")
    assert init.quantity == pytest.approx(COLD_STARTS * ms / 1000 * 1.0)
    assert init.usd == pytest.approx(init.quantity * price("lambda_gb_s_x86"))
    # SnapStart on (-c merchandiser:snapStart=on) would cost its cache instead: $23.72 a month at 1,024 MB
    snap = stack_bill(Load(rps=1.0), SNAP_MEASURED, Assumed(), StackConfig(snap_start="on"))
    assert line(snap, "Lambda", "serving: SnapStart cache").usd == pytest.approx(23.72, abs=0.01)
    assert snap.total > bill.total + 23.0


def test_a_million_items_run_on_snapstart_and_off_puts_provisioned_concurrency_there():
    million = Load(rps=1.0, catalog_items=1_000_000)
    config = StackConfig(2432)  # constants.serving_memory_mb(1_000_000)
    bill = stack_bill(million, SNAP_MEASURED, Assumed(), config)
    assert line(bill, "Lambda", "serving: SnapStart cache, 2 versions x 3 functions x 2432 MB").usd > 0
    lambda_items = [item.item for item in bill.lines if item.service == "Lambda"]
    assert not [item for item in lambda_items if "provisioned" in item or "INIT billed" in item]
    # SnapStart off: the on-demand init (3.56 s) would miss the budget's margin, so warm containers instead
    off = stack_bill(million, SNAP_MEASURED, Assumed(), replace(config, snap_start="off"))
    assert line(off, "Lambda", "serving: provisioned concurrency, 2 per live alias x 3 x 2432 MB").usd > 0
    assert line(off, "Lambda", "retrieval: 730 cold starts x 3,560 ms (INIT billed)").quantity > 0


def test_a_page_reads_one_profile_and_one_session_eventually_consistent():
    bill = stack_bill(Load(rps=1.0, **SMALL), Measured(), Assumed(), StackConfig())
    reads = line(bill, "DynamoDB", "page reads")
    assert reads.item.endswith("= 1 RRU")  # two items under 4 KB: 0.5 + 0.5
    assert reads.quantity == pytest.approx(SECONDS_PER_MONTH)


def test_session_writes_follow_the_measured_writes_per_shopper():
    load, config = Load(rps=1.0, **SMALL), StackConfig()
    once = line(stack_bill(load, Measured(), Assumed(), config), "DynamoDB", "event batches: session PutItem")
    twice = line(
        stack_bill(load, Measured(writes_per_shopper_batch=2.0), Assumed(), config),
        "DynamoDB",
        "event batches: session PutItem",
    )
    assert twice.quantity == pytest.approx(2 * once.quantity)


def test_trending_counts_cost_two_write_units_per_hour_and_item_and_per_transaction_whatever_the_load():
    # Given the distinct items of a batch at 100 requests/s
    load, config = Load(rps=100.0), StackConfig()
    bill, t = stack_bill(load, Measured(), Assumed(), config), traffic(load, config)
    distinct = expected_distinct(t.events_per_event_batch, load.catalog_items, load.popularity_exponent)
    # Then each (hour, item) of a batch is one transactional write of a count item far under 1 KB (2 write
    # units), and so is the dirty set's ADD in each transaction of 99 counts
    assert count_item_bytes() < 100
    transactions = max(1, math.ceil(distinct / COUNTS_PER_TRANSACTION))
    counts = line(bill, "DynamoDB", "trending: an ADD per (hour, item)")
    assert counts.quantity == pytest.approx(t.event_batches * 2 * (distinct + transactions))
    # And no item nears DynamoDB's 400 KB limit: no note says so
    assert not any("400 KB" in note for note in bill.notes)


def test_the_compactor_runs_every_minute_and_reads_each_dirty_hours_counts():
    load, config, assumed = Load(rps=10.0), StackConfig(), Assumed()
    month = compaction(load, assumed, config)
    bill = stack_bill(load, Measured(), assumed, config)
    # 43,800 runs a month (one a minute, 730 hours), each a GetItem of the dirty set and, with work, its
    # clearing
    assert month.runs == pytest.approx(60 * HOURS_PER_MONTH) == pytest.approx(43_800)
    assert line(bill, "Lambda", "trending_compactor: requests").quantity == month.runs
    assert month.dirty_set_units == pytest.approx(2 * month.runs, rel=0.01)  # 20 events/s: every run works
    # its Queries read the hour's counts so far, each eventually consistent over the write partitions
    assert line(bill, "DynamoDB", "trending compactor: Query").quantity == month.query_rru > 0
    # and an hour's summary keeps the top 1,000 of its items: far under the item limit
    assert month.items_per_hour > config.trending_top_per_hour and month.summary_bytes < 20 * 1024
    # a quiet shop's runs mostly find nothing to do
    quiet = compaction(Load(rps=0.001), assumed, config)
    assert quiet.dirty_set_units < 1.2 * quiet.runs and quiet.mean_ms < month.mean_ms


def test_a_summary_that_could_pass_400_kb_is_flagged():
    config = StackConfig(trending_top_per_hour=50_000)
    bill = stack_bill(Load(rps=100.0), Measured(), Assumed(), config)
    assert any("400 KB item limit" in note for note in bill.notes)


def test_publish_scans_every_stored_digest_and_writes_the_profiles_that_changed():
    load = Load(rps=1.0, **SMALL)
    runs = 730 / 24 / load.training_cadence_days
    profiles = load.shoppers_in_window
    profile_bytes = profile_item_bytes(round(load.interactions_in_window / profiles))
    scanned = profiles * profile_bytes
    bill = stack_bill(load, Measured(), Assumed(), StackConfig())
    # the Scan bills the stored profiles' size, eventually consistent
    scan = line(bill, "DynamoDB", "publish: scan of the profiles' digests")
    assert scan.quantity == pytest.approx(runs * math.ceil(scanned / 4096) * 0.5)
    # as built, a history is stored decayed to its shopper's latest event: the profiles written are the
    # shoppers with events since the last training + as many whose oldest events left the window
    writes = line(bill, "DynamoDB", "publish: writes")
    assert load.profiles_changed_per_training == pytest.approx(2 * load.shoppers / runs)
    assert writes.quantity == pytest.approx(2 * load.shoppers)  # profiles under 1 KB: 1 WRU each
    # ... never more than every shopper of the window (a training every 60 days)
    rare = Load(rps=1.0, training_cadence_days=60.0, **SMALL)
    assert rare.profiles_changed_per_training == pytest.approx(rare.shoppers_in_window)
    # the function scans 1 MB pages in 8 segments at once, digests every profile of the window at its
    # memory's share of a vCPU (1536 MB) and writes 25 changed profiles a call
    pages = math.ceil(math.ceil(scanned / 1024**2) / 8)
    digesting = profiles * profile_bytes * 27e-9 / (1536 / 1769)
    seconds = pages * 0.1 + digesting + 2 * load.shoppers / runs / 25 * 0.006
    assert f"x {seconds:,.0f} s scanning digests and writing profiles" in line(bill, "Lambda", "publish").item
    assert line(bill, "Lambda", "publish").quantity == pytest.approx(runs * seconds * 1.5, rel=1e-3)
    # histories decayed to the training's end (before): every profile's digest changes, the same Scan
    before = stack_bill(load, Measured(), Assumed(), StackConfig(history_decayed_at_training=True))
    assert line(before, "DynamoDB", "publish: writes").quantity == pytest.approx(runs * profiles)
    assert line(before, "DynamoDB", "publish: scan").quantity == scan.quantity
    # the timeout and the digests held in memory, noted when passed: 10 rps fits, 100 rps does not
    assert not any("publish function" in note for note in bill.notes)
    ten = stack_bill(Load(rps=10.0, **SMALL), Measured(), Assumed(), StackConfig())
    assert not any("publish function" in note for note in ten.notes)
    big = stack_bill(Load(rps=100.0, **SMALL), Measured(), Assumed(), StackConfig())
    over = [note for note in big.notes if "publish function" in note and "timeout" in note]
    assert len(over) == 1 and "8 segments" in over[0]
    assert not any("stored digests" in note for note in big.notes)  # 52M x 16 bytes: 832 MB of 1536
    huge = stack_bill(Load(rps=200.0, **SMALL), Measured(), Assumed(), StackConfig())
    assert any("stored digests" in note and "1536 MB of memory" in note for note in huge.notes)


def test_kinesis_on_demand_bills_the_stream_hour_and_1_kb_units_in_and_out_per_consumer():
    load = Load(rps=1.0, events_per_request=2.0, event_bytes=350, impression_bytes=500, **SMALL)
    bill = stack_bill(load, Measured(), Assumed(), StackConfig(kinesis_on_demand=True))
    assert line(bill, "Kinesis", "on-demand").usd == pytest.approx(730 * 0.04)
    gb_in = 3 * SECONDS_PER_MONTH / 1024**2  # 3 records/s, each under 1 KB
    assert line(bill, "Kinesis", "data in").quantity == pytest.approx(gb_in)
    assert line(bill, "Kinesis", "data out").quantity == pytest.approx(2 * gb_in)
    provisioned = stack_bill(load, Measured(), Assumed(), StackConfig())  # as built
    assert line(provisioned, "Kinesis", "1 provisioned shard").usd == pytest.approx(730 * 0.015)
    assert line(provisioned, "Kinesis", "PUT payload units").quantity == pytest.approx(3 * SECONDS_PER_MONTH)


def test_one_provisioned_shard_gets_enough_processors_for_the_peak():
    # Given 100 rps: 300 records/s, 600 at the peak, on one shard: 5 processors of ~125 records/s
    t = traffic(Load(rps=100.0, **SMALL), StackConfig())
    assert (t.shards, t.parallelization) == (1, 5)
    assert traffic(Load(rps=100.0, **SMALL), StackConfig(kinesis_on_demand=True)).parallelization == 1
    bill = stack_bill(Load(rps=100.0, **SMALL), Measured(), Assumed(), StackConfig())
    assert not any("falls behind" in note for note in bill.notes)
    alone = StackConfig(parallelization_by_peak=False)
    assert any(
        "falls behind" in note
        for note in stack_bill(Load(rps=100.0, **SMALL), Measured(), Assumed(), alone).notes
    )


def test_firehose_rounds_each_record_up_to_5_kb():
    bill = stack_bill(Load(rps=1.0, events_per_request=2.0, **SMALL), Measured(), Assumed(), StackConfig())
    assert line(bill, "Firehose", "ingested").quantity == pytest.approx(3 * SECONDS_PER_MONTH * 5 / 1024**2)


def test_training_runs_on_one_instance_until_the_data_outgrows_it_then_on_emr_serverless():
    small = stack_bill(Load(rps=1.0, **SMALL), Measured(), Assumed(), StackConfig())
    assert line(small, "Training", "SageMaker ml.m5.xlarge").unit == "instance-hours"
    large = stack_bill(Load(rps=100.0, **SMALL), Measured(), Assumed(), StackConfig())
    assert not [item for item in large.lines if "SageMaker" in item.item]
    assert line(large, "Training", "EMR Serverless:").unit == "vCPU-hours"
    assert any("EMR" in note for note in large.notes)


def test_xray_records_the_api_rule_s_reservoir_then_its_rate_and_lambda_s_own_sampling_of_batches():
    load = Load(rps=1.0, **SMALL)
    t = traffic(load, StackConfig())
    api = (t.pages + t.event_calls) / SECONDS_PER_MONTH
    # As built: the API stage's rule (no reservoir, 1%); the event processor is not traced
    bill = stack_bill(load, Measured(), Assumed(), StackConfig())
    assert line(bill, "X-Ray", "traces").quantity == pytest.approx(0.01 * api * SECONDS_PER_MONTH)
    # X-Ray's default rule on the API, and Lambda's fixed 1/s + 5% on the processor's batches
    default = StackConfig(xray_reservoir_per_s=1.0, xray_rate=0.05, processor_traced=True)
    batches = t.batches / SECONDS_PER_MONTH
    assert batches < 1  # one shard's poll a second, not always finding records: all within the reservoir
    assert line(
        stack_bill(load, Measured(), Assumed(), default), "X-Ray", "traces"
    ).quantity == pytest.approx((1 + 0.05 * (api - 1) + batches) * SECONDS_PER_MONTH)


# -- Personalize -----------------------------------------------------------------------------------------
def test_personalize_bills_its_minimum_tps_at_low_load_and_the_actual_tps_above_it():
    low = personalize_bill(Load(rps=0.1, **SMALL))
    assert line(low, "Personalize", "campaign").quantity == pytest.approx(730.0)
    assert "(its minimum)" in line(low, "Personalize", "campaign").item
    assert line(low, "Personalize", "campaign").usd == pytest.approx(146.0)
    high = personalize_bill(Load(rps=100.0, **SMALL))
    assert line(high, "Personalize", "campaign").usd == pytest.approx(20_000 * 0.20 + 53_000 * 0.10)
    three = personalize_bill(Load(rps=0.1, personalize_campaigns=3, **SMALL))
    assert line(three, "Personalize", "campaign").usd == pytest.approx(3 * 146.0)


def test_personalize_training_hours_pass_through_the_published_points():
    assert personalize_hours(0.1e6) == pytest.approx(2.135)
    assert personalize_hours(50e6) == pytest.approx(53.9)


# -- inputs, goals and the report ------------------------------------------------------------------------
def test_the_model_reads_the_bench_files_and_says_which_figures_it_used(tmp_path):
    (tmp_path / "serving.json").write_text(
        json.dumps(
            {
                "catalog_items": 1000,
                "cold_start": {"total_s": 0.5, "verify_s": 0.25, "restore_hooks_s": 0.002},
                "handler": {"whole_without_store": {"p50_ms": 3.0, "p99_ms": 7.0}},
            }
        )
    )
    (tmp_path / "events.json").write_text(
        json.dumps(
            {
                "processor": {
                    "events": 3000,
                    "batches": 30,
                    "shoppers_per_batch": 20,
                    "cpu_ms_per_event": 2.5,
                    "reads_per_event": 0.01,
                    "session_writes_per_event": 0.2,
                    "counter_writes_per_event": 0.02,
                }
            }
        )
    )
    measured, warnings = cost.read_measured(tmp_path)
    # the init pays the fetch's hash check beside the imports and the load
    assert (measured.handler_ms, measured.cold_start_s, measured.bench_catalog_items) == (7.0, 0.75, 1000)
    assert measured.restore_hooks_s == 0.002 and measured.sources["restore_hooks_s"].endswith("serving.json")
    assert measured.processor_cpu_ms_per_event == 2.5
    assert measured.reads_per_batch == pytest.approx(1.0)
    assert measured.writes_per_shopper_batch == pytest.approx(1.0)
    assert measured.sources["handler_ms"].endswith("serving.json")
    assert warnings == []


def test_the_spark_overhead_is_the_spark_benchs_time_ratio(tmp_path):
    # Given the Spark bench's runs: the synthetic one is the one at scale; a broken file is reported
    runs = [
        {"data": "online-retail", "local": {"seconds": 10.0}, "spark": {"seconds": 100.0}},
        {"data": "synthetic", "local": {"seconds": 800.0}, "spark": {"seconds": 3000.0}},
    ]
    (tmp_path / "spark.json").write_text(json.dumps(runs))
    measured, warnings = cost.read_measured(tmp_path)
    assert measured.spark_overhead == pytest.approx(3.75) and warnings == []
    assert measured.sources["spark_overhead"].endswith("spark.json")
    # Then the EMR Serverless training of a big shop is priced at it
    big = Load(rps=100.0)
    slow = stack_bill(big, replace(measured, spark_overhead=7.5), Assumed(), StackConfig())
    fast = stack_bill(big, measured, Assumed(), StackConfig())
    emr = [line.usd for line in fast.lines if line.item.startswith("EMR Serverless:")]
    assert emr and [line.usd for line in slow.lines if line.item.startswith("EMR Serverless:")] == [
        pytest.approx(2 * emr[0])
    ]
    (tmp_path / "spark.json").write_text(json.dumps([{"data": "synthetic", "local": {"seconds": 0}}]))
    assert "unreadable" in cost.read_measured(tmp_path)[1][0]


def test_without_bench_files_the_readme_figures_are_used_and_named(tmp_path):
    measured, warnings = cost.read_measured(tmp_path)
    assert measured.handler_ms == Measured().handler_ms
    assert measured.sources["handler_ms"] == cost.README_DEFAULTS
    assert warnings == []


def test_an_unreadable_bench_file_is_reported_and_the_readme_figures_are_used(tmp_path):
    (tmp_path / "serving.json").write_text(json.dumps({"handler": {}}))
    (tmp_path / "events.json").write_text("not json")
    measured, warnings = cost.read_measured(tmp_path)
    assert measured.handler_ms == Measured().handler_ms
    assert len(warnings) == 2 and all("unreadable" in warning for warning in warnings)


@pytest.mark.parametrize(
    ("rps", "ratio", "says"),
    [
        (1.0, 0.19, "PASS"),
        (1.0, 0.21, "FAIL"),
        (100.0, 1.0, "PASS"),
        (100.0, 1.01, "FAIL"),
        (10.0, 5.0, "no goal"),
    ],
)
def test_the_goal_is_a_fifth_of_personalize_at_1_rps_and_at_most_equal_at_100(rps, ratio, says):
    assert cost.verdict(rps, ratio)[1].startswith(says)


def test_the_front_is_the_api_the_events_endpoint_and_the_monitoring_and_both_comparisons_use_it():
    from local_twin.cost_bill import front_usd, is_front

    [result] = cost.evaluate([Load(rps=1.0, **SMALL)], Measured(), Assumed(), StackConfig())["results"]
    stack, personalize = result["stack"], result["personalize"]
    front = {(item.service, item.item.split(":")[0]) for item in stack.lines if is_front(item)}
    assert {service for service, _ in front} == {"API Gateway", "Lambda", "CloudWatch", "X-Ray"}
    assert {name for service, name in front if service == "Lambda"} == {"events_api"}
    assert result["front"] == pytest.approx(front_usd(stack)) and 0 < result["front"] < stack.total
    assert result["engine_only_ratio"] == pytest.approx((stack.total - result["front"]) / personalize.total)
    assert result["like_for_like_ratio"] == pytest.approx(stack.total / (personalize.total + result["front"]))
    # the goal's ratio is still the whole stack against Personalize's engine alone
    assert result["ratio"] == pytest.approx(stack.total / personalize.total)
    assert result["engine_only_ratio"] < result["like_for_like_ratio"] < result["ratio"]


def test_the_report_prints_every_line_item_of_both_bills_and_each_verdict():
    loads = [Load(rps=rps, **SMALL) for rps in (1.0, 100.0)]
    report = cost.evaluate(loads, Measured(sources={"handler_ms": "x"}), Assumed(), StackConfig())
    text = cost.render(report, warnings=["w1"])
    for result in report["results"]:
        for bill in (result["stack"], result["personalize"]):
            for item in bill.lines:
                assert item.item in text
    services = {item.service for result in report["results"] for item in result["stack"].lines}
    assert services >= {
        "API Gateway",
        "Lambda",
        "DynamoDB",
        "Kinesis",
        "Firehose",
        "S3",
        "Training",
        "CloudWatch",
        "X-Ray",
    }
    assert "FAIL" in text or "PASS" in text
    assert "engine only:" in text and "like for like:" in text and "front = every API Gateway line" in text
    assert all(built in text for built in cost.BUILT)
    assert "warning: w1" in text and "handler_ms = " in text


def test_the_command_writes_json_and_refuses_a_load_that_is_not_positive(tmp_path, capsys):
    # Given a load of 5 rps, 12 events/s, 1,000 items and two Personalize campaigns
    argv = ["--rps", "5", "--catalog-items", "1000", "--events-per-second", "12"]
    argv += ["--personalize-campaigns", "2", "--bench-dir", str(tmp_path), "--json"]
    # When the command runs
    assert cost.main(argv) == 0
    # Then it writes the JSON of that load and says the serving time was measured on another catalogue
    written = json.loads((tmp_path / "cost.json").read_text())
    [only] = written["loads"]
    assert only["load"]["rps"] == 5.0 and only["load"]["events_per_second_override"] == 12.0
    assert only["load"]["personalize_campaigns"] == 2
    assert only["stack"]["total_usd"] > 0 and only["verdict"] == "no goal at this load"
    assert only["engine_only_usd"] == pytest.approx(only["stack"]["total_usd"] - only["front_usd"])
    assert only["like_for_like_ratio"] < only["ratio"] and "engine_only_ratio" in only
    assert "events_api" in written["front_rule"]
    assert "measured at 100,000 items, priced for 1,000" in capsys.readouterr().out
    for bad in (
        ["--rps", "0"],
        ["--events-per-second", "-1"],
        ["--catalog-items", "0"],
        ["--personalize-campaigns", "0"],
    ):
        with pytest.raises(SystemExit) as refused:
            cost.main([*bad, "--bench-dir", str(tmp_path)])
        assert refused.value.code == 2


# -- the model stays tied to the code it prices ------------------------------------------------------------
def test_the_profile_limits_match_the_training_code():
    from local_twin import cost_model
    from training.bundle import HISTORY_ITEMS
    from training.fit import RECENT_ITEMS

    assert (cost_model.PROFILE_HISTORY_ITEMS, cost_model.PROFILE_RECENT_ITEMS) == (
        HISTORY_ITEMS,
        RECENT_ITEMS,
    )


def test_the_stack_configuration_priced_is_the_one_the_stacks_build():
    """Beside tests/infra, which checks the templates for these values."""
    from stacks import constants

    functions = (REPO / "stacks" / "functions.py").read_text()
    serving = (REPO / "stacks" / "serving_stack.py").read_text()
    config = StackConfig()
    assert ("Architecture.ARM_64" in functions) == config.arm64
    assert config.kinesis_on_demand == (constants.DEFAULT_STREAM_MODE == constants.STREAM_MODE_ON_DEMAND)
    assert not config.kinesis_on_demand  # provisioned by default
    assert "tracing=tracing_mode(name)" in functions  # X-Ray is priced
    assert (config.xray_reservoir_per_s, config.xray_rate) == (0.0, 0.01)
    assert not config.processor_traced and "event_processor" in constants.PASS_THROUGH_TRACING
    assert "min_compression_size=Size.bytes(c.API_MIN_COMPRESSION_BYTES)" in serving
    assert config.compressed_responses and config.min_compression_bytes == 1024


def test_every_price_is_dated_sourced_and_says_how_it_was_checked():
    for entry in [*PRICES.values(), *TIERED.values()]:
        assert entry.source and entry.checked in {"aws-docs", "cross-checked", "memory"}
