"""Helpers of the per-method lock-step checks (scgan/, groupdnet/): ours, not official code.

The official code is imported at run time from ``$OFFICIAL_ROOT/<repo>`` (never copied here). This
module holds what every per-method check needs:

* ``setup_official(repo)``: sys.path (the repo and ``$OFFICIAL_ROOT/extra``), cwd, thread count
  and the runtime patches the official code needs on CPU (``.cuda()`` no-op,
  ``vgg19(pretrained=True)`` with random weights, ``ptflops`` and ``torch._six`` stubs, Adam
  betas as floats). No official file is edited.
* ``WeightMap``: official state-dict keys -> sislab keys, where one sislab tensor may be the
  stack of several official ones (SC-GAN's SCC candidates); used for weights, buffers, gradients.
* ``converge_old_sn``: 200 power iterations on the official (shared) weights, so both sides start
  from converged spectral-norm u, v (copied to sislab with the weights).
* ``patch_sn_order()``: sislab's parametrized spectral norm updates v first (the official order)
  and divides the weight, not a conv's output, by sigma (the official arithmetic).
* ``compare_grads``: relative L2 difference, cosine and the worst tensor of two gradient sets.
* ``perturb_copy``: the 1e-6 control of the free-running part.
* ``use_float64``: both sides in float64, to tell float rounding from real differences.
* ``SharedNoise`` / ``patch_randn_like``: the VAE's reparameterisation noise, one pre-drawn
  tensor per step that both sides read at their own ``torch.randn_like`` call.
* ``summary_lines`` / ``table_row`` (also ``python compare_steps.py REPORT.json...``).
"""

from __future__ import annotations

import collections.abc
import contextlib
import json
import os
import sys
import types
from collections.abc import Callable, Iterable

OFFICIAL_ROOT = os.path.abspath(os.environ.get("OFFICIAL_ROOT", "../official"))
EXTRA = os.path.join(OFFICIAL_ROOT, "extra")
WORK = os.path.abspath(os.environ.get("LOCKSTEP_WORK", "../lockstep-work"))


def setup_official(repo: str, threads: int = 2) -> str:
    """Put ``$OFFICIAL_ROOT/<repo>`` first on sys.path, chdir there and patch the runtime.

    Returns:
        The official tree's path.
    """
    root = os.path.join(OFFICIAL_ROOT, repo)
    if not os.path.isfile(os.path.join(root, "train.py")):
        sys.exit(f"no official tree at {root}: set OFFICIAL_ROOT (see tools/lockstep/README.md)")
    sys.dont_write_bytecode = True  # no __pycache__ inside the official tree
    for path in (EXTRA, root):
        if path not in sys.path:
            sys.path.insert(0, path)
    os.chdir(root)  # the official option parsers and datasets expect the repo root as cwd
    import torch
    import torchvision

    torch.set_num_threads(threads)
    torch.nn.Module.cuda = lambda self, *a, **k: self
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.cuda.FloatTensor = torch.FloatTensor
    torch.cuda.ByteTensor = torch.ByteTensor
    torch.cuda.BoolTensor = torch.BoolTensor
    original_vgg19 = torchvision.models.vgg19

    def vgg19(*args, pretrained=False, weights=None, **kwargs):
        del pretrained, weights  # random weights; the checks copy them to sislab's VGG
        return original_vgg19(*args, weights=None, **kwargs)

    torchvision.models.vgg19 = vgg19
    adam_init = torch.optim.Adam.__init__
    if not getattr(adam_init, "_lockstep_float_betas", False):
        # SMIS passes betas (0, 0.9) (an int and a float) under TTUR; current torch rejects mixed
        # types, older torch accepted them as the same numbers
        def _adam_init(self, params, lr=1e-3, betas=(0.9, 0.999), *args, **kwargs):
            adam_init(self, params, lr, tuple(float(b) for b in betas), *args, **kwargs)

        _adam_init._lockstep_float_betas = True
        torch.optim.Adam.__init__ = _adam_init
    if "ptflops" not in sys.modules:  # SC-GAN's trainer imports it and never calls it
        stub = types.ModuleType("ptflops")
        stub.get_model_complexity_info = lambda *a, **k: (None, None)
        sys.modules["ptflops"] = stub
    if "torch._six" not in sys.modules:  # removed from torch; SC-GAN's util/func.py imports it
        six = types.ModuleType("torch._six")
        six.container_abcs = collections.abc
        six.string_classes = (str, bytes)
        six.int_classes = int
        six.inf = float("inf")
        sys.modules["torch._six"] = six
        torch._six = six
    return root


