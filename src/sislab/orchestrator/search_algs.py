"""Search algorithms and schedulers of a sweep, built from the spec's ``search`` section.

grid/random: :class:`SpaceSearcher` hands out the configurations of
:func:`sislab.search_spaces.space.configurations` (conditions, method sub-spaces, suites and
seed repeats expanded by sislab, not by Tune's variant generator, so what ``sislab validate`` and
``sislab search show`` saw is what runs). optuna: TPE with a define-by-run space
(:class:`OptunaSpace`): only active parameters are suggested; a list of metrics makes it
multi-objective. Schedulers: ASHA or PBT (``orchestrator.pbt``) on the epoch axis, or none. Runs
on the Tune driver.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
from typing import Any

from ray.tune.search import Searcher

from sislab.orchestrator.trial import SweepContext, train_driver
from sislab.search_spaces.dsl import Choice, Grid, LogUniform, QUniform, RandInt, Uniform
from sislab.search_spaces.space import (
    SUITE_KEY,
    SearchParam,
    SearchSpace,
    configurations,
    is_active,
    overrides_of,
)
from sislab.search_spaces.trial_spec import split_method, switch_method
from sislab.spec.spec import Spec

logger = logging.getLogger(__name__)


def objectives(spec: Spec) -> tuple[list[str], list[str]]:
    """The search's metrics and one mode per metric."""
    metrics = spec.search.metric if isinstance(spec.search.metric, list) else [spec.search.metric]
    mode = spec.search.mode
    modes = list(mode) if isinstance(mode, list) else [mode] * len(metrics)
    return list(metrics), modes


class SpaceSearcher(Searcher):
    """Tune searcher over a fixed list of configurations (grid/random), resumable.

    Args:
        configs: The trials' configurations, in order.
        metric: Metric (for Tune's bookkeeping only; the order never changes).
        mode: min or max.
    """

    def __init__(self, configs: list[dict[str, Any]], metric: str, mode: str) -> None:
        super().__init__(metric=metric, mode=mode)
        self.configs = configs
        self.next_index = 0
        self.given: dict[str, int] = {}

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # the space is sislab's; Tune's metric/mode are not needed

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if trial_id in self.given:
            return dict(self.configs[self.given[trial_id]])
        if self.next_index >= len(self.configs):
            return Searcher.FINISHED
        self.given[trial_id] = self.next_index
        self.next_index += 1
        return dict(self.configs[self.given[trial_id]])

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        pass

    def get_state(self) -> dict[str, Any]:
        return {"configs": self.configs, "next_index": self.next_index, "given": self.given}

    def set_state(self, state: dict[str, Any]) -> None:
        self.configs = state["configs"]
        self.next_index = state["next_index"]
        self.given = state["given"]

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))


def _scalar(values: list[Any]) -> bool:
    return all(v is None or isinstance(v, bool | int | float | str) for v in values)


def _suggest(trial, param: SearchParam) -> Any:
    d = param.domain
    if isinstance(d, Grid | Choice):
        if _scalar(d.values):
            return trial.suggest_categorical(param.name, list(d.values))
        # Optuna's categorical values are scalars: lists (group schedules) go by index.
        return d.values[trial.suggest_categorical(param.name, list(range(len(d.values))))]
    if isinstance(d, Uniform):
        return trial.suggest_float(param.name, d.low, d.high)
    if isinstance(d, LogUniform):
        return trial.suggest_float(param.name, d.low, d.high, log=True)
    if isinstance(d, RandInt):
        return trial.suggest_int(param.name, d.low, d.high - 1)
    assert isinstance(d, QUniform)
    return trial.suggest_float(param.name, d.low, d.high, step=d.q)


