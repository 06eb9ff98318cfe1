"""The papers' segmenters: official parameter counts, class counts, strict loading by registry.

Expected parameter counts come from the official code (every ``nn.Parameter``, the frozen DRN
upsampling kernel included), counted on transcriptions of fyu/drn ``segment.DRNSeg('drn_d_105',
19)``, kazuto1011/deeplab-pytorch ``DeepLabV2_ResNet101_MSC(n_classes=182)`` and
CSAILVision/semantic-segmentation-pytorch ``build_encoder('resnet101')`` +
``build_decoder('upernet', fc_dim=2048, num_class=150)``; those transcriptions also gave the same
state-dict keys and shapes and, with the same weights, the same logits as these modules.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from sislab.errors import DataError, WeightsError
from sislab.metrics.segmentation import IGNORE_INDEX
from sislab.metrics.segmenters import SEGMENTERS, load_segmenter

PARAMS = {
    "drn_d_105_cityscapes": 54_302_915,
    "deeplabv2_cocostuff164k": 55_919_384,
    "upernet101_ade20k": 83_214_422,  # encoder 42_623_936 + decoder 40_590_486
}
PART_PARAMS = {"encoder": 42_623_936, "decoder": 40_590_486}
FIRST_KEYS = {
    "drn_d_105_cityscapes": ("base.0.0.weight", "base.5.22.conv2.weight", "up.weight"),
    "deeplabv2_cocostuff164k": (
        "base.layer1.conv1.conv.weight",
        "base.layer4.block1.shortcut.bn.running_var",
        "base.aspp.c3.bias",
    ),
    "upernet101_ade20k": (
        "encoder.layer3.22.conv3.weight",
        "decoder.fpn_out.2.0.0.weight",
        "decoder.conv_last.1.bias",
    ),
}


@pytest.mark.parametrize("name", sorted(SEGMENTERS))
def test_builds_with_official_size_and_classes(name: str) -> None:
    spec = SEGMENTERS[name]
    net = spec.build().eval()
    assert sum(p.numel() for p in net.parameters()) == PARAMS[name]
    assert set(FIRST_KEYS[name]) <= set(net.state_dict())
    for part, _ in spec.parts:
        if part:
            assert sum(p.numel() for p in net.get_submodule(part).parameters()) == PART_PARAMS[part]
    with torch.no_grad():
        logits = net(torch.randn(1, 3, 48, 64))
    assert logits.shape[1] == spec.num_classes


def _save_state(module: torch.nn.Module, path: Path) -> str:
    torch.save(module.state_dict(), path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(SEGMENTERS))
def test_saved_state_loads_strictly_through_the_registry(name: str, tmp_path: Path) -> None:
    spec = SEGMENTERS[name]
    torch.manual_seed(1)
    source = spec.build()
    paths, pins = {}, {}
    for part, weights_name in spec.parts:
        path = tmp_path / f"{weights_name}.pth"
        pins[weights_name] = _save_state(source.get_submodule(part) if part else source, path)
        paths[weights_name] = str(path)
    seg = load_segmenter(name, paths=paths, sha256=pins, num_classes=spec.dataset_classes)
    assert [w.sha256 for w in seg.weights] == [pins[n] for _, n in spec.parts]
    assert not seg.substitute
    for key, value in source.state_dict().items():
        assert torch.equal(seg.module.state_dict()[key], value), key
    labels = seg.predict(torch.rand(2, 3, 40, 56) * 2 - 1)
    assert labels.shape == (2, 40, 56)
    assert int(labels.min()) >= 0 and int(labels.max()) < spec.num_classes
    for path in paths.values():
        Path(path).unlink()


def test_dataparallel_prefix_and_old_batchnorm_files_load(tmp_path: Path) -> None:
    torch.manual_seed(2)
    source = SEGMENTERS["drn_d_105_cityscapes"].build()
    state = {
        f"module.{k}": v
        for k, v in source.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    path = tmp_path / "drn.pth"
    torch.save(state, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    seg = load_segmenter(
        "drn_d_105_cityscapes",
        paths={"drn_d_105_cityscapes": str(path)},
        sha256={"drn_d_105_cityscapes": digest},
    )
    assert torch.equal(seg.module.seg.weight, source.seg.weight)
    path.unlink()  # 200 MB: pytest keeps the last runs' temporary folders


def test_a_file_of_another_network_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3, 1, 1)}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(WeightsError, match="does not fit the network"):
        load_segmenter(
            "drn_d_105_cityscapes",
            paths={"drn_d_105_cityscapes": str(path)},
            sha256={"drn_d_105_cityscapes": digest},
        )


def test_unpinned_or_missing_weights_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as err:
        load_segmenter("deeplabv2_cocostuff164k", paths={"deeplabv2_cocostuff164k": "x.pth"})
    text = str(err.value)
    assert "gives no sha256" in text and "weights.sha256.deeplabv2_cocostuff164k" in text
    with pytest.raises(WeightsError) as err:
        load_segmenter("upernet101_ade20k", sha256={"upernet101_ade20k_encoder": "ab" * 32})
    text = str(err.value)
    assert "not found" in text and "weights.paths.upernet101_ade20k_encoder" in text
    with pytest.raises(WeightsError, match="unknown segmenter 'drn'"):
        load_segmenter("drn")


def test_substitute_is_explicit_and_reported(tmp_path: Path) -> None:
    seg = load_segmenter("drn_d_105_cityscapes", allow_substitute=True)
    (info,) = seg.weights
    assert info.substitute and info.sha256 == "" and "not comparable" in info.note
    assert seg.substitute
    # A file that is there but wrong is never replaced by random weights.
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not these weights")
    with pytest.raises(WeightsError, match="does not match"):
        load_segmenter(
            "drn_d_105_cityscapes",
            paths={"drn_d_105_cityscapes": str(bad)},
            sha256={"drn_d_105_cityscapes": "ab" * 32},
            allow_substitute=True,
        )


def test_label_maps_follow_each_papers_dataset() -> None:
    cityscapes = SEGMENTERS["drn_d_105_cityscapes"].label_map()
    assert len(cityscapes) == 35
    assert (int(cityscapes[7]), int(cityscapes[26]), int(cityscapes[33])) == (0, 13, 18)
    assert int(cityscapes[0]) == int(cityscapes[34]) == IGNORE_INDEX
    assert sorted(set(cityscapes.tolist()) - {IGNORE_INDEX}) == list(range(19))
    ade = SEGMENTERS["upernet101_ade20k"].label_map()
    assert len(ade) == 151 and int(ade[0]) == 0 and int(ade[150]) == IGNORE_INDEX
    coco = SEGMENTERS["deeplabv2_cocostuff164k"].label_map()
    assert len(coco) == 183 and int(coco[181]) == 181 and int(coco[182]) == IGNORE_INDEX


def test_dataset_of_other_classes_is_refused() -> None:
    with pytest.raises(DataError, match=r"scores cityscapes \(35 label ids\)"):
        load_segmenter("drn_d_105_cityscapes", num_classes=151)
