"""Where reference data enters: the price catalog, price overrides, org time zones and budgets, and
the match of every model seen in events to the catalog. A change of prices restates costs."""

import dagster as dg

from orchestration.partitions import hours_of_run
from orchestration.resources import WarehouseResource
from reference import price_catalog
from reference.files import REFERENCE_DDL, ReferenceDataError, write_reference

CATALOG = dg.AssetKey(["reference", "catalog_prices"])
FILES = [dg.AssetKey(["reference", name]) for name in ("price_overrides", "orgs", "org_budgets")]


@dg.asset(
    key=CATALOG,
    group_name="reference",
    kinds={"postgres", "python"},
    description="The genai-prices catalog (the snapshot shipped with the installed package; never fetched "
    "over the network) as prices with validity windows and tier bands; rematches every known model.",
)
def catalog_prices(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    version = price_catalog.catalog_version()
    rows = price_catalog.catalog_rows()
    conn = warehouse.connect()
    try:
        with conn, conn.cursor() as cur:
            changes = price_catalog.write_catalog(cur, rows, version)
            cur.execute("select provider, model from reference.model_matches")
            rematched = price_catalog.write_matches(cur, price_catalog.match_models(cur.fetchall()), version)
        restate = restatement_hours(conn)
    finally:
        conn.close()
    context.log.info(f"{version}: {len(rows):,} price rows ({changes['added']} new, {changes['removed']} gone); "
                     f"{len(rematched)} models now match another catalog entry; "
                     f"{len(restate)} hours of costs to restate")
    return dg.MaterializeResult(metadata={
        "catalog_version": version, "price_rows": len(rows), **{f"rows_{k}": v for k, v in changes.items()},
        "rematched_models": dg.MetadataValue.json([list(p) for p in rematched]),
        "restate_hours": dg.MetadataValue.json(restate)})


@dg.multi_asset(
    specs=[dg.AssetSpec(key, group_name="reference", kinds={"postgres", "csv"}) for key in FILES],
    description="Price overrides, org time zones and monthly budgets from the CSV files in "
    "WAREHOUSE_REFERENCE_DIR, checked whole before they replace the tables.",
)
def reference_files(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    folder = warehouse.settings.reference_dir
    conn = warehouse.connect()
    try:
        with conn, conn.cursor() as cur:
            counts = write_reference(cur, folder)
        restate = restatement_hours(conn)
    except ReferenceDataError as exc:
        raise dg.Failure(description=f"{exc}; the tables keep their previous content") from None
    finally:
        conn.close()
    context.log.info(f"{folder}: {counts}; {len(restate)} hours of costs to restate")
    for key in FILES:
        yield dg.MaterializeResult(asset_key=key, metadata={
            "rows": counts[key.path[-1]],  # the table's name
            "restate_hours": dg.MetadataValue.json(restate if key == FILES[0] else [])})


@dg.asset(
    key=["reference", "model_matches"],
    group_name="reference",
    deps=[dg.AssetKey(["raw", "usage_events"]), CATALOG],
    kinds={"postgres", "python"},
    description="The catalog model of every (provider, model) pair that events of the hour carry, by "
    "genai-prices' match rules; a pair it does not know stays unpriced (null cost and a flag).",
)
def model_matches(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    window = hours_of_run(context, "reference/model_matches").window
    conn = warehouse.connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute(price_catalog.CATALOG_DDL + REFERENCE_DDL)  # the cost models read them, loaded or not
            cur.execute("select not exists (select 1 from reference.catalog_prices)")
            if cur.fetchone()[0]:
                context.log.warning("reference.catalog_prices is empty, so every request stays unpriced: "
                                    "materialize reference_data_job (the demo does) to load the price catalog")
            matches = price_catalog.match_new_models(cur, window.start, window.end)
            cur.execute("select lower(provider), lower(model) from reference.price_overrides")
            overridden = set(cur.fetchall())
    finally:
        conn.close()
    unpriced = sorted(f"{p}/{m}" for (p, m), target in matches.items()
                      if target is None and (p.lower(), m.lower()) not in overridden)
    if unpriced:
        context.log.warning(f"no catalog price for {', '.join(unpriced)}: their requests stay unpriced "
                            "(null cost, flagged) until reference/price_overrides.csv prices them")
    return dg.MaterializeResult(metadata={"new_models": len(matches), "unpriced_models": dg.MetadataValue.json(
        unpriced)})


def restatement_hours(conn) -> list[str]:
    """Hourly partition keys of costed events whose price is not the one the current prices give."""
    with conn, conn.cursor() as cur:
        cur.execute("select to_regclass('build.fct_event_costs') is not null"
                    " and to_regclass('staging.int_event_prices') is not null")
        if not cur.fetchone()[0]:
            return []
        cur.execute("""select distinct to_char(c.event_hour at time zone 'UTC', 'YYYY-MM-DD-HH24:00')
                       from build.fct_event_costs c
                       join staging.int_event_prices p on p.event_id = c.event_id
                       where p.price_id is distinct from c.price_id
                       order by 1""")
        return [key for (key,) in cur.fetchall()]


reference_data_job = dg.define_asset_job(
    "reference_data_job",
    selection=dg.AssetSelection.assets(CATALOG, *FILES),
    description="Load the price catalog and the reference CSVs; price_restatement_sensor restates what changed.",
)

nightly_reference_schedule = dg.ScheduleDefinition(
    name="nightly_reference_schedule", job=reference_data_job, cron_schedule="0 2 * * *",
    execution_timezone="UTC", description="Reload the price catalog and the reference CSVs at 02:00 UTC.")
