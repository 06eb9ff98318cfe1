"""MLflow records of one trial, written by rank 0 with the client API.

Rank 0 opens the trial's nested run itself (``sislab.trainers.trial_run``; found again by the tag
``sislab.trial_id`` after a restart, so a restarted trial appends to the same run); the Tune
driver only marks it finished or failed. This keeps MLflow out of the trial driver processes.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from sislab.trainers.run_params import MAX_PARAM_CHARS, flatten, param_text
from sislab.trainers.scratch import ScratchDir

logger = logging.getLogger(__name__)

FLUSH_EVERY_S = 5.0  # batch metric writes: one sqlite/HTTP round trip per few seconds, not per call
FLUSH_TIMEOUT_S = 10.0  # longest a checkpoint waits for MLflow; records stay queued after that
CLOSE_TIMEOUT_S = 120.0  # longest the end of a trial waits, so a short outage loses nothing
RETRY_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
MAX_BUFFERED_METRICS = 1_000_000  # ~100 MB; hours of logging every iteration
PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "sislab.trial_id"
KIND_TAG = "sislab.kind"
REDONE_STEPS_KEY = "train/redone_steps"
NOTE_TAG = "mlflow.note.content"  # the run's description (Markdown) in the MLflow UI
SPOOL_PREFIX = "sislab-mlflow-spool-"  # artifacts copied for the sender thread
UNSENT_PREFIX = "sislab-mlflow-unsent-"  # a closed tracker's spool it could not send
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def redact(text: str) -> str:
    """Remove credentials embedded in URIs (``scheme://user:secret@host``)."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


__all__ = ["MAX_PARAM_CHARS", "flatten"]  # re-exported: older callers import them from here


def params_of(values: dict[str, Any]) -> list[Param]:
    """MLflow params of dotted key -> value: credentials removed, values truncated."""
    return [Param(key, redact(param_text(value))) for key, value in sorted(values.items())]


def logged_steps(client: MlflowClient, run_id: str) -> dict[str, int]:
    """The last step logged for each metric key of a run (MLflow's latest metric is the one with
    the highest step), so that a restarted worker does not log again the steps it redoes."""
    return {m.key: m.step for m in client.get_run(run_id).to_proto().data.metrics}


def find_trial_run(client: MlflowClient, experiment_id: str, parent_run_id: str, trial_id: str):
    """The nested run of ``trial_id`` under the parent, or None."""
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}' and tags.`{TRIAL_TAG}` = '{trial_id}'",
        max_results=1,
    )
    return found[0] if found else None


