import pytest

from sislab.datasets.presets import preset_geometry
from sislab.errors import SpecError
from sislab.metrics.summary import summarize
from sislab.models.methods.spade import SpadeConfig

# VASIS Table 3: SPADE generator params (M), GFLOPs; discriminator params (M).
PAPER = {
    "cityscapes": (93.05, 281.64, 5.60),
    "ade20k": (96.49, 181.33, 5.84),
    "coco-stuff": (97.48, 191.32, 5.90),
}


@pytest.mark.parametrize("dataset", sorted(PAPER))
def test_spade_sizes_match_vasis_table3(dataset):
    g_params, g_flops, d_params = PAPER[dataset]
    summary = summarize("spade", None, preset_geometry(dataset))
    assert summary.generator_params / 1e6 == pytest.approx(g_params, rel=0.01)
    assert summary.discriminator_params / 1e6 == pytest.approx(d_params, rel=0.02)
    assert summary.encoder_params == 0
    # MACs of convs/linears; the paper's counter also counts bias adds, ReLU, upsampling.
    assert summary.generator_gflops == pytest.approx(g_flops, rel=0.002)
    assert summary.generator_gflops < g_flops
    assert sum(v for k, v in summary.breakdown.items() if k.startswith("generator.")) == (
        summary.generator_params
    )


def test_vae_encoder_is_counted():
    summary = summarize("spade", SpadeConfig(use_vae=True), preset_geometry("cityscapes"))
    assert summary.encoder_params > 0
    assert "encoder.fc_mu" in summary.breakdown


def test_unknown_method_and_wrong_config():
    with pytest.raises(SpecError, match="unknown method 'spad'"):
        summarize("spad", None, preset_geometry("synthetic"))

    class Other(SpadeConfig.__base__):
        pass

    with pytest.raises(SpecError, match="given for method 'spade'"):
        summarize("spade", Other(), preset_geometry("synthetic"))
