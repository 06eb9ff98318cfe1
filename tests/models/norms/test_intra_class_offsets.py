import torch

from sislab.models.norms.intra_class_offsets import (
    IntraClassOffsets,
    connected_components,
    intra_class_offsets,
)


def test_components_split_disconnected_regions_of_one_class():
    classes = torch.zeros(1, 6, 6, dtype=torch.long)
    classes[0, 0:2, 0:2] = 1
    classes[0, 4:6, 4:6] = 1
    comp = connected_components(classes)
    assert comp[0, 0, 0] == comp[0, 1, 1] != comp[0, 5, 5]
    assert len(comp.unique()) == 3


def test_offsets_are_centred_and_normalised_per_component():
    classes = torch.zeros(1, 5, 5, dtype=torch.long)
    classes[0, 1:4, 1:4] = 1
    off = intra_class_offsets(classes)
    assert off.shape == (1, 2, 5, 5)
    assert off[0, :, 2, 2].abs().max() < 1e-6  # centroid of the 3x3 square
    assert torch.allclose(off[0, 0, 1, 1:4], torch.full((3,), -1.0), atol=1e-4)
    assert off.abs().max() <= 1.0


def test_module_appends_two_channels():
    sem = torch.nn.functional.one_hot(torch.zeros(2, 8, 8, dtype=torch.long), 3).permute(0, 3, 1, 2)
    assert IntraClassOffsets(3)(sem.float()).shape == (2, 5, 8, 8)


def test_float64_default_dtype_gives_float64_semantics_the_float32_offsets():
    classes = torch.zeros(1, 5, 5, dtype=torch.long)
    classes[0, 1:4, 1:4] = 1
    sem = torch.nn.functional.one_hot(classes, 2).permute(0, 3, 1, 2).double()
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # as the float64 DDP-equivalence test trains
    try:
        out = IntraClassOffsets(2)(sem)
    finally:
        torch.set_default_dtype(default)
    assert out.dtype == torch.float64
    assert torch.equal(out[:, 2:], intra_class_offsets(classes).double())
