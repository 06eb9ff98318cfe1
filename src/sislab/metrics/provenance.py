"""Where the weights of a loaded evaluation network came from, reported next to every score."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WeightsInfo:
    """Provenance of the weights behind a metric network.

    Args:
        name: Registry name (see ``sislab.metrics.weights.REGISTRY``), or ``builtin:<path>`` for a
            segmenter sislab trained itself.
        sha256: Hex sha256 of the file actually loaded; empty when ``substitute``.
        substitute: True when random or untrained weights stand in for the published ones, which
            only happens when the caller allowed it; scores computed with it are not comparable.
        note: Human-readable remark shown with the scores, e.g. why a substitute was used.
    """

    name: str
    sha256: str
    substitute: bool = False
    note: str = ""
