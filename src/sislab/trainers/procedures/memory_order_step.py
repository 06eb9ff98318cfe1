"""Fused Adam on channels-last parameters without torch's copies to contiguous and back.

torch's fused CPU Adam is written for contiguous tensors: a channels-last kernel costs it a
tensor-sized copy to contiguous and one back, and a slower update (1024x1024x3x3: 24 ms a step
against 5.5 for a contiguous kernel on this 2-core CPU; a SPADE-family generator holds ~100M
such weights). The update is element-wise, so it may as well run on the tensors' channels-last
views, which are contiguous: ``MemoryOrderAdam`` hands Adam those views for the duration of its
``step`` and puts the parameters, gradients and moments back in torch's order after it. Values,
shapes, state dicts and checkpoints stay what they would be without it.
"""

from __future__ import annotations

import torch

from sislab.models.layout import (
    channels_last_view,
    from_channels_last_view,
    stored_channels_last,
)

_MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


class MemoryOrderAdam(torch.optim.Adam):
    """``torch.optim.Adam`` that steps channels-last parameters through contiguous views, and
    never steps tensors whose layouts disagree.

    torch's fused CPU kernel indexes the parameter, its gradient and its moments as if they
    shared one layout: a channels-last kernel with moments in torch's order (an NCHW run's
    checkpoint resumed with ``train.channels_last``) is updated with misaligned elements,
    silently (CUDA's kernel refuses some such pairs instead). Moments or a gradient in another
    layout than their parameter are restrided here first.

    The views exist inside ``step`` only, after the step pre-hooks and before the post-hooks
    (a non-finite check, a gradient recorder), which see the parameters as torch orders them.
    """

    def step(self, closure=None):  # type: ignore[override]
        """One Adam step; channels-last parameters update in their memory order."""
        swapped = []  # (parameter, its data, its gradient, whether the step saw views)
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state.get(param, {})
                grad = _aligned(param, state)
                if stored_channels_last(param.data):
                    swapped.append((param, param.data, param.grad, True))
                    param.data, param.grad = (
                        channels_last_view(param.data),
                        channels_last_view(grad),
                    )
                    _permute_moments(state, channels_last_view)
                elif grad is not param.grad:
                    swapped.append((param, param.data, param.grad, False))
                    param.grad = grad
        try:
            return _unhooked(torch.optim.Adam.step)(self, closure)
        finally:
            for param, data, grad, viewed in swapped:
                param.data, param.grad = data, grad  # the step wrote through the views
                if viewed:
                    _permute_moments(self.state.get(param, {}), from_channels_last_view)


def _unhooked(step):
    """Adam's own ``step``: torch wraps a class's ``step`` with the hook runner when the first
    instance is made, and this class's hooks have run already."""
    return step.__wrapped__ if getattr(step, "hooked", False) else step


def _aligned(param: torch.nn.Parameter, state: dict) -> torch.Tensor:
    """Restride ``param``'s moments to its layout (once; they stay so) and return its gradient
    in that layout (itself, unless autograd's layout contract was bypassed)."""
    for key in _MOMENTS:
        moment = state.get(key)
        if moment is not None and not _same_layout(moment, param.data):
            state[key] = _like(moment, param.data)
    grad = param.grad
    return grad if _same_layout(grad, param.data) else _like(grad, param.data)


def _same_layout(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same shape and strides. Strictly, a size-1 dim's stride too: on CPU it changes nothing,
    but CUDA's fused Adam refuses such a pair (pytorch/pytorch#106951), and a depthwise kernel's
    gradient can come with another stride there (GroupDNet's 560x1x3x3)."""
    return a.shape == b.shape and a.stride() == b.stride()


def _like(value: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
    """``value``'s values in ``layout``'s strides."""
    out = torch.empty_strided(layout.shape, layout.stride(), dtype=value.dtype, device=value.device)
    return out.copy_(value)


def _permute_moments(state: dict, permute) -> None:
    for key in _MOMENTS:
        if key in state:
            state[key] = permute(state[key])
