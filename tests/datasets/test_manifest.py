import numpy as np
import pytest
from pydantic import ValidationError

from sislab.datasets.classes import load_table
from sislab.datasets.manifest import ClassInfo, Manifest, ShardInfo

SHA = "0" * 64


@pytest.mark.parametrize("path", ["/abs/part.parquet", "../x.parquet", "a/../../x", "s3://b/x"])
def test_shard_paths_stay_inside_the_root(path):
    with pytest.raises(ValidationError, match="relative"):
        ShardInfo(path=path, rows=1, sha256=SHA)


def test_training_ids_put_dontcare_last_as_spade():
    classes, dontcare = load_table("ade20k")
    m = Manifest(name="ade20k", classes=classes, dontcare_id=dontcare)
    lut = m.training_ids()
    assert m.num_classes == 151
    assert lut[1] == 0 and lut[150] == 149 and lut[0] == 150  # SPADE: label - 1, -1 -> 150
    coco = Manifest(name="c", classes=load_table("coco_stuff")[0], dontcare_id=255)
    assert coco.num_classes == 183 and coco.training_ids()[255] == 182
    assert coco.training_ids()[200] == -1
    assert coco.training_classes()[-1].name == "unlabeled"


def test_class_ids_unique():
    c = ClassInfo(id=1, name="a", colour=(0, 0, 0))
    with pytest.raises(ValidationError):
        Manifest(name="x", classes=[c, c])


def test_tables_sizes_match_spade():
    sizes = {n: len(load_table(n)[0]) for n in ("cityscapes", "ade20k", "coco_stuff")}
    assert sizes == {"cityscapes": 35, "ade20k": 151, "coco_stuff": 183}
    assert np.all([len(c.name) for c in load_table("celebamask_hq")[0]])
