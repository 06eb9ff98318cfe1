"""Make both sides see the same random tensors: record the official draws, replay them to sislab.

Inside ``tape.record()`` every ``torch.randn`` / ``torch.rand`` call is served normally and its
result kept; inside ``tape.replay()`` each call is served the next kept tensor of the same
function, after checking that the requested shape is the same (the fresh draw is discarded).
This covers OASIS's 3D noise and VASIS's semantic noise, which both codebases draw with these two
functions inside their forward passes. Draws must come in the same order on both sides; a shape
mismatch stops the run, and ``replay`` checks that every recorded draw was consumed.
"""

from __future__ import annotations

import contextlib

import torch

_NAMES = ("randn", "rand")


class RngTape:
    """Recorder/replayer of ``torch.randn`` and ``torch.rand`` results (see module docstring)."""

    def __init__(self) -> None:
        self.draws: list[tuple[str, torch.Tensor]] = []
        self.recorded = 0

    @contextlib.contextmanager
    def record(self):
        """Serve draws normally and keep them (clears the previous recording)."""
        self.draws = []
        originals = {name: getattr(torch, name) for name in _NAMES}

        def wrap(name):
            def draw(*args, **kwargs):
                out = originals[name](*args, **kwargs)
                self.draws.append((name, out.detach().clone()))
                return out

            return draw

        try:
            for name in _NAMES:
                setattr(torch, name, wrap(name))
            yield self
        finally:
            for name, fn in originals.items():
                setattr(torch, name, fn)
            self.recorded = len(self.draws)

    @contextlib.contextmanager
    def replay(self):
        """Serve the recorded draws, in order, to the same calls; all must be consumed."""
        originals = {name: getattr(torch, name) for name in _NAMES}
        queue = list(self.draws)

        def wrap(name):
            def draw(*args, **kwargs):
                fresh = originals[name](*args, **kwargs)
                if not queue:
                    raise AssertionError(f"torch.{name}{tuple(fresh.shape)}: nothing recorded")
                kept_name, kept = queue.pop(0)
                if kept_name != name or kept.shape != fresh.shape:
                    raise AssertionError(
                        f"draw order differs: sislab torch.{name}{tuple(fresh.shape)}, "
                        f"official torch.{kept_name}{tuple(kept.shape)}"
                    )
                return kept.to(fresh.dtype).clone().requires_grad_(fresh.requires_grad)

            return draw

        try:
            for name in _NAMES:
                setattr(torch, name, wrap(name))
            yield self
        finally:
            for name, fn in originals.items():
                setattr(torch, name, fn)
        if queue:
            raise AssertionError(f"{len(queue)} official draws were not used by sislab")
