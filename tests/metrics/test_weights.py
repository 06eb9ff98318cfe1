"""The weights registry: sha256 checked before loading, clear messages when absent or wrong."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from sislab.errors import WeightsError
from sislab.metrics import weights


@pytest.fixture
def fake_entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    data_path = tmp_path / "tiny.pth"
    torch.save({"w": torch.ones(2)}, data_path)
    digest = hashlib.sha256(data_path.read_bytes()).hexdigest()
    entry = weights.WeightsEntry(
        "tiny", "tiny.pth", "https://example.invalid/tiny.pth", digest, "tests"
    )
    monkeypatch.setitem(weights.REGISTRY, "tiny", entry)
    monkeypatch.setenv("SISLAB_WEIGHTS_DIR", str(tmp_path / "cache"))
    return data_path, digest


def test_loads_from_configured_path(fake_entry) -> None:
    path, _ = fake_entry
    state = weights.load_state_dict("tiny", {"tiny": str(path)})
    assert torch.equal(state["w"], torch.ones(2))


def test_missing_file_says_what_to_put_where(fake_entry, tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as err:
        weights.locate("tiny", {})
    text = str(err.value)
    assert "tiny.pth" in text and str(tmp_path / "cache" / "tiny.pth") in text
    assert "weights.paths.tiny" in text and "example.invalid" in text
    state, reason = weights.try_load_state_dict("tiny", {})
    assert state is None and "not found" in reason


def test_hash_mismatch_is_an_error_naming_both_hashes(fake_entry, tmp_path: Path) -> None:
    _, digest = fake_entry
    other = tmp_path / "other.pth"
    torch.save({"w": torch.zeros(2)}, other)
    with pytest.raises(WeightsError, match=f"does not match the registered {digest}"):
        weights.try_load_state_dict("tiny", {"tiny": str(other)})


def test_vgg19_entry_points_at_torchvision_file() -> None:
    entry = weights.REGISTRY["vgg19"]
    assert entry.filename.startswith("vgg19-" + entry.sha256)
