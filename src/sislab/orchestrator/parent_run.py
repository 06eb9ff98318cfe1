"""The sweep's parent run as the answer to the sweep's question.

At the start it holds what every trial shares (params), the search space (param ``search.space``
and artifact ``search_space.json``); at the end (``sislab run`` and ``sislab resume``) the best
trial under the sweep's metric (metrics ``best/*``, tags ``sislab.best_trial_run_id`` and
``sislab.best_trial``) and a Markdown description (MLflow's ``mlflow.note.content``): the trials
table, the search space, the evaluation protocol and every caveat the trials recorded.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from mlflow.tracking import MlflowClient

from sislab.metrics.protocol import PROTOCOL_ID_TAG, SUBSTITUTE_TAG
from sislab.search_spaces.space import METHOD_KEY, SEED_KEY
from sislab.search_spaces.validate import space_of
from sislab.spec.spec import Spec
from sislab.trainers.mlflow_tracker import NOTE_TAG, TRIAL_TAG
from sislab.trainers.run_names import SEPARATOR, fields_of_label, label_of_run_name
from sislab.trainers.run_params import MAX_PARAM_CHARS

logger = logging.getLogger(__name__)

SEARCH_SPACE_ARTIFACT = "search_space.json"
BEST_RUN_TAG = "sislab.best_trial_run_id"
BEST_NAME_TAG = "sislab.best_trial"
# Trial tags whose value is a caveat for the sweep's numbers when it starts like this.
CAVEAT_TAGS = {"sislab.perceptual_loss": "off"}
# Trials listed in the description; MLflow cuts a tag at 8,000 characters, which a 200-trial table
# passes, taking the protocol, caveats and space with it. More trials: the best ones and counts.
DESCRIPTION_ROWS = 25


def varied_keys(spec: Spec) -> list[str]:
    """Dotted fields the sweep sets per trial, the method first: its space's and methods' fields,
    a suite's, the seed of repeats, PBT's mutations."""
    space = space_of(spec)
    keys = [p.key for p in space.params]
    keys += [k for config in space.suite for k in config]
    if space.repeats > 1:
        keys.append(SEED_KEY)
    if spec.search.methods:
        keys.append(METHOD_KEY)
    pbt = spec.search.scheduler.pbt
    if pbt is not None:
        keys += list(pbt.mutations)
    unique = list(dict.fromkeys(keys))
    return sorted(unique, key=lambda k: k != METHOD_KEY)  # stable: the method first


def search_space_record(spec: Spec) -> dict[str, Any]:
    """The search as JSON data: space, method sub-spaces, suite, repeats, algorithm, objective."""
    search = spec.model_dump(mode="json")["search"]
    record = {k: search[k] for k in ("space", "methods", "suite") if search[k]}
    if search["repeats"] > 1:
        record["repeats"] = search["repeats"]
    pbt = search["scheduler"]["pbt"]
    if pbt:
        record["pbt_mutations"] = pbt["mutations"]
    record.update({k: search[k] for k in ("algorithm", "metric", "mode", "num_samples")})
    return record


def search_params(spec: Spec) -> dict[str, str]:
    """Parent params of the search itself (``search.space`` as JSON, algorithm, metric, mode)."""
    record = search_space_record(spec)
    space = {k: v for k, v in record.items() if k in ("space", "methods", "suite", "repeats")}
    params = {"search.space": json.dumps(space, sort_keys=True)[:MAX_PARAM_CHARS]}
    for key in ("algorithm", "metric", "mode", "num_samples"):
        params[f"search.{key}"] = json.dumps(record[key]) if isinstance(record[key], list) else (
            str(record[key])
        )  # fmt: skip
    return params


@dataclass(frozen=True)
class TrialRow:
    """One trial in the parent's table."""

    run_id: str
    name: str
    status: str
    fields: dict[str, str]
    score: float | None
    tags: dict[str, str]
    metrics: dict[str, float]


def trial_rows(runs, metric: str) -> list[TrialRow]:
    """The table rows of trial runs, in trial id order; ``score`` is the run's ``metric``."""
    rows = []
    for run in runs:
        name = run.info.run_name or ""
        value = run.data.metrics.get(metric)
        rows.append(
            TrialRow(
                run_id=run.info.run_id,
                name=name,
                status=run.info.status,
                fields=fields_of_label(label_of_run_name(name)),
                score=value if value is not None and math.isfinite(value) else None,
                tags=dict(run.data.tags),
                metrics=dict(run.data.metrics),
            )
        )
    return sorted(rows, key=lambda r: r.tags.get(TRIAL_TAG, r.run_id))


def best_row(rows: list[TrialRow], mode: str) -> TrialRow | None:
    """The finished trial with the best score (None when no trial has one)."""
    scored = [r for r in rows if r.score is not None and r.status == "FINISHED"]
    if not scored:
        return None
    sign = 1.0 if mode == "min" else -1.0
    return min(scored, key=lambda r: sign * r.score)


