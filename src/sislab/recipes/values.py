"""One recipe value (a dotted spec field, its official value and source, the paper's) and the
helpers the per-method tables are written with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

RecipeName = Literal["official", "paper", "none"]
# The table of a method's values that do not depend on the dataset; every dataset's table adds
# to it, and a dataset with no table of its own (synthetic, a custom one) gets only these.
GENERIC = "generic"


class _Same:
    """The paper states the official value (or nothing else)."""

    def __repr__(self) -> str:
        return "SAME"


SAME: Any = _Same()


@dataclass(frozen=True)
class RecipeValue:
    """One training hyperparameter of a recipe.

    Args:
        field: Dotted spec field (``train.lr_g``, ``losses.kl``, ``model.labelmix_weight``).
        official: The value the official code trains with.
        source: Where the official value is: ``repo/file:line`` of /work/official's checkout.
        paper: The paper's value where its text differs, else ``SAME``.
        paper_source: The paper's section or table stating ``paper``.
    """

    field: str
    official: Any
    source: str
    paper: Any = SAME
    paper_source: str = ""

    def value(self, recipe: RecipeName) -> Any:
        """This field's value under ``recipe`` (``official`` or ``paper``)."""
        return self.official if recipe == "official" or self.paper is SAME else self.paper

    def source_of(self, recipe: RecipeName) -> str:
        """Where ``value(recipe)`` comes from."""
        if recipe == "paper" and self.paper is not SAME:
            return self.paper_source
        return self.source


def ttur(
    repo: str, lr_line: str, ttur_line: str, betas: tuple[float, float], betas_line: str
) -> tuple[RecipeValue, ...]:
    """SPADE-style optimiser: ``--lr`` 2e-4 split by TTUR into G lr/2, D lr*2, and Adam betas."""
    where = f"{lr_line} lr 2e-4, TTUR at {ttur_line}"
    return (
        RecipeValue("train.lr_g", 1.0e-4, f"{repo}/{where} (lr/2)"),
        RecipeValue("train.lr_d", 4.0e-4, f"{repo}/{where} (lr*2)"),
        RecipeValue("train.betas", betas, f"{repo}/{betas_line}"),
    )


def schedule(
    epochs: int, decay: int, source: str, batch: int | None = None, batch_source: str = ""
) -> tuple[RecipeValue, ...]:
    """Epochs as niter + niter_decay (``train.epochs``, ``train.lr_decay_epochs``), and batch."""
    values = (
        RecipeValue("train.epochs", epochs, source),
        RecipeValue("train.lr_decay_epochs", decay, source),
    )
    if batch is not None:
        values += (RecipeValue("train.batch_size", batch, batch_source or source),)
    return values
