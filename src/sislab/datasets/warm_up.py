"""Warming a new local Ray for the data pipeline: Ray Data's one-time start, paid before a trial.

A fresh local Ray pays, inside the first dataset's first epoch: Ray Data's helper actors (its
first execution creates them asynchronously, and each takes an idle worker process, so the decode
tasks wait for new ones to start: the second decode task of one probe began 1.2 s after the
first), and the first import of ``ray.data``'s operators and sislab's decode in every worker
process that decodes (0.6-1 s of CPU each on a 2-core machine). ``warm_up`` pays both up front;
``start_warm_up`` does it on a background thread while a sweep sets up Tune.
"""

from __future__ import annotations

import io
import logging
import threading

log = logging.getLogger(__name__)


def _warm_decode_worker() -> None:
    # Ray Data's map-task imports, sislab's decode and PIL's PNG codec, in this worker process.
    from PIL import Image
    from ray.data._internal.execution.operators import map_operator  # noqa: F401

    from sislab.datasets.pipeline import _ReadAndDecode  # noqa: F401
    from sislab.datasets.preprocess import decode_image

    png = io.BytesIO()
    Image.new("RGB", (2, 2)).save(png, format="PNG")
    decode_image(png.getvalue())


def warm_up() -> None:
    """Run Ray Data's first execution, wait until its helper actors are up, then warm one idle
    worker process per CPU of the cluster with the decode path's imports."""
    import ray
    import ray.data

    def named() -> set[tuple[str, str]]:
        return {
            (a["name"], a["namespace"]) for a in ray.util.list_named_actors(all_namespaces=True)
        }

    before = named()
    ds = ray.data.range(1)
    ds.context.enable_progress_bars = False
    ds.materialize()
    for name, namespace in named() - before:
        # Every actor answers __ray_ready__ once its constructor has run.
        ray.get(ray.get_actor(name, namespace=namespace).__ray_ready__.remote(), timeout=60)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    task = ray.remote(num_cpus=1)(_warm_decode_worker)
    ray.get([task.remote() for _ in range(cpus)])


def _warm_up_logged() -> None:
    try:
        warm_up()
    except Exception:  # a cold pipeline is slower, never wrong: the sweep goes on
        log.info("warming Ray Data up failed", exc_info=True)


def start_warm_up() -> threading.Thread:
    """Start ``warm_up`` on a daemon thread and return it (join it to wait)."""
    thread = threading.Thread(target=_warm_up_logged, name="sislab-warm-up", daemon=True)
    thread.start()
    return thread