class OptunaSpace:
    """Optuna define-by-run space: suggests only the parameters whose conditions hold.

    Returns the parameters by name with their values (lists included), and the suite index.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def __call__(self, trial) -> dict[str, Any]:
        config: dict[str, Any] = {}
        out: dict[str, Any] = {}
        if self.space.suite:
            index = trial.suggest_categorical(SUITE_KEY, list(range(len(self.space.suite))))
            out[SUITE_KEY] = index
            config.update(self.space.suite[index])
        for param in self.space.params:
            if is_active(param, config):
                value = _suggest(trial, param)
                config[param.key] = value
                out[param.name] = value
        return out


def search_alg(spec: Spec, space: SearchSpace) -> tuple[Searcher, int]:
    """The searcher and Tune's ``num_samples`` for it."""
    metrics, modes = objectives(spec)
    if spec.search.algorithm == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        multi = len(metrics) > 1
        sampler = optuna.samplers.TPESampler(seed=spec.train.seed)
        searcher = OptunaSearch(
            space=OptunaSpace(space),
            metric=metrics if multi else metrics[0],
            mode=modes if multi else modes[0],
            sampler=sampler,
        )
        return searcher, spec.search.num_samples
    configs = configurations(space, spec.search.num_samples, spec.train.seed)
    return SpaceSearcher(configs, metrics[0], modes[0]), len(configs)


def tune_search(spec: Spec, space: SearchSpace) -> tuple[Searcher | None, int, dict[str, Any]]:
    """The Tuner's search algorithm, ``num_samples`` and ``param_space``.

    With PBT, Tune's own variant generator walks the configurations (one grid axis of dicts),
    since Ray refuses a search algorithm next to PBT; otherwise sislab's searcher does.
    """
    if spec.search.scheduler.pbt is not None:
        from ray import tune

        from sislab.orchestrator.pbt import POPULATION_KEY, population

        return None, 1, {POPULATION_KEY: tune.grid_search(population(spec, space))}
    searcher, num_samples = search_alg(spec, space)
    return searcher, num_samples, {}


def scheduler(spec: Spec):
    """ASHA or PBT on the epoch axis, or None (FIFO)."""
    metrics, modes = objectives(spec)
    if spec.search.scheduler.pbt is not None:
        from sislab.orchestrator.pbt import scheduler as pbt_scheduler

        return pbt_scheduler(spec, metrics[0], modes[0])
    asha = spec.search.scheduler.asha
    if asha is None:
        return None
    from ray.tune.schedulers import ASHAScheduler

    # The epoch, not Tune's training_iteration: iterations restart at 1 after a restore (ray #44256).
    return ASHAScheduler(
        time_attr="epoch",
        metric=metrics[0],
        mode=modes[0],
        max_t=spec.train.epochs,
        grace_period=asha.grace_period,
        reduction_factor=asha.reduction_factor,
    )


def search_driver(config: dict[str, Any], context: SweepContext, space: SearchSpace) -> None:
    """Tune trainable: map the trial's config to overrides, switch its method, train it."""
    from sislab.orchestrator.pbt import trial_config

    method, overrides = split_method(overrides_of(trial_config(config), space))
    if method is not None and method != context.spec_data.get("method"):
        context = dataclasses.replace(context, spec_data=switch_method(context.spec_data, method))
    (context.trial_fn or train_driver)(overrides, context)


def pareto_front(
    points: list[dict[str, Any]], metrics: list[str], modes: list[str]
) -> list[dict[str, Any]]:
    """The points no other point dominates (better or equal in every metric, better in one).

    Args:
        points: Mappings holding every metric (others are ignored).
        metrics: Objective names.
        modes: min or max per objective.
    """
    sign = [1.0 if m == "min" else -1.0 for m in modes]
    valid = [p for p in points if all(isinstance(p.get(m), int | float) for m in metrics)]
    keyed = sorted(
        ((tuple(s * float(p[m]) for s, m in zip(sign, metrics, strict=True)), p) for p in valid),
        key=lambda item: item[0],
    )
    # In lexicographic order a point's dominators come before it, and some dominator of it is on
    # the front (dominance is transitive): comparing with the front so far is enough.
    front: list[tuple[tuple[float, ...], dict[str, Any]]] = []
    for key, p in keyed:
        dominated = any(
            f != key and all(a <= b for a, b in zip(f, key, strict=True)) for f, _ in front
        )
        if not dominated:
            front.append((key, p))
    return [p for _, p in front]
