"""SPADE's weight initialisation (xavier-normal, gain 0.02), shared by the SPADE family."""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize

# SPADE code: base_options init_type='xavier', init_variance=0.02 (base_network.init_weights).
INIT_GAIN = 0.02


def _weight_of(module: nn.Module) -> nn.Parameter | None:
    """The trainable weight tensor, looking through a spectral-norm parametrisation."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    weight = getattr(module, "weight", None)
    return weight if isinstance(weight, nn.Parameter) else None


def init_weights(network: nn.Module, gain: float = INIT_GAIN) -> nn.Module:
    """Initialise ``network`` in place the way SPADE's ``BaseNetwork.init_weights('xavier')`` does.

    Conv and Linear weights get ``xavier_normal_(gain)`` and their biases 0; BatchNorm weights (when
    affine) ``N(1, gain)`` and biases 0. Spectral-normalised layers are initialised through their
    original (unnormalised) weight, as SPADE's in-place init of ``weight.data`` does.

    Args:
        network: Module to initialise; every submodule is visited.
        gain: Xavier gain and BatchNorm weight standard deviation.

    Returns:
        ``network`` itself, for chaining.
    """
    for module in network.modules():
        weight = _weight_of(module)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            if weight is not None:
                nn.init.normal_(weight.data, 1.0, gain)
        elif isinstance(module, nn.modules.conv._ConvNd | nn.Linear):
            if weight is not None:
                nn.init.xavier_normal_(weight.data, gain=gain)
        else:
            continue
        bias = getattr(module, "bias", None)
        if isinstance(bias, nn.Parameter):
            nn.init.constant_(bias.data, 0.0)
    return network
