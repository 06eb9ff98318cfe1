"""sislab: ablation sweeps of semantic image synthesis GANs on Ray, tracked in MLflow."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # ``sislab.load_generator`` without importing torch on ``import sislab``.
    if name == "load_generator":
        from sislab.trainers.best_generator import load_generator

        return load_generator
    raise AttributeError(f"module 'sislab' has no attribute {name!r}")
