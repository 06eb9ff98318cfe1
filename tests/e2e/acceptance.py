"""scripts/gpu_acceptance.py loaded as a module (it is a script, not part of the package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_acceptance.py"


def load_script() -> ModuleType:
    """The script's module (loaded once per process)."""
    if "gpu_acceptance" in sys.modules:
        return sys.modules["gpu_acceptance"]
    spec = importlib.util.spec_from_file_location("gpu_acceptance", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def table_rows(text: str) -> list[list[str]]:
    """The cells of each row of the printed table (below its header)."""
    return [line.split(" | ") for line in text.splitlines()[2:]]
