"""sislab: ablation sweeps of semantic image synthesis GANs on Ray, tracked in MLflow."""

__version__ = "0.1.0"
