"""The FID Inception: the mapped TorchScript weights reproduce the TorchScript and pytorch-fid."""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sislab.errors import WeightsError
from sislab.metrics import weights
from sislab.metrics.inception import FEATURE_DIM, FIDInceptionV3, load_fid_inception

FID_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"


@pytest.fixture(scope="module")
def fid_model() -> FIDInceptionV3:
    model, info = load_fid_inception()
    assert info.name == "fid_inception" and info.sha256 == FID_SHA256 and not info.substitute
    return model


@pytest.fixture(scope="module")
def torchscript() -> torch.jit.ScriptModule:
    path = weights.locate("fid_inception", {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location="cpu").eval()


@pytest.mark.parametrize("side", [64, 299])
def test_mapped_weights_give_the_torchscript_features(
    fid_model: FIDInceptionV3, torchscript: torch.jit.ScriptModule, side: int
) -> None:
    images = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(side)) * 2 - 1
    with torch.no_grad():
        ours = fid_model(images)
        # The TorchScript takes 299x299 network input; give it pytorch-fid's preprocessing.
        unit = F.interpolate(
            (images + 1) / 2, size=(299, 299), mode="bilinear", align_corners=False
        )
        theirs = torchscript(2 * unit - 1)
    assert ours.shape == theirs.shape == (2, FEATURE_DIM)
    diff = (ours - theirs).abs().max().item()
    print(f"max abs diff mapped vs TorchScript at {side}x{side}: {diff:.3g}")
    assert diff < 1e-5


def test_forward_is_pytorch_fid_on_unit_images(
    fid_model: FIDInceptionV3, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytorch_fid import inception as pfid

    state = fid_model.state_dict()
    state |= {"fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}
    # pytorch-fid downloads inside fid_inception_v3; hand it the same weights instead.
    monkeypatch.setattr(pfid, "load_state_dict_from_url", lambda *a, **k: state)
    reference = pfid.InceptionV3([pfid.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    unit = torch.rand(1, 3, 80, 48, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(unit)[0].flatten(1)
        assert torch.equal(fid_model.features_unit(unit), expected)
        assert (fid_model(unit * 2 - 1) - expected).abs().max().item() < 1e-5


def test_pt_inception_state_dict_loads(
    fid_model: FIDInceptionV3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = fid_model.state_dict() | {
        "fc.weight": torch.ones(1008, 2048),
        "fc.bias": torch.ones(1008),
    }
    path = tmp_path / "pt_inception.pth"
    torch.save(state, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    entry = dataclasses.replace(weights.REGISTRY["pt_inception"], sha256=digest)
    monkeypatch.setitem(weights.REGISTRY, "pt_inception", entry)
    model, info = load_fid_inception({"pt_inception": str(path)}, source="pt_inception")
    assert info.name == "pt_inception" and info.sha256 == digest
    for name, tensor in fid_model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


def _assert_names_expected(err: WeightsError) -> None:
    text = str(err)
    entry = weights.REGISTRY["fid_inception"]
    assert "default_1.pt" in text and FID_SHA256 in text and entry.url in text


def test_wrong_file_is_refused_naming_file_uri_and_hash(tmp_path: Path) -> None:
    wrong = tmp_path / "default_1.pt"
    wrong.write_bytes(b"not the inception")
    with pytest.raises(WeightsError) as err:
        load_fid_inception({"fid_inception": str(wrong)}, allow_substitute=True)
    _assert_names_expected(err.value)
    assert "does not match" in str(err.value)


def test_missing_path_is_refused_naming_file_uri_and_hash(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as err:
        load_fid_inception({"fid_inception": str(tmp_path / "absent.pt")})
    _assert_names_expected(err.value)
    assert str(tmp_path / "absent.pt") in str(err.value)


def test_substitute_only_when_allowed_and_marked(tmp_path: Path) -> None:
    model, info = load_fid_inception(
        {"fid_inception": str(tmp_path / "absent.pt")}, allow_substitute=True
    )
    assert info.substitute and info.sha256 == "" and "not comparable" in info.note
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, FEATURE_DIM)
