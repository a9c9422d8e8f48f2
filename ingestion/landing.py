"""What landed in an hour, each part through the reader its source needs: application databases through
their extractor (ingestion/app_database.py), files through the loader (ingestion/loader.py). The loader
knows neither application databases nor where files come from: the choice is made here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from ingestion.app_database import extract_hour
from ingestion.loader import BUILTIN, NOT_READ, BatchResult, load_file, record_failure
from ingestion.readers import LandedFile, files_for_hour
from ingestion.schema import ensure_schema
from ingestion.sources import SourceSpec
from ingestion.validation import MAX_LATENESS


def load_hour(conn, landing_dir: Path, hour: datetime, specs: list[SourceSpec] = (),
              max_lateness: timedelta = MAX_LATENESS) -> list[BatchResult]:
    """Load everything that landed in `hour`: new rows of application databases, then every file.
    A source that cannot be read is recorded as a failed batch and does not stop the others.
    Events older than `max_lateness` before the hour are quarantined (event_time:too_late)."""
    with conn, conn.cursor() as cur:
        ensure_schema(cur)
    return [load_file(conn, work.path, hour, landing_dir, work.source, max_lateness)
            if isinstance(work, LandedFile) else work
            for work in hour_work(conn, landing_dir, hour, specs, max_lateness)]


def hour_work(conn, landing_dir: Path, hour: datetime, specs: list[SourceSpec] = (),
              max_lateness: timedelta = MAX_LATENESS) -> Iterator[BatchResult | LandedFile]:
    """What landed in `hour`, in order: the batches of application databases (extracted here: each
    advances its source's watermark) and of files no source reads (recorded as failed here), then
    each file to load, as a LandedFile."""
    for spec in specs:
        if spec.format == "postgres":  # rows an application wrote before the end of this hour
            yield extract_hour(conn, spec, hour, max_lateness)
    for landed in files_for_hour(landing_dir, hour, specs):
        if landed.source is None:
            name = str(landed.path.relative_to(landing_dir))
            # not read, not even for a checksum: a link may point anywhere, a pipe may never end
            yield record_failure(conn, name, NOT_READ, hour, BUILTIN, landed.problem)
        else:
            yield landed
