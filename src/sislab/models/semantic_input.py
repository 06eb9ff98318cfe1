"""The generator's semantic input: one-hot label maps plus SPADE's instance edge channel."""

from __future__ import annotations

import torch

from sislab.errors import DataError
from sislab.models.geometry import DatasetGeometry


def one_hot(label: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Scatter an integer label map into one-hot channels.

    Args:
        label: Class ids, (B, 1, H, W) int64, each in ``[0, num_classes)`` (the don't-care class
            already mapped to its own id by the dataset).
        num_classes: Channels of the result (SPADE's ``label_nc + contain_dontcare_label``).

    Returns:
        (B, num_classes, H, W) float one-hot map on ``label``'s device.
    """
    b, _, h, w = label.shape
    out = torch.zeros(b, num_classes, h, w, device=label.device)
    # SPADE pix2pix_model.preprocess_input: input_label.scatter_(1, label_map, 1.0)
    return out.scatter_(1, label.long(), 1.0)


def instance_edges(instance: torch.Tensor) -> torch.Tensor:
    """Mark pixels whose instance id differs from a 4-neighbour (SPADE ``get_edges``).

    Args:
        instance: Instance ids, (B, 1, H, W) integer.

    Returns:
        (B, 1, H, W) float map, 1 on instance boundaries (both sides of each boundary), else 0.
    """
    edge = torch.zeros_like(instance, dtype=torch.bool)
    dx = instance[..., :, 1:] != instance[..., :, :-1]
    dy = instance[..., 1:, :] != instance[..., :-1, :]
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    return edge.float()


def semantic_input(
    label: torch.Tensor, instance: torch.Tensor | None, geometry: DatasetGeometry
) -> torch.Tensor:
    """Build the (B, semantic_nc, H, W) map that SPADE-family generators and discriminators read.

    Args:
        label: Class ids, (B, 1, H, W) int64.
        instance: Instance ids (B, 1, H, W), required iff ``geometry.use_instance``.
        geometry: Supplies ``num_classes`` and ``use_instance``.

    Returns:
        One-hot classes, followed by the instance edge channel when the dataset uses instances.

    Raises:
        DataError: An instance map is missing although the geometry uses instances, or present
            although it does not.
    """
    semantics = one_hot(label, geometry.num_classes)
    if not geometry.use_instance:
        if instance is not None:
            raise DataError(
                "an instance map was given but the dataset geometry has use_instance=False",
                fix="drop the instance map or use a geometry with use_instance=True",
            )
        return semantics
    if instance is None:
        raise DataError(
            "the dataset geometry uses instance maps but the batch has none",
            fix="provide the instance column in the dataset or use a geometry without instances",
        )
    return torch.cat([semantics, instance_edges(instance)], dim=1)
