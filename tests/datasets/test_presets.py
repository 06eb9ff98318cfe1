import pytest

from sislab.datasets.presets import DATASET_PRESETS, preset_geometry
from sislab.errors import SpecError


def test_semantic_channels_of_the_papers_datasets():
    assert preset_geometry("cityscapes").semantic_nc == 36
    assert preset_geometry("ade20k").semantic_nc == 151
    assert preset_geometry("coco-stuff").semantic_nc == 184
    city = preset_geometry("cityscapes")
    assert (city.height, city.width, city.upsampling) == (256, 512, "more")


def test_all_design_names_present():
    expected = {"cityscapes", "ade20k", "coco-stuff", "celebamask-hq", "deepfashion", "synthetic"}
    assert set(DATASET_PRESETS) == expected


def test_unknown_name_suggests_closest():
    with pytest.raises(SpecError, match="unknown dataset preset 'cityscape'") as err:
        preset_geometry("cityscape")
    assert "did you mean 'cityscapes'" in str(err.value)
