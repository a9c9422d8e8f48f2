"""Readers: find landed files and stream their lines, never holding a whole file in memory."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

LANDING_PATTERNS = ("*.jsonl", "*.jsonl.gz")


def hour_folder(landing_dir: Path, hour: datetime) -> Path:
    """Files that arrived in `hour` (UTC) live in dt=YYYY-MM-DD/hour=HH/."""
    return landing_dir / f"dt={hour:%Y-%m-%d}" / f"hour={hour:%H}"


def files_for_hour(landing_dir: Path, hour: datetime) -> list[Path]:
    folder = hour_folder(landing_dir, hour)
    return sorted(p for pattern in LANDING_PATTERNS for p in folder.glob(pattern) if p.is_file())


def checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, raw bytes without the newline) for every non-blank line."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield number, line
