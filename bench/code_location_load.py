"""How long the Dagster code location takes to load, against importing dagster alone.

    .venv/bin/python bench/code_location_load.py [--runs 5]

Each measurement is a fresh Python process (what `dagster dev` and the code server pay). The
dbt manifest must exist (any demo or test run makes it); this measures loading, not parsing.
"""

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "baseline: import dagster": "import dagster",
    "load orchestration.definitions": "from orchestration.definitions import defs; defs().get_repository_def()",
}


def timed(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    timed(CASES["load orchestration.definitions"])  # warm the file cache and the manifest
    medians = {name: statistics.median(timed(code) for _ in range(runs)) for name, code in CASES.items()}
    base = medians["baseline: import dagster"]
    print(f"{'case':<34} {'median s':>9} {'x baseline':>11}   ({runs} runs each)")
    for name, value in medians.items():
        print(f"{name:<34} {value:>9.2f} {value / base:>11.2f}")


if __name__ == "__main__":
    main()
