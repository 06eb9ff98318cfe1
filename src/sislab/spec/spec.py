"""The whole spec: top-level fields, the sections of ``models.py``, the per-method ``model:`` union.

``model`` is a discriminated union (on ``method``) of every ``METHODS[name].config``; the top-level
``method`` is copied into it, so a spec file says the method once.
"""

from __future__ import annotations

import difflib
from functools import reduce
from operator import or_
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from sislab.models.registry import METHODS
from sislab.spec.models import (
    CostSpec,
    DatasetSpec,
    EvalSpec,
    LossesSpec,
    ResourcesSpec,
    SearchSpec,
    StorageSpec,
    StrictModel,
    TrackingSpec,
    TrainSpec,
    WeightsSpec,
)

DEFAULT_METHOD = "spade"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"

# One member per registered method, told apart by the config's `method` literal.
ModelConfig = Annotated[
    reduce(or_, [m.config for m in METHODS.values()]), Field(discriminator="method")
]


def unknown_method_message(name: Any) -> str:
    """The message for a method name that is not registered, with the closest names."""
    close = difflib.get_close_matches(str(name), METHODS, n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ";"
    return f"unknown method {name!r}{hint} registered methods: {', '.join(sorted(METHODS))}"


class Spec(StrictModel):
    """A whole sislab spec: one experiment, optionally a search over it."""

    name: str = Field(
        pattern=NAME_PATTERN,
        description="Experiment name (the MLflow experiment unless tracking.experiment is set): "
        "letters, digits, '.', '_' and '-', starting with a letter or digit.",
    )
    method: str = Field(
        DEFAULT_METHOD,
        description=f"Method to train, a key of the method registry: {', '.join(sorted(METHODS))}.",
    )
    dataset: DatasetSpec = Field(default_factory=DatasetSpec, description="The data.")
    model: ModelConfig = Field(
        # None, validated: the before-validator turns it into the chosen method's defaults
        # (a default_factory would keep SPADE's config for `method: scgan` without `model:`).
        None,
        validate_default=True,
        description="Method-specific architecture options (see the section of each method); "
        "`method` is copied from the top level.",
    )
    train: TrainSpec = Field(default_factory=TrainSpec, description="The optimisation.")
    losses: LossesSpec = Field(default_factory=LossesSpec, description="Loss weights.")
    eval: EvalSpec = Field(default_factory=EvalSpec, description="Evaluation.")
    search: SearchSpec = Field(default_factory=SearchSpec, description="The search.")
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec, description="Ray resources per trial."
    )
    tracking: TrackingSpec = Field(default_factory=TrackingSpec, description="MLflow tracking.")
    storage: StorageSpec = Field(
        default_factory=StorageSpec, description="Results and checkpoints storage."
    )
    weights: WeightsSpec = Field(default_factory=WeightsSpec, description="Pretrained weights.")
    cost: CostSpec = Field(
        default_factory=CostSpec,
        description="Prices of device time (see docs/planning.md); `sislab estimate` and the "
        "parent run's cost/total use them.",
    )

    @field_validator("method")
    @classmethod
    def _method_registered(cls, method: str) -> str:
        if method not in METHODS:
            raise ValueError(unknown_method_message(method))
        return method

    @field_validator("model", mode="before")
    @classmethod
    def _method_into_model(cls, model: Any, info) -> Any:
        # Fields validate in declaration order, so a valid `method` is already in info.data.
        method = info.data.get("method")
        if method is None:
            # The method itself is invalid and reported; this section cannot be checked.
            return METHODS[DEFAULT_METHOD].config()
        if model is None:
            return {"method": method}
        if isinstance(model, BaseModel):
            model = model.model_dump()
        if not isinstance(model, dict):
            return model  # pydantic reports the wrong type
        given = model.get("method", method)
        if given != method:
            error = ValueError(
                f"model.method {given!r} conflicts with method {method!r}; "
                "remove model.method (the top-level method is copied into model)"
            )
            raise ValidationError.from_exception_data(
                "model",
                [
                    {
                        "type": "value_error",
                        "loc": ("method",),
                        "input": given,
                        "ctx": {"error": error},
                    }
                ],
            )
        return {**model, "method": method}
