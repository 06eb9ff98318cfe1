"""Where the official trees live, and the runtime patches that let them run on CPU.

Nothing here is official code. The official repositories are exported outside this repository
(``$OFFICIAL_ROOT``, default ``../official``; see README.md) and imported at run time; no file of
theirs is edited. The patches only replace CUDA-only calls:

* ``nn.Module.cuda`` / ``Tensor.cuda`` -> no-ops (VGGLoss calls ``.cuda()`` unconditionally);
* ``torch.cuda.FloatTensor`` (and Byte/Bool) -> the CPU types (OASIS ``losses.py`` with GPU ids);
* ``torchvision.models.vgg19(pretrained=True)`` -> random weights (nothing is downloaded);
* a ``torch._six`` shim for old imports, and a ``ptflops`` stub (VASIS imports it to count
  FLOPs, which the study never does).
"""

from __future__ import annotations

import collections.abc
import os
import sys
import types

OFFICIAL_ROOT = os.path.abspath(os.environ.get("OFFICIAL_ROOT", "../official"))
EXTRA = os.path.join(OFFICIAL_ROOT, "extra")


def official_dir(subdir: str) -> str:
    """``$OFFICIAL_ROOT/SUBDIR``, or exit with the set-up hint when it is missing."""
    path = os.path.join(OFFICIAL_ROOT, subdir)
    if not os.path.isdir(path):
        sys.exit(f"no official tree at {path}: set OFFICIAL_ROOT (tools/lockstep/README.md)")
    return path


def enter_official(subdir: str, threads: int) -> str:
    """Put the official tree first on sys.path, chdir into it, patch torch; returns the path.

    One process holds one official tree: SPADE, CLADE and VASIS all ship top-level packages
    named ``models``, ``options``, ``trainers``, ``data`` and ``util``.
    """
    path = official_dir(subdir)
    sys.dont_write_bytecode = True  # no __pycache__ inside the official tree
    for entry in (EXTRA, path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    os.chdir(path)
    import torch

    torch.set_num_threads(threads)
    patch_torch(torch)
    return path


def patch_torch(torch) -> None:
    """The CPU patches listed in the module docstring."""
    import torchvision

    torch.nn.Module.cuda = lambda self, *a, **k: self
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.cuda.FloatTensor = torch.FloatTensor
    torch.cuda.ByteTensor = torch.ByteTensor
    torch.cuda.BoolTensor = torch.BoolTensor
    original_vgg19 = torchvision.models.vgg19

    def vgg19(*args, pretrained=False, weights=None, **kwargs):
        del pretrained, weights
        return original_vgg19(*args, weights=None, **kwargs)

    torchvision.models.vgg19 = vgg19
    if "ptflops" not in sys.modules:
        stub = types.ModuleType("ptflops")
        stub.get_model_complexity_info = lambda *a, **k: (None, None)
        sys.modules["ptflops"] = stub
    if "torch._six" not in sys.modules:
        six = types.ModuleType("torch._six")
        six.container_abcs = collections.abc
        six.string_classes = (str, bytes)
        six.int_classes = int
        six.inf = float("inf")
        sys.modules["torch._six"] = six
