"""The weights registry: sha256 checked before loading, clear messages when absent or wrong."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import pytest
import torch

from sislab.errors import SpecError, WeightsError
from sislab.metrics import weights
from sislab.spec.loader import load_spec


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
    assert entry.filename == f"vgg19-{entry.sha256[:8]}.pth" and entry.url.endswith(entry.filename)


@pytest.mark.parametrize("name", sorted(weights.REGISTRY))
def test_every_registry_hash_is_a_full_sha256(name: str) -> None:
    # A file-name prefix names a file; only all 64 digits check it. Entries without one are the
    # papers' segmenters, which the spec must pin (test_paper_segmenters).
    entry = weights.REGISTRY[name]
    assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256) or (
        entry.sha256 == "" and "mIoU" in entry.used_for
    )
    prefix = re.search(r"-([0-9a-f]{8})\.pth$", entry.filename)
    if prefix:  # torchvision / pytorch-fid: the name's digits are the digest's first 8
        assert entry.sha256.startswith(prefix.group(1))
    with pytest.raises(ValueError, match="64 lowercase hex digits"):
        weights.WeightsEntry(name, entry.filename, entry.url, entry.sha256[:8] or "abc", "x")


def test_a_file_matching_only_the_prefix_is_refused(
    fake_entry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file whose sha256 starts with the 8 digits a torchvision file name shows is still the
    # wrong file when the other 56 differ (forging 8 digits takes ~2^32 tries).
    _, digest = fake_entry
    other = tmp_path / "other.pth"
    other.write_bytes(b"not the weights")
    other_digest = hashlib.sha256(other.read_bytes()).hexdigest()
    forged = other_digest[:8] + digest[8:]
    monkeypatch.setitem(
        weights.REGISTRY, "tiny", dataclasses.replace(weights.REGISTRY["tiny"], sha256=forged)
    )
    with pytest.raises(
        WeightsError, match=f"sha256 {other_digest} does not match the registered {forged}"
    ):
        weights.locate("tiny", {"tiny": str(other)})


@pytest.mark.parametrize("pin", ["dcbb9e9d", "DCBB9E9D" * 7, "g" * 64])
def test_a_short_or_malformed_pin_is_refused(fake_entry, pin: str) -> None:
    path, _ = fake_entry
    with pytest.raises(WeightsError, match=r"weights\.sha256\.tiny = .* is not a full sha256"):
        weights.locate("tiny", {"tiny": str(path)}, sha256={"tiny": pin})


def test_a_pin_must_equal_the_registered_digest(fake_entry) -> None:
    path, digest = fake_entry
    assert weights.locate("tiny", {"tiny": str(path)}, sha256={"tiny": digest.upper()}) == path
    with pytest.raises(WeightsError, match="contradicts the registered"):
        weights.locate("tiny", {"tiny": str(path)}, sha256={"tiny": "0" * 64})


def test_a_short_pin_in_a_spec_is_an_error_at_its_line(tmp_path: Path) -> None:
    spec = tmp_path / "pins.yaml"
    full = hashlib.sha256(b"x").hexdigest()
    spec.write_text(
        "name: pins\n"
        "weights:\n"
        "  sha256:\n"
        f"    drn_d_105_cityscapes: {full.upper()}\n"
        "    vgg19: dcbb9e9d\n"
    )
    with pytest.raises(SpecError) as err:
        load_spec(spec)
    assert len(err.value.problems) == 1
    assert re.fullmatch(
        rf"{re.escape(str(spec))}:5: weights\.sha256\.vgg19: not a full sha256: 64 hex digits are "
        r"needed, 8 characters given .*pin all 64 digits",
        err.value.problems[0],
    )
    spec.write_text(f"name: pins\nweights:\n  sha256:\n    drn_d_105_cityscapes: {full.upper()}\n")
    assert load_spec(spec).weights.sha256 == {"drn_d_105_cityscapes": full}