class WeightMap:
    """Official -> sislab state-dict key map of one network.

    ``sources[sislab_key]`` lists the official keys whose tensors, stacked along a new dim 0 when
    there are several, give the sislab tensor. Built from ``rename(official_key) -> (sislab_key,
    index | None)``; the constructor asserts that every official and every sislab entry is used
    exactly once and that the shapes agree.
    """

    def __init__(self, official_state: dict, sislab_state: dict,
                 rename: Callable[[str], tuple[str, int | None]]) -> None:
        grouped: dict[str, dict[int | None, str]] = {}
        for key in official_state:
            skey, index = rename(key)
            slot = grouped.setdefault(skey, {})
            assert index not in slot, (key, skey, index)
            slot[index] = key
        missing = sorted(set(sislab_state) - set(grouped))
        extra = sorted(set(grouped) - set(sislab_state))
        assert not missing and not extra, {"sislab keys unmapped": missing[:8],
                                           "mapped keys sislab lacks": extra[:8]}
        self.sources: dict[str, list[str]] = {}
        for skey, slot in grouped.items():
            if None in slot:
                assert len(slot) == 1, (skey, slot)
                self.sources[skey] = [slot[None]]
            else:
                assert sorted(slot) == list(range(len(slot))), (skey, sorted(slot))
                self.sources[skey] = [slot[i] for i in range(len(slot))]
            shape = self.gather(official_state, skey).shape
            assert shape == sislab_state[skey].shape, (skey, shape, sislab_state[skey].shape)

    def __len__(self) -> int:
        return len(self.sources)

    def gather(self, official: dict, skey: str):
        """The official tensor(s) of ``skey`` in sislab's layout."""
        import torch

        keys = self.sources[skey]
        if len(keys) == 1 and keys[0] in official:
            return official[keys[0]]
        return torch.stack([official[k] for k in keys])

    def to_sislab(self, official: dict, keys: Iterable[str] | None = None) -> dict:
        """``{sislab_key: tensor}`` for the sislab keys whose sources are all in ``official``."""
        out = {}
        for skey in keys if keys is not None else self.sources:
            if all(k in official for k in self.sources[skey]):
                out[skey] = self.gather(official, skey)
        return out

    def copy_into(self, official_net, sislab_net, skip: Callable[[str], bool] = lambda k: False):
        """Copy every official parameter and buffer into sislab's network (in place)."""
        import torch

        official = official_net.state_dict()
        state = sislab_net.state_dict(keep_vars=True)
        with torch.no_grad():
            for skey in self.sources:
                if not skip(skey):
                    state[skey].copy_(self.gather(official, skey))


def grads_of(net, named: Callable | None = None) -> dict:
    """``{name: grad clone}`` of the parameters with a gradient."""
    items = named() if named is not None else net.named_parameters()
    return {n: p.grad.detach().clone() for n, p in items if p.grad is not None}


def compare_grads(g_off: dict, g_sis: dict) -> dict:
    """Relative L2 difference ``||o - s|| / ||o||``, cosine and the worst tensor."""
    keys = sorted(set(g_off) | set(g_sis))
    missing = [k for k in keys if k not in g_off or k not in g_sis]
    keys = [k for k in keys if k in g_off and k in g_sis]
    num = sum(float((g_off[k] - g_sis[k]).double().pow(2).sum()) for k in keys) ** 0.5
    den = sum(float(g_off[k].double().pow(2).sum()) for k in keys) ** 0.5
    den_s = sum(float(g_sis[k].double().pow(2).sum()) for k in keys) ** 0.5
    dot = sum(float((g_off[k].double() * g_sis[k].double()).sum()) for k in keys)

    def rel(k):
        return float((g_off[k] - g_sis[k]).norm()) / (float(g_off[k].norm()) + 1e-30)

    # the worst tensor among those carrying a non-negligible share of the gradient: e.g. a conv
    # bias in front of a batch norm has an exactly-zero true gradient, pure float noise on both
    # sides
    sizable = [k for k in keys if float(g_off[k].norm()) > 1e-6 * den] or keys
    worst = max(sizable, key=rel)
    return {"rel_l2": num / den if den else float(num > 0), "cosine": dot / (den * den_s + 1e-300),
            "tensors": len(keys), "missing": missing, "worst_tensor": worst,
            "worst_tensor_rel": rel(worst), "grad_norm": den}


def converge_old_sn(modules: Iterable, iterations: int = 200) -> int:
    """Converge u, v of every ``torch.nn.utils.spectral_norm`` module (``weight_orig``)."""
    import torch
    import torch.nn.functional as F

    count = 0
    with torch.no_grad():
        for module in modules:
            if hasattr(module, "weight_orig"):
                w = module.weight_orig.reshape(module.weight_orig.shape[0], -1)
                u, v = module.weight_u, module.weight_v
                for _ in range(iterations):
                    v.copy_(F.normalize(w.t() @ u, dim=0, eps=1e-12))
                    u.copy_(F.normalize(w @ v, dim=0, eps=1e-12))
                count += 1
    return count


