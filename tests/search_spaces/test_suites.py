"""Built-in ablation suites: each gives exactly its paper table's rows, and each row validates."""

from __future__ import annotations

import argparse
import json

import pytest

from sislab.cli import search as search_cli
from sislab.search_spaces.space import build_space, grid_configurations
from sislab.search_spaces.suites import SUITES
from sislab.spec.loader import collect_problems

SC, VS, VC, GD = "scgan", "va-spade", "va-clade", "groupdnet"


def _rows(method: str, field: str, values: list) -> list[dict]:
    return [{"method": method, f"model.{field}": v} for v in values]


def _vasis_table4(method: str) -> list[dict]:
    pairs = [(False, "none"), (True, "none"), (False, "learn"), (True, "learn")]
    return [
        {"method": method, "model.semantic_noise": n, "model.position_code": p} for n, p in pairs
    ]


def _vasis_table5(method: str) -> list[dict]:
    return [
        {"method": method},
        {"method": method, "model.noise_channels": "one"},
        {"method": method, "model.noise_mode": "plus"},
        {"method": method, "model.noise_mode": "rand"},
        {"method": method, "model.position_code": "fix"},
        {"method": method, "model.position_code": "relative"},
    ]


# The rows of each paper table, written out from the papers (/work/shared/papers).
EXPECTED = {
    # SC-GAN Table 3: Conv+BN, Conv+SCN, SCC+BN, SCC+SCN.
    "scgan.table3_ops": _rows(SC, "ops", ["conv_bn", "conv_scn", "scc_bn", "scc_scn"]),
    # SC-GAN Table 4: w/o L_s, L_s l1, l2, vgg.
    "scgan.svg_loss": _rows(SC, "svg_loss", ["none", "l1", "l2", "vgg"]),
    # SC-GAN Table 5: n = 8, 4, 2, 1 with norm candidates fixed to 4.
    "scgan.table5_candidates": [
        {"method": SC, "model.num_candidates": n, "model.num_norm_candidates": 4}
        for n in (8, 4, 2, 1)
    ],
    # SC-GAN Table 6: Sigmoid, Tanh, ReLU, None, Softmax.
    "scgan.table6_nonlinearity": _rows(
        SC, "nonlinearity", ["sigmoid", "tanh", "relu", "none", "softmax"]
    ),
    # VASIS Table 4: (semantic noise, position code) no/no, yes/no, no/yes, yes/yes per method.
    "vasis.table4_noise_position": _vasis_table4(VS) + _vasis_table4(VC),
    # VASIS Table 5: full, one-channel, plus, rand, absolute, relative per method.
    "vasis.table5_variants": _vasis_table5(VS) + _vasis_table5(VC),
    # GroupDNet Table 3: GroupDNet, w/o map, w/o split, ->GroupNorm, w/o SyncBN, w/o SpecNorm.
    "groupdnet.table3_ablations": [
        {"method": GD},
        {"method": GD, "model.use_latent_map": False},
        {"method": GD, "model.use_split": False},
        {"method": GD, "model.norm": "group"},
        {"method": GD, "model.use_sync_bn": False},
        {"method": GD, "model.spectral_norm_g": False},
    ],
    # GroupDNet Table 4 DeepFashion schedule between equal groups and none.
    "groupdnet.schedules": _rows(
        GD,
        "decoder_groups",
        [
            [8, 8, 8, 8, 8, 8, 8],
            [8, 8, 8, 4, 4, 4, 2],
            [8, 8, 4, 4, 2, 2, 1],
            [8, 4, 2, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1, 1],
        ],
    ),
    # GroupDNet Table 1: MulNet, GroupNet, GroupEnc, GroupDec, VSPADE, GroupDNet (BicycleGAN and
    # DSCGAN are other code bases).
    "smis.table1_baselines": _rows(
        GD, "variant", ["mulnet", "groupnet", "groupenc", "groupdec", "vspade", "groupdnet"]
    ),
}


def _cli(argv: list[str], capsys) -> str:
    parser = argparse.ArgumentParser()
    search_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    assert args.handler(args) == 0
    return capsys.readouterr().out


def test_every_suite_is_expected():
    assert set(SUITES) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_show_suite_json_gives_the_table(name, capsys):
    data = json.loads(_cli(["search", "show", "--suite", name, "--json"], capsys))
    assert data["configurations"] == EXPECTED[name]
    assert data["count"] == len(EXPECTED[name])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_suite_configuration_validates(name):
    spec, problems = collect_problems({"name": "x", "search": {"suite": name}})
    assert problems == [] and spec is not None


def test_list_names_suites_with_sources(capsys):
    out = _cli(["search", "list"], capsys)
    for name in SUITES:
        assert name in out
    assert "Table 3" in out and "BicycleGAN" in out


def test_suite_crossed_with_own_dimension(tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text(
        "name: x\nsearch:\n  algorithm: grid\n  suite: scgan.table3_ops\n  repeats: 2\n"
        "  space:\n    train.lr_g: {grid: [1.0e-4, 2.0e-4]}\n"
    )
    data = json.loads(_cli(["search", "show", str(path), "--json"], capsys))
    assert data["count"] == 4 * 2 * 2
    assert {c["model.ops"] for c in data["configurations"]} == {
        "conv_bn", "conv_scn", "scc_bn", "scc_scn"
    }  # fmt: skip
    space = build_space({}, suite=SUITES["scgan.table3_ops"].configurations)
    assert grid_configurations(space) == EXPECTED["scgan.table3_ops"]


def test_unknown_suite_is_a_spec_problem():
    _, problems = collect_problems({"name": "x", "search": {"suite": "scgan.table9"}})
    assert problems and problems[0][0] == ("search", "suite")
    assert "unknown suite" in problems[0][1]
