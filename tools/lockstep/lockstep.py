#!/usr/bin/env python
"""Lock-step check of one sislab method against its official implementation.

    python tools/lockstep/lockstep.py --method clade|clade-icpe|oasis|va-spade|va-clade|va-oasis
        [--iters 4] [--size 64x64] [--classes 8] [--batch 2] [--instance] [--no-class0]
        [--sn-mode converged|copied|own] [--patch-sn-order] [--skip-free] [--out FILE.json]
        [--max-rel 1e-5]

Run from the repository root with sislab importable (``PYTHONPATH=src``) and the official trees
under ``$OFFICIAL_ROOT`` (README.md). The official code is imported at run time, never copied.

Both sides are built with the same options (the method's map in ``maps/``); then every official
G/D (and OASIS EMA) parameter and buffer is copied into sislab's networks by name (the map
asserts a one-to-one match with equal shapes). Batches are synthetic (random class blocks,
instance ids per block, image U(-1, 1); seed 0) and fed to both sides as tensors.

(A) teacher-forced, N iterations: before each G step and each D step, sislab is reset to the
official state; both compute losses and gradients, compared as relative L2 / cosine of the whole
G and D gradient vectors; BN running statistics and (OASIS) the EMA update are compared too.
(B) free-running, N iterations from the same start, with a control: the official code against a
copy of itself whose weights got a 1e-6 relative perturbation. Per iteration: the losses of the
three runs and the parameter distance of sislab and of the control from the official run.

Randomness inside a step (OASIS 3D noise, VASIS semantic noise: torch.randn/rand; LabelMix
masks) is drawn once by the official code and replayed to sislab and the control (rng_tape.py,
labelmix patch below), so all sides see the same tensors.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", required=True)
    parser.add_argument("--iters", type=int, default=4)
    parser.add_argument("--size", default="64x64", help="HxW")
    parser.add_argument("--classes", type=int, default=8, help="one-hot label channels")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--instance", action="store_true", help="instance maps (edge channel)")
    parser.add_argument(
        "--no-class0",
        action="store_true",
        help="labels drawn from 1..classes-1 (CLADE's ICPE script skips label 0)",
    )
    parser.add_argument(
        "--icpe-dist",
        choices=("official", "sislab"),
        default="official",
        help="CLADE-ICPE: the official side reads the map of the official "
        "script (default) or sislab's online map (isolates the map's float error)",
    )
    parser.add_argument("--sn-mode", choices=("converged", "copied", "own"), default="converged")
    parser.add_argument(
        "--patch-sn-order",
        action="store_true",
        help="sislab's spectral norm updates v then u and divides the weight by sigma (the "
        "official torch order and arithmetic)",
    )
    parser.add_argument("--skip-free", action="store_true")
    parser.add_argument(
        "--max-rel",
        type=float,
        default=None,
        help="exit 1 if a teacher-forced gradient rel. L2 difference exceeds this",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="report JSON (default: lockstep-<method>.json in cwd)")
    return parser.parse_args()


def synthetic_batches(torch, setup, n: int, no_class0: bool, extra_batch):
    """``n`` batches of random 8x8-pixel class blocks (instance id = block id), image U(-1,1)."""
    gen = torch.Generator().manual_seed(0)
    b, h, w = setup.batch, setup.height, setup.width
    low = 1 if no_class0 else 0
    batches = []
    for _ in range(n):
        cells = torch.randint(low, setup.classes, (b, 1, h // 8, w // 8), generator=gen)
        label = torch.nn.functional.interpolate(cells.float(), size=(h, w), mode="nearest")
        ids = torch.arange(b * (h // 8) * (w // 8), dtype=torch.float32).view(b, 1, h // 8, w // 8)
        instance = torch.nn.functional.interpolate(ids, size=(h, w), mode="nearest")
        image = torch.rand(b, 3, h, w, generator=gen) * 2 - 1
        data = {
            "label": label,
            "instance": instance,
            "image": image,
            "dist": torch.zeros(b),
            "path": [f"synthetic_{i}.png" for i in range(b)],
            "name": [f"synthetic_{i}" for i in range(b)],
        }
        if extra_batch is not None:
            data.update(extra_batch(setup, label))
        sis = {"image": image.clone(), "label": label.long()}
        if setup.use_instance:
            sis["instance"] = instance.long()
        batches.append((data, sis))
    return batches


class LabelMixTape:
    """Record the official LabelMix mask; replay it to the control and to sislab.

    Official: ``models.models.generate_labelmix`` (looked up by the model's forward at call
    time) is wrapped. sislab: ``labelmix_mask`` in its OASIS procedure module returns the mask.
    """

    def __init__(self, official_models, sislab_oasis) -> None:
        self.mode = "record"
        self.mask = None
        original = official_models.generate_labelmix

        def generate_labelmix(label, fake_image, real_image):
            if self.mode == "record":
                mixed, mask = original(label, fake_image, real_image)
                self.mask = mask.detach().clone()
                return mixed, mask
            mask = self.mask.clone()
            return mask * real_image + (1 - mask) * fake_image, mask

        official_models.generate_labelmix = generate_labelmix

        def labelmix_mask(classes, num_classes=None):
            assert self.mask is not None and self.mask.shape[0] == classes.shape[0]
            return self.mask.clone()

        sislab_oasis.labelmix_mask = labelmix_mask


def main() -> int:
    args = parse_args()
    import maps
    from runtime import enter_official

    method_map = maps.get(args.method)
    height, width = (int(v) for v in args.size.lower().split("x"))
    setup = maps.Setup(args.method, args.classes, height, width, args.batch, args.instance)
    out_path = os.path.abspath(args.out or f"lockstep-{args.method}.json")
    scratch = tempfile.mkdtemp(prefix="lockstep-")

    enter_official(method_map.repo, args.threads)
    import torch
    import torch.nn.functional as F
    from compare import grad_diff, param_rel_l2, state_maxabs
    from compare_steps import patch_sn_order
    from official_sides import OasisSide, Pix2PixSide
    from rng_tape import RngTape
    from sislab_side import base_spec, build_procedure

    from sislab.models.geometry import DatasetGeometry

    if args.patch_sn_order:
        patch_sn_order()

    torch.manual_seed(0)
    argv = method_map.official_argv(setup, os.path.join(scratch, "ckpt"))
    if method_map.kind == "pix2pix":
        official = Pix2PixSide(argv)
    else:
        official = OasisSide(argv, method_map.dataset_opts(setup))
    spec = method_map.sislab_spec(
        setup,
        base_spec(method_map.sislab_method or args.method, args.classes, height, width, args.batch),
    )
    geometry = DatasetGeometry(args.classes, args.instance, height, width)
    procedure, _ = build_procedure(spec, geometry)
    sis_nets = {"G": procedure.generator, "D": procedure.discriminator}
    if getattr(procedure, "ema", None) is not None:
        sis_nets["EMA"] = procedure.ema

    tape = RngTape()
    lm_tape = None
    if method_map.kind == "oasis":
        import models.models as official_models

        import sislab.trainers.procedures.oasis as sislab_oasis

        lm_tape = LabelMixTape(official_models, sislab_oasis)

    if args.sn_mode == "converged":
        with torch.no_grad():
            for net in official.nets.values():
                for module in net.modules():
                    if hasattr(module, "weight_orig"):
                        wm = module.weight_orig.reshape(module.weight_orig.shape[0], -1)
                        u, v = module.weight_u, module.weight_v
                        for _ in range(200):
                            v.copy_(F.normalize(wm.t() @ u, dim=0, eps=1e-12))
                            u.copy_(F.normalize(wm @ v, dim=0, eps=1e-12))

    # weight map: official key -> sislab key, one-to-one, equal shapes
    key_maps: dict[str, dict[str, str]] = {}
    for name, off_net in official.nets.items():
        to_sis = method_map.key_maps[name]
        o_state = off_net.state_dict(keep_vars=True)
        s_state = sis_nets[name].state_dict(keep_vars=True)
        mapping = {ok: to_sis(ok) for ok in o_state}
        missing = sorted(set(s_state) - set(mapping.values()))
        unknown = sorted(k for k, v in mapping.items() if v not in s_state)
        if missing or unknown or len(set(mapping.values())) != len(mapping):
            sys.exit(
                f"{name}: weight map is not one-to-one\n  official keys without a sislab "
                f"match: {unknown[:40]}\n  sislab keys never mapped: {missing[:40]}"
            )
        bad = [ok for ok, sk in mapping.items() if o_state[ok].shape != s_state[sk].shape]
        if bad:
            sys.exit(
                f"{name}: shape mismatch: "
                + ", ".join(
                    f"{ok} {tuple(o_state[ok].shape)} vs {mapping[ok]} "
                    f"{tuple(s_state[mapping[ok]].shape)}"
                    for ok in bad[:6]
                )
            )
        key_maps[name] = mapping

    def sync(names=None) -> None:
        """Copy every official parameter and buffer into sislab (SN u, v and BN stats too)."""
        with torch.no_grad():
            for name in names or key_maps:
                o_state = official.nets[name].state_dict()
                s_state = sis_nets[name].state_dict(keep_vars=True)
                for ok, sk in key_maps[name].items():
                    if args.sn_mode == "own" and sk.endswith(("._u", "._v")):
                        continue
                    s_state[sk].copy_(method_map.value(name, ok, o_state[ok]))

    sync()
    entries = {name: len(m) for name, m in key_maps.items()}
    batches = synthetic_batches(torch, setup, args.iters, args.no_class0, method_map.extra_batch)
    report = {
        "method": args.method,
        "setup": vars(setup) if hasattr(setup, "__dict__") else {},
        "args": vars(args),
        "copied_entries": entries,
        "teacher_forced": [],
        "free_running": [],
    }
    report["setup"] = {
        "classes": setup.classes,
        "size": [height, width],
        "batch": setup.batch,
        "use_instance": setup.use_instance,
    }
    if args.method == "clade-icpe":
        from sislab.models.norms.intra_class_offsets import intra_class_offsets

        data0 = batches[0][0]
        ours = intra_class_offsets(data0["label"][:, 0].long())
        report["icpe_dist_maxabs_diff"] = float((ours - data0["dist"]).abs().max())
        report["icpe_dist_fed_to_official"] = args.icpe_dist
        if args.icpe_dist == "sislab":
            for data, _ in batches:
                data["dist"] = intra_class_offsets(data["label"][:, 0].long())

    init = {name: copy.deepcopy(net.state_dict()) for name, net in official.nets.items()}
    loss_map = method_map.losses

    def sis_grads(net):
        return {n: p.grad.detach().clone() for n, p in net.named_parameters() if p.grad is not None}

    def off_grads(name):
        inv = key_maps[name]
        return {
            inv[n]: method_map.value(name, n, p.grad.detach().clone())
            for n, p in official.nets[name].named_parameters()
            if p.grad is not None
        }

    bn = ("running_mean", "running_var")
    # (A) teacher-forced
    for i, (data, sis_batch) in enumerate(batches):
        it = i + 1
        semantics = procedure._semantics(sis_batch)
        sync()
        if lm_tape:
            lm_tape.mode = "record"
        with tape.record():
            official.g_step(data)
        go = off_grads("G")
        procedure.opt_g.zero_grad(set_to_none=True)
        procedure.opt_d.zero_grad(set_to_none=True)
        with tape.replay():
            loss_g, g_terms = procedure.generator_losses(sis_batch, semantics)
        loss_g.backward()
        gs = sis_grads(procedure.generator)
        bn_g, _ = state_maxabs(
            official.nets["G"].state_dict(), procedure.generator.state_dict(), key_maps["G"], bn
        )
        sync()  # the official state after its G update
        procedure.opt_d.zero_grad(set_to_none=True)
        with tape.record():
            official.d_step(data)
        do = off_grads("D")
        with tape.replay():
            loss_d, d_terms = procedure.discriminator_losses(sis_batch, semantics)
        loss_d.backward()
        ds = sis_grads(procedure.discriminator)
        lo = official.losses()
        terms = {k: float(v) for k, v in (g_terms | d_terms).items()}
        row = {
            "iter": it,
            "official": lo,
            "sislab": terms,
            "loss_absdiff": {o: abs(lo[o] - terms[s]) for o, s in loss_map.items() if o in lo},
            "G_grad": grad_diff(go, gs),
            "D_grad": grad_diff(do, ds),
            "G_bn_running_stats_maxabs_diff": bn_g,
            "drawn": {"randn/rand calls": tape.recorded},
        }
        if "EMA" in key_maps:
            sync(["G", "EMA"])
            official.after_step(it)
            from sislab.trainers.procedures.oasis import update_ema

            update_ema(procedure.ema, procedure.generator, procedure.cfg.ema_decay)
            row["EMA_state_maxabs_diff"], row["EMA_worst_entry"] = state_maxabs(
                official.nets["EMA"].state_dict(),
                procedure.ema.state_dict(),
                key_maps["EMA"],
                ("",),
                lambda k, v: method_map.value("EMA", k, v),
            )
        else:
            official.after_step(it)
        report["teacher_forced"].append(row)
        print(
            json.dumps(
                {k: row[k] for k in ("iter", "loss_absdiff")}
                | {"G_rel": row["G_grad"]["rel_l2"], "D_rel": row["D_grad"]["rel_l2"]}
            ),
            file=sys.stderr,
        )

    # (B) free-running from the same start, with the 1e-6-perturbed official control
    if not args.skip_free:
        for name, net in official.nets.items():
            net.load_state_dict(init[name])
        for opt in official.optimizers.values():
            opt.state.clear()
        sync()
        procedure.opt_g.state.clear()
        procedure.opt_d.state.clear()
        control = official.twin()
        gen = torch.Generator().manual_seed(123)
        with torch.no_grad():
            for name, net in official.nets.items():
                control.nets[name].load_state_dict(net.state_dict())
                if name == "EMA":
                    continue
                for p in control.nets[name].parameters():
                    p.mul_(1 + 1e-6 * torch.randn(p.shape, generator=gen))
        for i, (data, sis_batch) in enumerate(batches):
            it = i + 1
            if lm_tape:
                lm_tape.mode = "record"
            with tape.record():
                official.g_step(data)
                official.d_step(data)
            official.after_step(it)
            lo = official.losses()
            if lm_tape:
                lm_tape.mode = "replay"
            with tape.replay():
                control.g_step(data)
                control.d_step(data)
            control.after_step(it)
            lc = control.losses()
            with tape.replay():
                ls = {k: float(v) for k, v in procedure.train_step(sis_batch).items()}
            row = {
                "iter": it,
                "official": lo,
                "sislab": ls,
                "control": lc,
                "loss_absdiff_sislab": {
                    o: abs(lo[o] - ls[s]) for o, s in loss_map.items() if o in lo
                },
                "loss_absdiff_control": {o: abs(lo[o] - lc[o]) for o in loss_map if o in lo},
                "param_rel_l2_sislab": {},
                "param_rel_l2_control": {},
            }
            for name in ("G", "D"):
                o_params = dict(official.nets[name].named_parameters())
                row["param_rel_l2_sislab"][name] = param_rel_l2(
                    {k: method_map.value(name, k, v.detach()) for k, v in o_params.items()},
                    dict(sis_nets[name].named_parameters()),
                    {k: v for k, v in key_maps[name].items() if k in o_params},
                )
                row["param_rel_l2_control"][name] = param_rel_l2(
                    o_params, dict(control.nets[name].named_parameters()), {k: k for k in o_params}
                )
            report["free_running"].append(row)
            print(
                json.dumps(
                    {
                        "iter": it,
                        "sislab": row["param_rel_l2_sislab"],
                        "control": row["param_rel_l2_control"],
                    }
                ),
                file=sys.stderr,
            )

    with open(out_path, "w") as f:
        json.dump(report, f, indent=1)
    shutil.rmtree(scratch, ignore_errors=True)  # the official option files
    from show import summary_lines

    for line in summary_lines(report):
        print(line)
    print(f"report: {out_path}")
    if args.max_rel is not None:
        worst = max(
            max(r["G_grad"]["rel_l2"], r["D_grad"]["rel_l2"]) for r in report["teacher_forced"]
        )
        if worst > args.max_rel:
            print(
                f"teacher-forced gradient difference {worst:.3g} > {args.max_rel}", file=sys.stderr
            )
            return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
