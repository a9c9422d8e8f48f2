"""Start `warehouse ui` (dagster dev), wait until the asset graph is served, then stop it."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

PORT = 3123
QUERY = b'{"query": "{ assetNodes { assetKey { path } } }"}'

ui = subprocess.Popen([".venv/bin/warehouse", "ui", "--port", str(PORT)], start_new_session=True,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{PORT}/graphql", data=QUERY,
                                             headers={"Content-Type": "application/json"})
            nodes = json.load(urllib.request.urlopen(request, timeout=5))["data"]["assetNodes"]
            keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
            if {"raw/usage_events", "marts/fct_usage_daily"} <= keys:
                print(f"Dagster UI serves {len(keys)} assets: {sorted(keys)}")
                sys.exit(0)
        except (OSError, KeyError, ValueError):
            pass
        time.sleep(3)
    sys.exit("the Dagster UI did not serve the asset graph within 180 s")
finally:
    os.killpg(ui.pid, signal.SIGINT)
    try:
        ui.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(ui.pid, signal.SIGKILL)
