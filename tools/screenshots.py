"""Screenshots of a sweep in the MLflow UI, taken by a headless Chromium, for the docs.

Usage (the project's venv; Chromium from the system package manager, e.g. `apt-get install
chromium`)::

    .venv/bin/python tools/screenshots.py RUN_DIR [--out docs/images] [--port 5099]

Starts `sislab ui RUN_DIR`, then captures, at 1600x1000:

- ``ui-runs.png``: the runs table right after opening the URL `sislab ui` prints;
- ``ui-trial-images.png``: the best trial's sample grids (its images view, or its ``samples/``
  artifacts when the run logged no images);
- ``ui-compare.png``: the compare view of the first two finished trials;
- ``ui-parent.png``: the sweep's parent run (its description);

and copies the best trial's last sample grid (its ``images/`` artifact, logged with
``log_image``; older runs: ``samples/``) to ``demo-last-grid.png``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

WINDOW = "1600,1000"
# Simulated time Chromium gives the page's scripts before the shot (the UI fetches runs, metrics
# and images after it loads).
VIRTUAL_TIME_MS = 40000
SHOT_TIMEOUT_S = 120
MIN_GRID_WIDTH = 384


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    sys.exit("no Chromium found: install it with your package manager (apt-get install chromium)")


def shoot(browser: str, url: str, target: Path, height: int = 1000) -> None:
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size=1600,{height}", f"--virtual-time-budget={VIRTUAL_TIME_MS}",
         f"--screenshot={target}", url],
        check=True, timeout=SHOT_TIMEOUT_S, capture_output=True,
    )  # fmt: skip
    print(f"{target}  <- {url}")


def start_ui(run_dir: Path, port: int) -> tuple[subprocess.Popen, str]:
    """`sislab ui` on the run folder, and the URL it printed once the server answers."""
    ui = subprocess.Popen(
        [sys.executable, "-m", "sislab.cli.main", "ui", str(run_dir), "--port", str(port)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in ui.stdout:
        print(line, end="")
        if line.startswith("http://"):
            return ui, line.strip()
    sys.exit("sislab ui exited before printing its URL")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--port", type=int, default=5099)
    args = parser.parse_args()

    from mlflow.tracking import MlflowClient
    from PIL import Image

    from sislab.orchestrator.run_dir import RunDir

    state = RunDir.existing(args.run_dir).load_state()
    client = MlflowClient(state.tracking_uri)
    experiment, parent = state.experiment_id, state.parent_run_id
    trials = client.search_runs(
        [experiment], filter_string=f"tags.`mlflow.parentRunId` = '{parent}'",
        order_by=["attributes.start_time ASC"],
    )  # fmt: skip
    finished = [t for t in trials if t.info.status == "FINISHED"] or trials
    scored = [t for t in finished if "eval/fid" in t.data.metrics]
    best = min(scored, key=lambda t: t.data.metrics["eval/fid"]) if scored else finished[0]

    browser = chromium()
    args.out.mkdir(parents=True, exist_ok=True)
    # log_image names a grid images/<key>+step+<N>+...png: the last one is the highest step.
    logged = [a for a in client.list_artifacts(best.info.run_id, "images") if "+step+" in a.path]
    logged.sort(key=lambda a: int(a.path.split("+step+")[1].split("+")[0]))
    grids = [a for a in logged if a.path.endswith(".png")] or client.list_artifacts(
        best.info.run_id, "samples"
    )
    if grids:
        with tempfile.TemporaryDirectory() as tmp:
            last = client.download_artifacts(best.info.run_id, grids[-1].path, tmp)
            with Image.open(last) as grid:
                # A 32x32 demo's grid is 96 px wide: scale it (nearest, no blur) to be readable.
                factor = max(1, -(-MIN_GRID_WIDTH // grid.width))
                size = (grid.width * factor, grid.height * factor)
                grid.resize(size, Image.NEAREST).save(args.out / "demo-last-grid.png")
        print(f"{args.out / 'demo-last-grid.png'}  <- {grids[-1].path} of {best.info.run_name}")
    ui, url = start_ui(args.run_dir, args.port)
    base = url.split("#")[0].rstrip("/")
    try:
        shoot(browser, url, args.out / "ui-runs.png")
        run_page = f"{base}/#/experiments/{experiment}/runs/{best.info.run_id}"
        if "mlflow.loggedImages" in best.data.tags:
            images = f"{run_page}/model-metrics"
        else:
            images = f"{run_page}/artifacts/{grids[-1].path}" if grids else f"{run_page}/artifacts"
        # Tall: the image charts come after the metric charts on the run's metrics page.
        shoot(browser, images, args.out / "ui-trial-images.png", 2400)
        pair = [t.info.run_id for t in finished[:2]]
        query = urllib.parse.urlencode(
            {"runs": json.dumps(pair), "experiments": json.dumps([experiment])}
        )
        # Tall: the grids of both runs come after the plots, run details and params.
        shoot(browser, f"{base}/#/compare-runs?{query}", args.out / "ui-compare.png", 4000)
        shoot(
            browser, f"{base}/#/experiments/{experiment}/runs/{parent}", args.out / "ui-parent.png"
        )
    finally:
        ui.terminate()
        ui.wait(timeout=60)


if __name__ == "__main__":
    main()
