"""Screenshots of a sweep in the MLflow UI, taken in a headless Chromium, for the docs.

Usage (``make screenshots RUN_DIR=...`` installs the ``screenshots`` extra, Playwright, which
drives the system's Chromium, e.g. from ``apt-get install chromium``: it downloads no browser)::

    .venv/bin/python tools/screenshots.py RUN_DIR [--out docs/images] [--port 5099]

Starts `sislab ui RUN_DIR`, opens the URL it prints and, clicking as a user would, captures:

- ``ui-runs.png``: the runs table as the URL opens it, after one click on the sweep's expander
  (the trials nested under it, the varied params and the sweep's metric as columns);
- ``ui-trial-images.png``: the best trial's sample grid in its Model metrics tab at the first,
  a middle and the last evaluation (the step slider under the grid), side by side;
- ``ui-compare.png``: the trials' grids side by side at their last evaluation (the
  experiment's chart view, the sweep unfolded, its ``samples`` card in full screen);
- ``ui-parent.png``: the sweep's parent run: its Markdown description;

and copies the best trial's last sample grid (its ``images/`` artifact, logged with
``log_image``) to ``demo-last-grid.png``.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WIDTH, HEIGHT = 1600, 1000
# Time for the UI to fetch runs, metrics and images after a navigation or a click (ms).
WAIT_MS = 60000
MIN_GRID_WIDTH = 384
MAX_WIDTH = 1600


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    sys.exit("no Chromium found: install it with your package manager (apt-get install chromium)")


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


def step_of(path: str) -> int:
    """The step in a ``log_image`` file name (``images/<key>+step+<N>+...``)."""
    return int(path.split("+step+")[1].split("+")[0])


def save(png: bytes, target: Path) -> None:
    target.write_bytes(png)
    print(target)


def close_assistant(page) -> None:
    """Close MLflow 3.17's assistant side panel (it takes a third of the width)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    close = page.locator("button[aria-label='Close']").first
    try:
        close.wait_for(timeout=15000)
    except PlaywrightTimeout:
        return  # closed already (the UI remembers it)
    close.click()
    page.wait_for_timeout(500)


def bottom_of(page, text: str) -> float:
    box = page.get_by_text(text, exact=True).first.bounding_box()
    return box["y"] + box["height"]


def unfold_sweep(page) -> None:
    """The one click: the expander beside the sweep's parent run unfolds its trials."""
    row = page.locator(".ag-row", has=page.get_by_text("(sweep)"))
    row.first.get_by_role("button").first.click()


def shoot_runs_table(page, url: str, trial_names: list[str], target: Path) -> None:
    page.goto(url)
    page.get_by_text("(sweep)").first.wait_for()
    close_assistant(page)
    unfold_sweep(page)
    for name in trial_names:
        page.get_by_text(name).first.wait_for()
    page.wait_for_timeout(1500)
    headers = [h.bounding_box() for h in page.locator(".ag-header-cell").all()]
    right = max(h["x"] + h["width"] for h in headers if h)
    bottom = max(bottom_of(page, name) for name in trial_names) + 40
    clip = {"x": 0, "y": 0, "width": min(WIDTH, right + 24), "height": bottom}
    save(page.screenshot(clip=clip), target)


def samples_card(page):
    """The ``samples`` image chart card (MLflow's image grid of the logged sample grids)."""
    title = page.locator("h4", has_text="samples").first
    # The UI draws a chart section only once it is scrolled near: scroll its panel down (the
    # wheel over the page's middle) until the card is there.
    page.mouse.move(page.viewport_size["width"] - 100, 600)
    for _ in range(60):
        if title.count() and title.is_visible():
            break
        page.mouse.wheel(0, 600)
        page.wait_for_timeout(500)
    title.wait_for()
    title.scroll_into_view_if_needed()
    return page.locator("[data-testid='experiment-view-compare-runs-card']", has=title).first


def hide_run_params(page, card) -> None:
    """Configure the image card to show the images alone (not each run's 60 params above)."""
    card.locator("[data-testid='experiment-view-compare-runs-card-menu']").click()
    page.get_by_role("menuitem", name="Configure").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("switch", name="Show run parameters").click()
    dialog.get_by_role("button", name="Save changes").click()
    dialog.wait_for(state="hidden")
    page.wait_for_timeout(1000)


def move_slider(page, card, step: int | None) -> None:
    """Move the image card's step slider to ``step`` (``None``: the last logged step).

    MLflow 3.17's slider opens at step 0, where nothing was logged, and steps from one logged
    step to the next with the arrow keys; in headless runs Home, End, typing a step in its box
    or clicking the track did not move it, so: ArrowRight until the step is reached.
    """
    thumb = card.get_by_role("slider").first
    thumb.focus()
    last = int(float(thumb.get_attribute("aria-valuemax")))
    target = last if step is None else min(step, last)
    for _ in range(1000):  # bounded: one press per logged step
        if int(float(thumb.get_attribute("aria-valuenow"))) >= target:
            break
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(200)
    card.locator("img").first.wait_for()
    page.wait_for_timeout(3000)