def patch_sn_order() -> None:
    """In this process, sislab's parametrized spectral norm updates v <- W^T u, then u <- W v,
    and divides the weight by sigma.

    That is the order of the official code's ``torch.nn.utils.spectral_norm``; the parametrization
    API updates u first. (sislab's GroupedSpectralNorm of the SCC candidates already updates v
    first.) And it is the official arithmetic: sislab divides a conv's output (or SCC's mixing
    vectors) by sigma where that is cheaper than dividing the weight, the same maths rounded
    differently (tests/models/convs/test_spectral_norm.py).
    """
    import torch
    import torch.nn.functional as F
    from torch.nn.utils import parametrizations as pz

    from sislab.models.convs import scc, spectral_norm

    def weight_division(module, name, output_is_smaller):
        del module, name, output_is_smaller
        return False

    spectral_norm.divides_output = scc.divides_output = weight_division

    @torch.no_grad()
    def _power_method_v_first(self, weight_mat, n_power_iterations):
        for _ in range(n_power_iterations):
            self._v = F.normalize(torch.mv(weight_mat.H, self._u), dim=0, eps=self.eps,
                                  out=self._v)
            self._u = F.normalize(torch.mv(weight_mat, self._v), dim=0, eps=self.eps,
                                  out=self._u)

    pz._SpectralNorm._power_method = _power_method_v_first


def use_float64() -> None:
    """Build and run both sides in float64: default dtype, and the legacy ``torch.FloatTensor``
    constructor the official code uses for one-hot maps and loss constants."""
    import torch

    torch.set_default_dtype(torch.float64)
    torch.FloatTensor = torch.DoubleTensor
    torch.cuda.FloatTensor = torch.DoubleTensor
    # sislab casts loss inputs with .float() (mixed precision) and SPADE-style get_edges returns
    # .float(); in this mode .float() means the working precision, float64
    torch.Tensor.float = lambda self, *args, **kwargs: self.to(torch.float64)