class MlflowTracker:
    """Buffers a trial's records and sends them to the MLflow run ``run_id`` from a sender thread.

    Training never waits on MLflow for long: ``log_metrics``, ``set_tags`` and ``log_artifact``
    only queue (artifacts are copied to a spool folder first), a single background thread sends
    tags, artifacts, then metrics in batches, and ``flush`` waits at most ``flush_timeout_s``.
    When the tracking server is unreachable the records stay queued and the thread retries with
    exponential backoff (``retry_backoff_s`` doubling up to ``max_backoff_s``); when it returns,
    everything queued is sent in order. Only past ``max_buffered`` metrics are the oldest dropped,
    with a warning and the count in ``dropped``. MLflow's own HTTP retries still apply inside one
    attempt (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``/``_TIMEOUT``).

    Each step of a metric key is logged at most once (MLflow's history is append-only): a point
    at or below the key's last step (``logged`` when a restarted worker opens its run again,
    then every point this tracker takes) is dropped, so work redone after a worker loss, a
    resume or a PBT pause does not appear twice. With ``hold_until_flush`` the metrics stay here
    until the next ``flush`` (the loop's, before each checkpoint): work a PBT pause or exploit
    throws away is never logged.

    Args:
        client: MLflow client of the tracking store.
        run_id: The trial's nested run.
        flush_every_s: Start a background send when this long has passed since the last one.
        flush_timeout_s: Longest ``flush`` waits for the queue to drain.
        close_timeout_s: Longest ``close`` (the end of training) waits for the queue to drain.
        retry_backoff_s: Wait after the first failed attempt; doubled after each failure.
        max_backoff_s: Cap on the wait between attempts.
        max_buffered: Metrics kept while MLflow is unreachable.
        logged: Last step of each metric key already in the run (``logged_steps``).
        hold_until_flush: Queue metrics for sending only at ``flush``.
    """

    def __init__(
        self,
        client: MlflowClient,
        run_id: str,
        *,
        flush_every_s: float = FLUSH_EVERY_S,
        flush_timeout_s: float = FLUSH_TIMEOUT_S,
        close_timeout_s: float = CLOSE_TIMEOUT_S,
        retry_backoff_s: float = RETRY_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        max_buffered: int = MAX_BUFFERED_METRICS,
        logged: dict[str, int] | None = None,
        hold_until_flush: bool = False,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.flush_every_s = flush_every_s
        self.flush_timeout_s = flush_timeout_s
        self.close_timeout_s = close_timeout_s
        self.retry_backoff_s = retry_backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_buffered = max_buffered
        self.failures = 0  # failed send attempts so far
        self.dropped = 0  # metrics dropped because the buffer was full
        self.redone = 0  # metric points not logged: their step was logged before
        self.hold_until_flush = hold_until_flush
        self._last_step: dict[str, int] = dict(logged or {})
        self._held: list[Metric] = []
        self._redone_steps: set[int] = set()
        self._pending: list[Metric] = []
        self._tags: list[RunTag] = []
        self._params: list[Param] = []
        self._artifacts: list[tuple[Path, str]] = []
        self._images: list[tuple[Path, str, int]] = []
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._wake = threading.Event()
        self._closed = False
        self._last_send = time.monotonic()
        self._end_by: float | None = None  # when the last checkpoint's flush and close give up
        # Removed by close(); a killed process's spool is removed by the next tracker.
        self._scratch = ScratchDir(SPOOL_PREFIX)
        self.kept: Path | None = None  # where close() left the artifacts it could not send
        self._thread = threading.Thread(target=self._run, name="sislab-mlflow", daemon=True)
        self._thread.start()

    @property
    def buffered(self) -> int:
        """Records not yet sent (metrics, tags and artifacts)."""
        with self._lock:
            queued = (self._pending, self._tags, self._params, self._artifacts, self._images)
            return sum(len(q) for q in queued)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        now_ms = int(time.time() * 1000)
        fresh = {k: v for k, v in metrics.items() if step > self._last_step.get(k, -1)}
        self.redone += len(metrics) - len(fresh)
        if len(fresh) < len(metrics):
            self._redone_steps.add(step)
        elif fresh and self._redone_steps:
            # The first new step after redone ones: how many steps this worker trained again
            # whose points its run already held (what a restart cost; ``sislab chaos`` sums it).
            fresh[REDONE_STEPS_KEY] = float(len(self._redone_steps))
            self._redone_steps.clear()
        self._last_step.update(dict.fromkeys(fresh, step))
        points = [Metric(k, float(v), now_ms, step) for k, v in fresh.items()]
        if self.hold_until_flush:
            with self._lock:
                self._held += points
            return
        self._queue_metrics(points)

    def _queue_metrics(self, points: list[Metric]) -> None:
        if not points:
            return
        with self._lock:
            self._pending += points
            overflow = len(self._pending) - self.max_buffered
            if overflow > 0:
                del self._pending[:overflow]
                self.dropped += overflow
                logger.warning("MLflow buffer full: dropped the %d oldest metrics", overflow)
            self._idle.clear()
        if time.monotonic() - self._last_send > self.flush_every_s:
            self._wake.set()

    def _spool_copy(self, path: Path) -> Path:
        folder = Path(tempfile.mkdtemp(dir=self._scratch.path))
        copy = folder / Path(path).name
        shutil.copyfile(path, copy)  # the caller may delete its file as soon as we return
        return copy

    def log_artifact(self, path: Path, artifact_path: str) -> None:
        """Queue a file; one still queued for the same artifact path is replaced (the store would
        overwrite it anyway), so a best checkpoint improved twice during an outage uploads once."""
        copy = self._spool_copy(path)
        with self._lock:
            stale = [a for a in self._artifacts if (a[0].name, a[1]) == (copy.name, artifact_path)]
            self._artifacts = [a for a in self._artifacts if a not in stale]
            self._artifacts.append((copy, artifact_path))
            self._idle.clear()
        for old, _ in stale:
            shutil.rmtree(old.parent, ignore_errors=True)
        self._wake.set()

    def log_image(self, path: Path, key: str, step: int) -> None:
        """Queue an image for MLflow's per-step image view (``MlflowClient.log_image``)."""
        copy = self._spool_copy(path)
        with self._lock:
            self._images.append((copy, key, step))
            self._idle.clear()
        self._wake.set()

    def log_params(self, params: dict[str, str]) -> None:
        if not params:
            return
        with self._lock:
            self._params += params_of(params)
            self._idle.clear()
        self._wake.set()

    def set_tags(self, tags: dict[str, str]) -> None:
        if not tags:
            return
        with self._lock:
            self._tags += [RunTag(k, redact(str(v))) for k, v in tags.items()]
            self._idle.clear()
        self._wake.set()

    def flush(self, timeout_s: float | None = None, *, last: bool = False) -> bool:
        """Ask the sender to send everything now; wait at most ``timeout_s`` (default
        ``flush_timeout_s``; with ``last``, what is left of ``close_timeout_s``, a budget the
        last checkpoint's flush and ``close`` share). Returns True when nothing is left queued."""
        with self._lock:
            held, self._held = self._held, []
        self._queue_metrics(held)
        self._wake.set()
        if last:
            if self._end_by is None:
                self._end_by = time.monotonic() + self.close_timeout_s
            timeout_s = max(0.0, self._end_by - time.monotonic())
        done = self._idle.wait(self.flush_timeout_s if timeout_s is None else timeout_s)
        if not done:
            logger.warning(
                "MLflow unreachable: %d records kept for later (%d failed attempts)",
                self.buffered,
                self.failures,
            )
        return done

    def unsent_metrics(self) -> list[tuple[str, float, int, int]]:
        """Metric points not yet sent (held or queued), oldest first."""
        with self._lock:
            points = [*self._pending, *self._held]
        return [(m.key, m.value, m.timestamp, m.step) for m in points]

    def resend(self, points: list[tuple[str, float, int, int]]) -> None:
        """Queue the points a checkpoint of this run carried unsent (before any new step); a
        point at or below its key's last logged step is in the run already and is skipped."""
        fresh = []
        for key, value, timestamp, step in points:
            if step > self._last_step.get(key, -1):
                fresh.append(Metric(key, float(value), int(timestamp), int(step)))
                self._last_step[key] = step
        self._queue_metrics(fresh)

    def close(self) -> bool:
        """Send what is queued (waiting at most ``close_timeout_s``, counted from the last
        checkpoint's flush when there was one) and stop the sender."""
        done = self.flush(last=True)
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=1.0)
        if done:
            self._scratch.close()
        else:
            self.kept = self._scratch.keep(UNSENT_PREFIX)
            logger.error("MLflow: %d records could not be sent; artifacts kept in %s",
                         self.buffered, self.kept)  # fmt: skip
        return done

    def _run(self) -> None:
        backoff, failing = self.retry_backoff_s, 0
        while not self._closed:
            self._wake.wait(timeout=self.flush_every_s)
            self._wake.clear()
            if self._closed:
                return
            try:
                self._send_all()
            except Exception as exc:  # any store error: keep the records, retry later
                self.failures += 1
                failing += 1
                # The first failure of an outage is a warning, the retries are debug noise.
                logger.log(
                    logging.WARNING if failing == 1 else logging.DEBUG,
                    "MLflow send failed (attempt %d, retry in %.1f s): %s",
                    failing,
                    backoff,
                    redact(str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__),
                )
                if self._closed:
                    return
                time.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                self._wake.set()
                continue
            if failing:
                logger.warning("MLflow reachable again after %d failed attempts", failing)
            backoff, failing = self.retry_backoff_s, 0

    def _send_all(self) -> None:
        """Send queued tags, artifacts and metrics; each leaves the queue only once sent."""
        self._last_send = time.monotonic()
        while True:
            with self._lock:
                tags, artifact = list(self._tags), self._artifacts[0] if self._artifacts else None
                params = self._params[:100]  # MLflow caps a batch at 100 params
                image = self._images[0] if self._images else None
                chunk = self._pending[:1000]  # MLflow caps a batch at 1000 metrics
                if not (tags or params or artifact or image or chunk):
                    self._idle.set()
                    return
            if tags:
                self.client.log_batch(self.run_id, tags=tags)
                with self._lock:
                    del self._tags[: len(tags)]
            elif params:
                self.client.log_batch(self.run_id, params=params)
                with self._lock:
                    del self._params[: len(params)]
            elif artifact is not None:
                self.client.log_artifact(self.run_id, str(artifact[0]), artifact[1] or None)
                with self._lock:
                    self._artifacts.pop(0)
                shutil.rmtree(artifact[0].parent, ignore_errors=True)
            elif image is not None:
                self._send_image(*image)
                with self._lock:
                    self._images.pop(0)
                shutil.rmtree(image[0].parent, ignore_errors=True)
            else:
                self.client.log_batch(self.run_id, metrics=chunk)
                sent = {id(m) for m in chunk}
                with self._lock:  # by identity: the buffer may have dropped some meanwhile
                    self._pending = [m for m in self._pending if id(m) not in sent]

    def _send_image(self, path: Path, key: str, step: int) -> None:
        from PIL import Image

        # MLflow 3 writes images/<key>+step+<n>+timestamp+<ms>+<uuid>.png and a .webp preview,
        # which the run's Images tab and the compare view read; synchronous: this is our thread.
        with Image.open(path) as image:
            image.load()
            self.client.log_image(self.run_id, image, key=key, step=step, synchronous=True)
