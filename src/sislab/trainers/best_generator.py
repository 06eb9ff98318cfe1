"""The best checkpoint's generator as an MLflow artifact, and loading it back in three lines.

When the loop finds a new best checkpoint, rank 0 writes the generator that samples (the EMA copy
where the method keeps one) as a state dict, ``best_generator/generator.pt``, with
``best_generator/config.json`` (the trial's resolved spec, the dataset geometry and the score).
No pickled modules: ``load_generator`` rebuilds the network from the registry and loads the
weights with ``weights_only=True``. Importable without Ray; MLflow is imported only to download.

    from sislab import load_generator
    best = load_generator(run_id, tracking_uri="sqlite:///runs/my-sweep/mlflow.db")
    images = best.generate(label)  # label: (B, 1, H, W) class ids -> (B, 3, H, W) in [-1, 1]
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

ARTIFACT_DIR = "best_generator"
WEIGHTS_FILE = "generator.pt"
CONFIG_FILE = "config.json"


def sampling_generator(procedure: Any) -> nn.Module:
    """The network a procedure samples with: its EMA generator if any, else the generator."""
    ema = getattr(procedure, "ema", None)
    generator = ema if ema is not None else procedure.generator
    return getattr(generator, "module", generator)  # DDP keeps the network in .module


def write_best_generator(
    folder: Path, procedure: Any, config: dict, geometry: dict, best: dict
) -> list[Path]:
    """Write ``generator.pt`` and ``config.json`` into ``folder``; return both paths.

    Args:
        folder: Where to write.
        procedure: The trained procedure.
        config: The trial's resolved spec (JSON data).
        geometry: ``DatasetGeometry`` fields (label channels, instance use, size, upsampling).
        best: Metric, value, epoch of this checkpoint.
    """
    weights = folder / WEIGHTS_FILE
    state = {k: v.detach().cpu() for k, v in sampling_generator(procedure).state_dict().items()}
    torch.save(state, weights)
    meta = folder / CONFIG_FILE
    meta.write_text(json.dumps({"spec": config, "geometry": geometry, "best": best}, indent=2))
    return [weights, meta]


@dataclass
class BestGenerator:
    """A trial's best generator, ready to sample.

    Args:
        generator: The network, in eval mode, on CPU.
        geometry: The dataset geometry it was built for.
        spec: The trial's resolved spec.
        best: Metric, value and epoch of the checkpoint.
    """

    generator: nn.Module
    geometry: Any
    spec: Any
    best: dict

    @torch.no_grad()
    def generate(self, label: torch.Tensor, instance: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, 3, H, W) in [-1, 1] for label maps (B, 1, H, W) of class ids.

        A method with a VAE encoder samples its prior (the generator's default with no image).
        """
        from sislab.models.semantic_input import semantic_input

        output = self.generator(semantic_input(label, instance, self.geometry))
        return (output[0] if isinstance(output, tuple | list) else output).float()


def load_best_generator(folder: Path) -> BestGenerator:
    """Rebuild the generator from ``folder`` (``generator.pt`` + ``config.json``)."""
    from sislab.models.geometry import DatasetGeometry
    from sislab.models.registry import get_method
    from sislab.spec.spec import Spec

    meta = json.loads((folder / CONFIG_FILE).read_text())
    spec = Spec.model_validate(meta["spec"])
    geometry = DatasetGeometry(**meta["geometry"])
    generator = get_method(spec.method).build_generator(spec.model, geometry)
    state = torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    generator.load_state_dict(state)
    return BestGenerator(generator.eval(), geometry, spec, meta["best"])


def load_generator(run_id: str, tracking_uri: str | None = None) -> BestGenerator:
    """Download a trial run's best generator from MLflow and rebuild it.

    Args:
        run_id: The trial's MLflow run id (the parent run's tag ``sislab.best_trial_run_id``).
        tracking_uri: The tracking store (None: MLflow's default, ``MLFLOW_TRACKING_URI``).
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="sislab-generator-") as tmp:
        local = client.download_artifacts(run_id, ARTIFACT_DIR, tmp)
        return load_best_generator(Path(local))


def geometry_fields(geometry: Any) -> dict:
    """``DatasetGeometry`` as JSON data."""
    return asdict(geometry)