def shoot_image_card(page, steps: list[int | None], target: Path) -> None:
    """The ``samples`` card (its grids, one per run shown, and its step slider) at each of
    ``steps`` (``None``: the last), side by side."""
    hide_run_params(page, samples_card(page))
    shots = []
    for step in steps:
        card = samples_card(page)
        move_slider(page, card, step)
        shots.append(card.screenshot())
    side_by_side(shots, target)


def shoot_compare(page, target: Path) -> None:
    """The ``samples`` card of the chart view in full screen: every shown trial's grid side by
    side at the last evaluation (the card itself shows one grid at a time, the others scrolled
    out of its column)."""
    card = samples_card(page)
    hide_run_params(page, card)
    card = samples_card(page)
    card.get_by_role("button").first.click()  # the card's full-screen button
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("slider").first.wait_for()
    move_slider(page, dialog, None)  # the full screen opens at step 0, where nothing was logged
    dialog.locator("img").nth(1).wait_for()
    side_by_side([dialog.screenshot()], target)


def side_by_side(parts: list[bytes], target: Path, gap: int = 24) -> None:
    """Write screenshots next to each other (a white gap between them) as one PNG."""
    from PIL import Image

    images = [Image.open(io.BytesIO(p)).convert("RGB") for p in parts]
    width = sum(i.width for i in images) + gap * (len(images) - 1)
    sheet = Image.new("RGB", (width, max(i.height for i in images)), "white")
    x = 0
    for image in images:
        sheet.paste(image, (x, 0))
        x += image.width + gap
    if sheet.width > MAX_WIDTH:  # readable in a README: scale down to MAX_WIDTH
        height = round(sheet.height * MAX_WIDTH / sheet.width)
        sheet = sheet.resize((MAX_WIDTH, height), Image.LANCZOS)
    sheet.save(target)
    print(target)


def attempt(page, out: Path, name: str, shoot, *args) -> None:
    """Run one capture; when the UI does not look as expected, say so, keep a screenshot of the
    page as it was (``failed-NAME.png``) and go on with the next view."""
    try:
        shoot(page, *args)
    except Exception as error:  # a UI change must not lose the other views
        print(f"{name}: {type(error).__name__}: {str(error).splitlines()[0]}", file=sys.stderr)
        page.screenshot(path=str(out / f"failed-{name}.png"))
        page.keyboard.press("Escape")


def shoot_parent(page, url: str, target: Path) -> None:
    """The parent run's Overview down to the end of its description (unfolded)."""
    page.goto(url)
    page.get_by_text("Description", exact=True).first.wait_for()
    close_assistant(page)
    more = page.get_by_text("Show more", exact=True)
    if more.count():
        more.first.click()
    less = page.get_by_text("Show less", exact=True).first
    less.wait_for()
    page.wait_for_timeout(1000)
    box = less.bounding_box()
    save(page.screenshot(clip={"x": 0, "y": 0, "width": WIDTH, "height": box["y"] + 40}), target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--port", type=int, default=5099)
    args = parser.parse_args()

    from mlflow.tracking import MlflowClient
    from PIL import Image
    from playwright.sync_api import sync_playwright

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

    args.out.mkdir(parents=True, exist_ok=True)
    # log_image names a grid images/<key>+step+<N>+...png: the last one is the highest step.
    logged = [a for a in client.list_artifacts(best.info.run_id, "images") if "+step+" in a.path]
    logged.sort(key=lambda a: step_of(a.path))
    grids = [a for a in logged if a.path.endswith(".png")]
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
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.set_default_timeout(WAIT_MS)
            names = [t.info.run_name for t in finished]
            shoot_runs_table(page, url, names, args.out / "ui-runs.png")
            # The image views at three times the pixels: MLflow draws a grid in a ~170 px tile.
            zoom = browser.new_page(
                viewport={"width": WIDTH, "height": 2000}, device_scale_factor=3
            )
            zoom.set_default_timeout(WAIT_MS)
            zoom.goto(f"{base}/#/experiments/{experiment}/runs/{best.info.run_id}/model-metrics")
            close_assistant(zoom)
            # The first, a middle and the last evaluation: the grid over training.
            evaluated = sorted({step_of(a.path) for a in grids})
            over_steps = (
                [evaluated[0], evaluated[len(evaluated) // 2], None] if evaluated else [None]
            )
            attempt(zoom, args.out, "ui-trial-images", shoot_image_card,
                    over_steps, args.out / "ui-trial-images.png")  # fmt: skip
            # The compare view: the runs table's chart view, the sweep unfolded (its trials
            # shown), the image card at the last evaluation: one grid per trial, side by side.
            zoom.goto(f"{url}&compareRunsMode=CHART")
            zoom.get_by_text("(sweep)").first.wait_for()
            close_assistant(zoom)
            unfold_sweep(zoom)
            zoom.wait_for_timeout(3000)
            zoom.set_viewport_size({"width": WIDTH, "height": 900})  # a compact full screen
            attempt(zoom, args.out, "ui-compare", shoot_compare, args.out / "ui-compare.png")
            shoot_parent(
                page, f"{base}/#/experiments/{experiment}/runs/{parent}", args.out / "ui-parent.png"
            )
            browser.close()
    finally:
        ui.terminate()
        ui.wait(timeout=60)


if __name__ == "__main__":
    main()
