import pytest

from sislab.datasets.presets import preset_geometry
from sislab.errors import SpecError
from sislab.metrics.summary import summarize
from sislab.models.methods.spade import SpadeConfig

# VASIS Table 3: SPADE generator params (M), GFLOPs; discriminator params (M), GFLOPs.
PAPER = {
    "cityscapes": (93.05, 281.64, 5.60, 10.48),
    "ade20k": (96.49, 181.33, 5.84, 7.83),
    "coco-stuff": (97.48, 191.32, 5.90, None),
}


@pytest.mark.parametrize("dataset", sorted(PAPER))
def test_spade_sizes_match_vasis_table3(dataset):
    g_params, g_flops, d_params, d_flops = PAPER[dataset]
    summary = summarize("spade", None, preset_geometry(dataset))
    assert summary.generator_params / 1e6 == pytest.approx(g_params, rel=0.01)
    assert summary.discriminator_params / 1e6 == pytest.approx(d_params, rel=0.02)
    assert summary.encoder_params == 0
    # MACs of convs/linears; the paper's counter also counts bias adds, ReLU, upsampling.
    assert summary.generator_gflops == pytest.approx(g_flops, rel=0.002)
    assert summary.generator_gflops < g_flops
    # the table convention (MACs + bias adds, activation/upsample modules) to the last digit
    assert round(summary.generator_gflops_table, 2) == g_flops
    if d_flops is not None:
        assert round(summary.discriminator_gflops_table, 2) == d_flops
    assert sum(v for k, v in summary.breakdown.items() if k.startswith("generator.")) == (
        summary.generator_params
    )


def test_vae_encoder_is_counted():
    cfg = SpadeConfig(use_vae=True, ngf=8, ndf=8, spade_hidden=8)
    summary = summarize("spade", cfg, preset_geometry("synthetic"))
    assert summary.encoder_params > 0
    assert "encoder.fc_mu" in summary.breakdown


def test_unknown_method_and_wrong_config():
    with pytest.raises(SpecError, match="unknown method 'spad'"):
        summarize("spad", None, preset_geometry("synthetic"))

    class Other(SpadeConfig.__base__):
        pass

    with pytest.raises(SpecError, match="given for method 'spade'"):
        summarize("spade", Other(), preset_geometry("synthetic"))