def caveats(rows: list[TrialRow]) -> list[str]:
    """What qualifies the sweep's numbers, with the trials it applies to."""
    counts: Counter[str] = Counter()
    for row in rows:
        for tag, start in CAVEAT_TAGS.items():
            value = row.tags.get(tag, "")
            if value.startswith(start):
                counts[f"{tag.removeprefix('sislab.').replace('_', ' ')} {value}"] += 1
        substitutes = row.tags.get(SUBSTITUTE_TAG, "none")
        if substitutes != "none":
            counts[f"metrics computed with substitute weights ({substitutes}): not comparable "
                   "with published numbers"] += 1  # fmt: skip
        if row.status != "FINISHED":
            counts[f"trial {row.status.lower()}"] += 1
    total = len(rows)
    return [f"{text} ({n}/{total} trials)" for text, n in sorted(counts.items())]


def ranked(rows: list[TrialRow], mode: str) -> list[TrialRow]:
    """Rows by score under ``mode`` (unscored last, in trial order)."""
    sign = 1.0 if mode == "min" else -1.0
    return sorted(rows, key=lambda r: (r.score is None, sign * (r.score or 0.0)))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value).replace("|", "\\|")


def render_description(
    name: str, metric: str, mode: str, rows: list[TrialRow], space: dict[str, Any]
) -> str:
    """The parent run's Markdown description: best trial, trials table, space, protocol, caveats."""
    best = best_row(rows, mode)
    lines = [f"## Sweep `{name}`", ""]
    if best is None:
        lines += [f"No finished trial reported `{metric}`.", ""]
    else:
        lines += [f"Best trial under `{metric}` ({mode}): **{best.name}** = {best.score:.4g}", ""]
    shown = rows
    if len(rows) > DESCRIPTION_ROWS:
        counts = Counter(r.status.lower() for r in rows)
        listed = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        lines += [
            f"{len(rows)} trials ({listed}); the best {DESCRIPTION_ROWS} under `{metric}` below, "
            "all of them in this run's child runs (MLflow runs table) and in the run folder's "
            "`trials.csv`.",
            "",
        ]
        shown = ranked(rows, mode)[:DESCRIPTION_ROWS]
    columns = sorted({k for r in rows for k in r.fields}, key=lambda k: (k != METHOD_KEY, k))
    lines.append("| trial | " + " | ".join([*columns, "status", metric]) + " |")
    lines.append("|" + "---|" * (len(columns) + 3))
    for r in shown:
        trial = r.name.rsplit(SEPARATOR, 1)[-1]
        cells = [trial, *(r.fields.get(c) for c in columns), r.status, r.score]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    protocols = sorted({r.tags[PROTOCOL_ID_TAG] for r in rows if PROTOCOL_ID_TAG in r.tags})
    lines += ["", "### Evaluation protocol", ""]
    lines.append(", ".join(f"`{p}`" for p in protocols) if protocols else "no evaluation metrics")
    if len(protocols) > 1:
        lines.append(" (differs between trials: their eval/* numbers are not comparable)")
    notes = caveats(rows)
    lines += ["", "### Caveats", ""]
    lines += [f"- {c}" for c in notes] if notes else ["none recorded"]
    lines += ["", "### Search space", "", "```json", json.dumps(space, indent=2), "```"]
    return "\n".join(lines)


def metric_name(metric: str) -> str:
    """``eval/fid`` and ``best/fid`` -> ``fid``; other metrics keep their name."""
    return metric.split("/", 1)[1] if metric.startswith(("eval/", "best/")) else metric


def record_outcome(client: MlflowClient, spec: Spec, parent_run_id: str, runs) -> None:
    """Log the best trial (metrics, tags) and the description on the parent run.

    Args:
        client: MLflow client.
        spec: The sweep's spec.
        parent_run_id: The parent run.
        runs: The sweep's trial runs (MLflow ``Run`` objects).
    """
    from sislab.orchestrator.search_algs import objectives

    metrics, modes = objectives(spec)
    metric, mode = metrics[0], modes[0]
    rows = trial_rows(runs, metric)
    description = render_description(spec.name, metric, mode, rows, search_space_record(spec))
    client.set_tag(parent_run_id, NOTE_TAG, description)
    best = best_row(rows, mode)
    if best is None:
        logger.warning("no finished trial reported %s: the parent run has no best/*", metric)
        return
    values = {f"best/{metric_name(metric)}": best.score}
    values.update(
        {f"best/{k.removeprefix('eval/')}": v for k, v in best.metrics.items()
         if k.startswith("eval/") and f"best/{k.removeprefix('eval/')}" not in values}
    )  # fmt: skip
    for key, value in values.items():
        client.log_metric(parent_run_id, key, value)
    client.set_tag(parent_run_id, BEST_RUN_TAG, best.run_id)
    client.set_tag(parent_run_id, BEST_NAME_TAG, best.name)
