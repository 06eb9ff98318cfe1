"""The evaluation protocol record: ids that change exactly when numbers can, tags, presets."""

from __future__ import annotations

import random

import pytest

from sislab.errors import SpecError
from sislab.metrics.protocol import (
    PROTOCOL_ID_TAG,
    SUBSTITUTE_TAG,
    EvalProtocol,
    preset,
    presets,
    protocol_id,
    protocol_tags,
    with_weights,
)
from sislab.metrics.provenance import WeightsInfo


def test_same_fields_in_any_order_give_the_same_id() -> None:
    record = preset("spade-cityscapes")
    items = list(record.model_dump().items())
    random.Random(0).shuffle(items)
    again = EvalProtocol.model_validate(dict(items))
    assert protocol_id(again) == protocol_id(record)
    assert len(protocol_id(record)) == 12 and int(protocol_id(record), 16) >= 0
    renamed = record.model_copy(update={"name": "mine", "description": "same numbers"})
    assert protocol_id(renamed) == protocol_id(record)


@pytest.mark.parametrize(
    "update",
    [
        {"reference_split": "train"},
        {"segmenter_sha256": "ab" * 32},
        {"real_resize": "bilinear"},
        {"kid_subset_size": 500},
        {"ignore_index": None},
        {"substitutes": ("alexnet",)},
    ],
)
def test_a_change_that_moves_numbers_changes_the_id(update) -> None:
    record = preset("spade-cityscapes")
    assert protocol_id(record.model_copy(update=update)) != protocol_id(record)


def test_fid_t_and_fid_v_differ() -> None:
    assert protocol_id(preset("vasis-fid-t")) != protocol_id(preset("vasis-fid-v"))


def test_with_weights_records_hashes_and_substitutes() -> None:
    record = with_weights(
        preset("synthetic-builtin"),
        inception=WeightsInfo("fid_inception", "AB" * 32),
        segmenter=[WeightsInfo("builtin:seg.pt", "cd" * 32)],
        lpips=WeightsInfo("alexnet", "", substitute=True, note="random AlexNet backbone"),
    )
    assert record.inception_sha256 == "ab" * 32
    assert record.segmenter_sha256 == "cd" * 32
    assert record.substitutes == ("alexnet",)
    tags = protocol_tags(record)
    assert tags[PROTOCOL_ID_TAG] == protocol_id(record)
    assert tags[SUBSTITUTE_TAG] == "alexnet"
    assert tags["sislab.protocol.reference_split"] == "val"
    assert tags["sislab.protocol.resolution"] == "64,64"
    assert all(isinstance(v, str) for v in tags.values())
    assert protocol_tags(preset("vasis-fid-v"))[SUBSTITUTE_TAG] == "none"


def test_presets_are_named_data() -> None:
    names = set(presets())
    assert {"spade-cityscapes", "vasis-fid-t", "vasis-fid-v", "oasis", "ade20k-upernet",
            "cocostuff-deeplabv2", "smis-deepfashion", "synthetic-builtin"} <= names  # fmt: skip
    assert len({protocol_id(p) for p in presets().values()}) == len(names)
    assert preset("spade-cityscapes").segmenter == "drn_d_105_cityscapes"
    smis = preset("smis-deepfashion")
    assert (smis.lpips_net, smis.diversity_label_maps, smis.diversity_samples) == ("alex", 100, 20)
    with pytest.raises(SpecError, match="spade-cityscapes"):
        preset("spade-cityscape")


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ValueError, match="reference_splt"):
        EvalProtocol.model_validate({"reference_splt": "val"})


def test_eval_protocols_command_lists_every_preset_with_its_id(capsys) -> None:
    import json

    from sislab.cli.main import main

    assert main(["eval", "protocols", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert set(listed) == set(presets())
    for name, record in presets().items():
        assert listed[name]["id"] == protocol_id(record)


def test_offline_preset_is_tagged_and_not_checked_against_training() -> None:
    from sislab.metrics.protocol import (
        OFFLINE_PRESETS,
        OFFLINE_TAG,
        EvalProtocol,
        offline_tags,
        preset_differences,
    )
    from sislab.trainers.evaluation import check_protocol

    training = EvalProtocol(lpips_net="alex", diversity_samples=2, resolution=(64, 64))
    assert "smis-deepfashion" in OFFLINE_PRESETS
    assert offline_tags("smis-deepfashion") == {OFFLINE_TAG: "smis-deepfashion"}
    assert offline_tags("spade-cityscapes") == offline_tags(None) == {}
    # The training record differs from the preset, and says where; naming the preset still trains.
    assert "diversity_samples: protocol 20, run 2" in preset_differences(
        training, "smis-deepfashion"
    )
    check_protocol(training, "smis-deepfashion")
    with pytest.raises(SpecError, match="resolution"):
        check_protocol(training, "spade-cityscapes")
