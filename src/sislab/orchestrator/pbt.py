"""Population-based training: Ray Tune's PBT scheduler over sislab's configurations.

Ray refuses a search algorithm next to PBT, so a PBT sweep hands Tune its configurations (the
grid/random ones ``sislab search show`` lists) as one grid axis of dicts under
:data:`POPULATION_KEY`; PBT's mutations act on the same dict. Exploits clone a donor's Tune
checkpoint, a pointer to its Train checkpoint (``orchestrator.tune_report``), and the trial driver
starts a new Train run from it (``orchestrator.trial.train_run``). Runs on the Tune driver.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler

from sislab.search_spaces.dsl import Choice, Domain, LogUniform, Uniform, to_tune
from sislab.search_spaces.space import SearchSpace, pbt_population
from sislab.spec.models import PbtSpec
from sislab.spec.spec import Spec

POPULATION_KEY = "sislab"


def trial_config(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's configuration (dotted keys) from its Tune config, with or without PBT."""
    inner = config.get(POPULATION_KEY)
    return dict(inner) if isinstance(inner, dict) else dict(config)


def population(spec: Spec, space: SearchSpace) -> list[dict[str, Any]]:
    """The initial configurations (``search_spaces.space.pbt_population``) of a PBT spec."""
    domains = spec.search.scheduler.pbt.domains()
    return pbt_population(space, spec.search.num_samples, spec.train.seed, domains)


class ClipToDomains:
    """PBT's custom explore step: keep perturbed values inside their mutation ranges.

    Ray multiplies a value by a perturbation factor without bounds; a learning rate could leave
    the range the spec was validated for. A class, not a closure: Tune pickles the scheduler.
    """

    def __init__(self, domains: dict[str, Domain]) -> None:
        self.bounds = {
            key: (d.low, d.high)
            for key, d in domains.items()
            if isinstance(d, Uniform | LogUniform)
        }

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        inner = dict(config[POPULATION_KEY])
        for key, (low, high) in self.bounds.items():
            inner[key] = min(max(inner[key], low), high)
        return {**config, POPULATION_KEY: inner}


def mutations(pbt: PbtSpec) -> dict[str, Any]:
    """PBT's ``hyperparam_mutations``: Tune domains for ranges, value lists for choices."""
    out: dict[str, Any] = {}
    for key, domain in pbt.domains().items():
        out[key] = (
            list(domain.values) if isinstance(domain, Choice) else to_tune({key: domain})[key]
        )
    return {POPULATION_KEY: out}


class EpochPBT(PopulationBasedTraining):
    """Ray's PBT, except at a trial's last epoch.

    Ray would still pause a trial there (synchronous mode) or clone a donor into it: the
    restarted trial has nothing left to train, and its final result would become the donor's.

    Args:
        last_epoch: ``train.epochs``.
    """

    def __init__(self, last_epoch: int, **options: Any) -> None:
        super().__init__(**options)
        self.last_epoch = last_epoch

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if result.get("epoch", 0) >= self.last_epoch:
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)


def scheduler(spec: Spec, metric: str, mode: str) -> EpochPBT:
    """PBT on the epoch axis, from ``search.scheduler.pbt``."""
    pbt = spec.search.scheduler.pbt
    return EpochPBT(
        last_epoch=spec.train.epochs,
        # The epoch, not Tune's training_iteration: a trial restarted from a donor's checkpoint
        # continues at the donor's epoch.
        time_attr="epoch",
        metric=metric,
        mode=mode,
        perturbation_interval=pbt.perturbation_interval,
        burn_in_period=pbt.burn_in_period,
        hyperparam_mutations=mutations(pbt),
        quantile_fraction=pbt.quantile_fraction,
        resample_probability=pbt.resample_probability,
        perturbation_factors=tuple(pbt.perturbation_factors),
        custom_explore_fn=ClipToDomains(pbt.domains()),
        synch=pbt.synch,
        # Eval metrics appear only from the first evaluation on.
        require_attrs=False,
    )