def perturb_copy(src, dst, scale: float = 1e-6, seed: int = 123) -> None:
    """``dst`` := ``src`` with every parameter multiplied by ``1 + scale * N(0, 1)``."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        dst.load_state_dict(src.state_dict())
        for _, p in dst.named_parameters():
            p.mul_(1 + scale * torch.randn(p.shape, generator=gen))


def param_rel_l2(reference: dict, other: dict) -> float:
    """``||a - b|| / ||a||`` over the tensors of ``reference`` (same keys in ``other``)."""
    num = sum(float((reference[k] - other[k]).double().pow(2).sum()) for k in reference)
    den = sum(float(reference[k].double().pow(2).sum()) for k in reference)
    return (num / den) ** 0.5


def block_layout_batch(num_classes: int, height: int, width: int, batch: int, seed: int,
                       cell: int = 8):
    """A synthetic batch: label map of random ``cell``-pixel blocks, smooth image in [-1, 1].

    Both sides read the same tensors, so no data loader is involved. The image is a per-class
    colour plus a smooth gradient, so regression losses (L_s, VGG) are not pure noise.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    cells = torch.randint(0, num_classes, (batch, 1, max(height // cell, 1),
                                           max(width // cell, 1)), generator=gen)
    label = torch.nn.functional.interpolate(cells.float(), size=(height, width),
                                            mode="nearest").long()
    colours = torch.rand(num_classes, 3, generator=gen) * 2 - 1
    image = colours[label[:, 0]].permute(0, 3, 1, 2)
    ramp = torch.linspace(-0.2, 0.2, width).view(1, 1, 1, width)
    image = (image * 0.8 + ramp + 0.05 * torch.randn(image.shape, generator=gen)).clamp(-1, 1)
    # one instance per block (ids differ between neighbouring blocks of the same class)
    ids = torch.arange(cells.numel()).view(cells.shape).float()
    instance = torch.nn.functional.interpolate(ids, size=(height, width), mode="nearest").long()
    return {"label": label, "image": image.contiguous(), "instance": instance}


def vgg_state_from_slices(vgg) -> dict:
    """A SPADE-style ``VGG19`` (``sliceK.N.*`` of torchvision's ``features``) as a torchvision
    ``features.N.*`` state dict, for sislab's VGG19Perceptual (same random weights both sides)."""
    out = {}
    for name, tensor in vgg.state_dict().items():
        _slice, index, leaf = name.split(".")
        out[f"features.{index}.{leaf}"] = tensor.clone()
    return out


class SharedNoise:
    """The reparameterisation noise both sides read: ``draw(like)`` returns ``current``.

    The check sets ``current`` before each side's G step and D step, so the official
    ``randn_like`` and sislab's ``reparameterize`` see the very same tensor.
    """

    def __init__(self) -> None:
        self.current = None
        self.calls = 0

    @contextlib.contextmanager
    def queue(self, tensors: list):
        """Within the block, successive draws return ``tensors`` in order (all must be used)."""
        pending = list(tensors)
        self.current = None
        self._pending = pending
        try:
            yield
        finally:
            self._pending = None
        assert not pending, f"{len(pending)} pre-drawn noise tensors were not used"

    def draw(self, like):
        self.calls += 1
        if getattr(self, "_pending", None):
            self.current = self._pending.pop(0)
        assert self.current is not None and self.current.numel() == like.numel(), (
            None if self.current is None else self.current.shape, like.shape)
        return self.current.reshape(like.shape).to(like.dtype)


def patch_randn_like(noise: SharedNoise) -> None:
    """In this process, ``torch.randn_like`` returns ``noise.draw(x)``: the call site of the
    reparameterisation noise in both codebases (official ``reparameterize`` and sislab's
    ``encoders.conv.reparameterize``), so both formulas run unchanged on the same draw."""
    import torch

    torch.randn_like = lambda x, *args, **kwargs: noise.draw(x)


def write_report(report: dict, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=1)


def summary_lines(report: dict) -> list[str]:
    """A short human summary of a per-method report (scgan/, groupdnet/ equiv_check.py)."""
    lines = [f"{report['method']}: teacher-forced {len(report['teacher_forced'])} iterations, "
             f"free-running {len(report['free_running'])}"]
    for key in sorted(k for k in report if k.endswith(("_diff_iter0", "_maxabs_diff"))):
        lines.append(f"  {key}: {report[key]:.3g}")
    for row in report["teacher_forced"]:
        nets = " ".join(f"{n}={row[n + '_grad']['rel_l2']:.2e} "
                        f"(cos {row[n + '_grad']['cosine']:.9f}, "
                        f"worst {row[n + '_grad']['worst_tensor_rel']:.1e})"
                        for n in ("G", "D", "E") if n + "_grad" in row)
        worst_loss = max(row["loss_absdiff"].values())
        lines.append(f"  TF {row['iter']}: grad rel L2 {nets}; max loss |diff| {worst_loss:.2e}")
    for row in report["free_running"]:
        s = max(row["loss_absdiff_sislab"].values())
        c = max(row["loss_absdiff_control"].values())
        pg = " ".join(f"{k[-1]} {row[k]:.1e}/{row[k.replace('sislab', 'control')]:.1e}"
                      for k in row if k.startswith("param_rel_l2_sislab_"))
        lines.append(f"  FR {row['iter']}: max loss |diff| sislab {s:.2e} control {c:.2e}; "
                     f"param rel L2 sislab/control {pg}")
    return lines


def table_row(report: dict) -> str:
    """One Markdown table row of a report: max teacher-forced gradient / loss differences and
    the free-running loss differences of sislab and of the 1e-6 control at the last iteration."""
    tf = report["teacher_forced"]
    nets = [n for n in ("G", "D", "E") if tf and n + "_grad" in tf[0]]
    grads = " / ".join(f"{max(r[n + '_grad']['rel_l2'] for r in tf):.1e}" for n in nets)
    loss = max(max(r["loss_absdiff"].values()) for r in tf) if tf else float("nan")
    fr = report["free_running"]
    if fr:
        last = fr[-1]
        free = (f"{max(last['loss_absdiff_sislab'].values()):.1e} vs "
                f"{max(last['loss_absdiff_control'].values()):.1e}")
    else:
        free = "-"
    flags = ", ".join(f for f, on in (("float64" if report.get("float64") else "float32", True),
                                      ("v-first SN", report.get("patch_sn_order")),
                                      ("as shipped", not report.get("patch_sn_order")),
                                      ("VGG", report.get("vgg"))) if on)
    return (f"| {report.get('config', report.get('preset'))} | {flags} | {len(tf)} | "
            f"{'/'.join(nets)}: {grads} | {loss:.1e} | {len(fr)} | {free} |")


if __name__ == "__main__":
    # python tools/lockstep/compare_steps.py REPORT.json ...: summaries and table rows
    for path in sys.argv[1:]:
        with open(path) as f:
            rep = json.load(f)
        print("\n".join(summary_lines(rep)))
        print(table_row(rep))
