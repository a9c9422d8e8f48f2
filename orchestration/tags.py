"""What runs carry and what the code location's parts read of each other's runs: tags and asset groups.
A module of names only, so partitions, jobs, sensors and the commands that launch runs all build on it."""

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# every job that runs dbt carries this tag; dagster.yaml lets one such run go at a time, so an hourly
# run and a price restatement never rebuild the same incremental model at once
DBT_RUN_TAGS = {"warehouse/dbt": "marts"}
# the machine a `warehouse` command ran its runs on (dead_run_sensor judges only its own host's runs)
HOST_TAG = "warehouse/host"
# the Dagster asset groups of what a dbt run of landing hours builds, and its publication (one group per
# dbt folder: a group of 40 assets cuts their names off in the UI's graph)
TRANSFORM_GROUPS = ("staging", "usage", "costs", "performance", "behaviour", "insights", "publication")
# an import of old files: how many days before its landing hour an event may be, for this run only
LATENESS_TAG = "warehouse/max_lateness_days"
# a run that rebuilds hours whose prices changed (or an erasure's hours): its marts restate, not add
RESTATEMENT_TAG = "warehouse/restatement_id"
# why a late-event or restatement run was started, shown in the UI's run list
REASON_TAG = "warehouse/reason"
