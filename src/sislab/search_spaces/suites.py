"""Built-in ablation suites: the rows of the papers' ablation tables as configurations.

Each configuration is dotted spec fields -> values and names its ``method``, so a suite runs from
any base spec (``search.suite: NAME``); a spec's own ``search.space`` is crossed with it. Rows
whose model sislab does not implement are listed in ``omitted`` (and said by ``search list``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sislab.errors import SpecError
from sislab.search_spaces.schedules import halve_every


@dataclass(frozen=True)
class Suite:
    """A named ablation: where it comes from and its configurations (one per table row).

    Args:
        name: ``paper.table``-style name.
        source: Paper and table the rows come from.
        rows: Row label -> configuration (dotted field -> value).
        omitted: Rows of the table that are not reproducible here, with why.
    """

    name: str
    source: str
    rows: dict[str, dict[str, Any]]
    omitted: tuple[str, ...] = field(default_factory=tuple)

    @property
    def configurations(self) -> list[dict[str, Any]]:
        """The configurations in table order."""
        return [dict(c) for c in self.rows.values()]


def _scgan(**model: Any) -> dict[str, Any]:
    return {"method": "scgan", **{f"model.{k}": v for k, v in model.items()}}


def _va(method: str, **model: Any) -> dict[str, Any]:
    return {"method": method, **{f"model.{k}": v for k, v in model.items()}}


def _gdn(**model: Any) -> dict[str, Any]:
    return {"method": "groupdnet", **{f"model.{k}": v for k, v in model.items()}}


_VASIS_TABLE4 = {
    f"{method} noise={noise} position={pos}": _va(method, semantic_noise=noise, position_code=pos)
    for method in ("va-spade", "va-clade")
    for noise, pos in ((False, "none"), (True, "none"), (False, "learn"), (True, "learn"))
}
# Table 5 rows per method: the full model, then the variants (the seed text drops the labels of
# the last two rows; by the prose they are the absolute and the relative position code).
_VASIS_TABLE5_VARIANTS: dict[str, dict[str, Any]] = {
    "full": {},
    "one-channel": {"noise_channels": "one"},
    "plus": {"noise_mode": "plus"},
    "rand": {"noise_mode": "rand"},
    "absolute position": {"position_code": "fix"},
    "relative position": {"position_code": "relative"},
}

SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            "scgan.table3_ops",
            "SC-GAN (Wang et al. 2021) Table 3: operators of the SRG (Cityscapes)",
            {
                "Conv+BN": _scgan(ops="conv_bn"),
                "Conv+SCN": _scgan(ops="conv_scn"),
                "SCC+BN": _scgan(ops="scc_bn"),
                "SCC+SCN": _scgan(ops="scc_scn"),
            },
        ),
        Suite(
            "scgan.svg_loss",
            "SC-GAN Table 4: semantic vector generation loss L_s (Cityscapes)",
            {
                "w/o L_s": _scgan(svg_loss="none"),
                "L_s (l1)": _scgan(svg_loss="l1"),
                "L_s (l2)": _scgan(svg_loss="l2"),
                "L_s (vgg)": _scgan(svg_loss="vgg"),
            },
        ),
        Suite(
            "scgan.table5_candidates",
            "SC-GAN Table 5: shared weight candidates n of SCC, norm candidates fixed to 4",
            {f"n = {n}": _scgan(num_candidates=n, num_norm_candidates=4) for n in (8, 4, 2, 1)},
        ),
        Suite(
            "scgan.table6_nonlinearity",
            "SC-GAN Table 6: nonlinear function g on the semantic vectors (Cityscapes)",
            {
                name: _scgan(nonlinearity=value)
                for name, value in (
                    ("Sigmoid", "sigmoid"),
                    ("Tanh", "tanh"),
                    ("ReLU", "relu"),
                    ("None", "none"),
                    ("Softmax", "softmax"),
                )
            },
        ),
        Suite(
            "vasis.table4_noise_position",
            "VASIS (Tab. 4): semantic noise x learnable position code, VA-SPADE and VA-CLADE",
            _VASIS_TABLE4,
        ),
        Suite(
            "vasis.table5_variants",
            "VASIS (Tab. 5): variants of semantic noise and position code, VA-SPADE and VA-CLADE",
            {
                f"{method} {row}": _va(method, **fields)
                for method in ("va-spade", "va-clade")
                for row, fields in _VASIS_TABLE5_VARIANTS.items()
            },
        ),
        Suite(
            "groupdnet.table3_ablations",
            "GroupDNet (Zhu et al. 2020) Table 3: ablations on DeepFashion",
            {
                "GroupDNet": _gdn(),
                "w/o map": _gdn(use_latent_map=False),
                "w/o split": _gdn(use_split=False),
                "->GroupNorm": _gdn(norm="group"),
                "w/o SyncBN": _gdn(use_sync_bn=False),
                "w/o SpecNorm": _gdn(spectral_norm_g=False),
            },
        ),
        Suite(
            "groupdnet.schedules",
            "GroupDNet Table 4 (DeepFashion decoder G) and Appendix E: group-decrease schedules "
            "from equal groups (GroupNet-like) to none (GroupEnc-like)",
            {
                "G=8 throughout": _gdn(decoder_groups=[8] * 7),
                "halve every 3": _gdn(decoder_groups=halve_every(3, 8, 7)),
                "Table 4 (halve every 2)": _gdn(decoder_groups=halve_every(2, 8, 7)),
                "halve every 1": _gdn(decoder_groups=halve_every(1, 8, 7)),
                "G=1 throughout": _gdn(decoder_groups=[1] * 7),
            },
        ),
        Suite(
            "smis.table1_baselines",
            "GroupDNet Table 1: SMIS baselines on DeepFashion",
            {
                "MulNet": _gdn(variant="mulnet"),
                "GroupNet": _gdn(variant="groupnet"),
                "Group Enc": _gdn(variant="groupenc"),
                "Group Dec": _gdn(variant="groupdec"),
                "VSPADE": _gdn(variant="vspade"),
                "GroupDNet": _gdn(variant="groupdnet"),
            },
            omitted=("BicycleGAN and DSCGAN: other code bases, not methods of sislab",),
        ),
    )
}


def get_suite(name: str) -> Suite:
    """The suite ``name``.

    Raises:
        SpecError: No such suite; the message lists them.
    """
    if name not in SUITES:
        import difflib

        close = difflib.get_close_matches(name, SUITES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SpecError(
            f"unknown suite {name!r}{hint}",
            fix=f"`sislab search list` names them: {', '.join(SUITES)}",
        )
    return SUITES[name]
