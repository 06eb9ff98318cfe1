import pytest
import torch

from sislab.errors import DataError
from sislab.models.geometry import DatasetGeometry
from sislab.models.semantic_input import instance_edges, one_hot, semantic_input


def test_one_hot_scatters_class_ids():
    label = torch.tensor([[[[0, 2], [1, 2]]]])
    out = one_hot(label, 3)
    assert out.shape == (1, 3, 2, 2)
    assert out.dtype == torch.float32
    assert torch.equal(out.argmax(1, keepdim=True), label)
    assert torch.equal(out.sum(1), torch.ones(1, 2, 2))


def test_instance_edges_marks_both_sides_of_each_boundary():
    inst = torch.tensor([[[[1, 1, 2], [1, 1, 2], [1, 1, 1]]]])
    expected = torch.tensor([[[[0, 1, 1], [0, 1, 1], [0, 0, 1]]]], dtype=torch.float32)
    assert torch.equal(instance_edges(inst), expected)


def test_instance_edges_constant_map_has_no_edges():
    assert instance_edges(torch.full((2, 1, 4, 5), 7)).sum() == 0


def test_semantic_input_appends_edge_channel():
    geometry = DatasetGeometry(num_classes=4, use_instance=True, height=4, width=4)
    label = torch.randint(0, 4, (2, 1, 4, 4))
    instance = torch.randint(0, 3, (2, 1, 4, 4))
    out = semantic_input(label, instance, geometry)
    assert out.shape == (2, geometry.semantic_nc, 4, 4)
    assert torch.equal(out[:, 4:], instance_edges(instance))


def test_semantic_input_checks_instance_presence():
    with_inst = DatasetGeometry(num_classes=4, use_instance=True, height=4, width=4)
    without = DatasetGeometry(num_classes=4, use_instance=False, height=4, width=4)
    label = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    with pytest.raises(DataError, match="has none"):
        semantic_input(label, None, with_inst)
    with pytest.raises(DataError, match="use_instance=False"):
        semantic_input(label, torch.zeros_like(label), without)
    assert semantic_input(label, None, without).shape == (1, 4, 4, 4)
