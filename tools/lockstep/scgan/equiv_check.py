#!/usr/bin/env python
"""Lock-step check: official SC-GAN (dvlab-research/SCGAN) vs sislab's ``scgan``.

    python tools/lockstep/scgan/equiv_check.py [--iters 4] [--config ade20k|coco|celeba] [--vgg]
        [--instance] [--patch-sn-order] [--sn-mode converged|copied] [--skip-free]
        [--out FILE.json]

Run from the sislab project root with sislab's python; the official tree is imported from
``$OFFICIAL_ROOT/scgan`` (never copied). Both sides are built with the official YAML's model keys
(``config/scgan_<config>.yml``: SVG + SCC/SCN SRG, FPSE D, softmax, tau, candidate counts, L_s l1
x 2) at tiny widths (ngf = nff = nrf = 4, ndf = 8), 64x64, 8 classes, batch 2, Adam with the
official TTUR (lr 1e-4 / 4e-4, betas (0, 0.999)). ``celeba``: the CelebA YAML (VAE encoder + KL
0.05, multi-scale D, Gaussian position pyramid, no SN in the SVG, L_s x 1) at 256x256, the
smallest size its encoder accepts. Every official G/D/E parameter and buffer is copied into
sislab's networks through ``maps/scgan.py`` (the SCC's per-candidate convs are stacked into
sislab's candidate tensor, spectral-norm u, v included). With the VAE the reparameterisation
noise is shared: ``torch.randn_like``, its call site on both sides, returns one pre-drawn tensor
per step.

(A) teacher-forced, N iterations: before the G step and before the D step sislab is reset to the
official state; both compute the losses and the whole G and D gradient vectors, compared as
relative L2 difference and cosine (plus BatchNorm running statistics). (B) free-running from the
same start, N iterations, with the official code against a copy of itself perturbed by 1e-6
(relative) as the float-noise control.

--sn-mode converged: u, v of every spectral norm after 200 power iterations on the shared weights
(both sides); copied: the official random u, v. --patch-sn-order: sislab's parametrized spectral
norm (SVG, FPSE, shortcut convs) updates v first, the official order (the SCC candidates'
GroupedSpectralNorm already does). Batches: synthetic 8-pixel block layouts (compare_steps).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import compare_steps as cs  # noqa: E402
from maps import scgan as scgan_map  # noqa: E402

# Tiny widths the official options accept (toRGB needs nrf >= 2; FPSE needs H, W % 32 == 0).
TINY = {"ngf": 4, "nff": 4, "nrf": 4, "ndf": 8}
SIZES = {"ade20k": (64, 64), "coco": (64, 64), "celeba": (256, 256)}
NUM_CLASSES = 8
BATCH = 2
Z_DIM = 256  # the official default, used by the CelebA VAE


def build_sislab(opt, args, vgg_state):
    """sislab's ScganProcedure with the official run's options."""
    import torch

    from sislab.models.geometry import DatasetGeometry
    from sislab.models.methods.scgan import ScganConfig
    from sislab.models.registry import get_method
    from sislab.spec.models import LossesSpec, TrainSpec
    from sislab.trainers.procedures.base import ProcedureRuntime
    from sislab.trainers.procedures.scgan import ScganProcedure

    cfg = ScganConfig(preset=args.config, **TINY)
    geometry = DatasetGeometry(NUM_CLASSES, args.instance, *SIZES[args.config], "normal")
    g_lr, d_lr = (opt.lr, opt.lr) if opt.no_TTUR else (opt.lr / 2, opt.lr * 2)
    train = TrainSpec(lr_g=g_lr, lr_d=d_lr, betas=(opt.beta1, opt.beta2), epochs=2,
                      lr_decay_epochs=0, batch_size=BATCH)
    losses = LossesSpec(gan=1.0, feat_match=opt.lambda_feat,
                        perceptual=opt.lambda_vgg if args.vgg else 0.0, kl=opt.lambda_kld)
    runtime = ProcedureRuntime(torch.device("cpu"), 1, lambda m: m, vgg_state)
    return ScganProcedure(get_method("scgan"), cfg, geometry, train, losses, runtime), cfg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=4)
    parser.add_argument("--config", choices=("ade20k", "coco", "celeba"), default="ade20k")
    parser.add_argument("--vgg", action="store_true", help="VGG19 perceptual loss on both sides "
                        "(the official random VGG weights copied into sislab's)")
    parser.add_argument("--instance", action="store_true", help="instance edge channel")
    parser.add_argument("--sn-mode", choices=("converged", "copied"), default="converged")
    parser.add_argument("--patch-sn-order", action="store_true")
    parser.add_argument("--skip-free", action="store_true")
    parser.add_argument("--float64", action="store_true", help="both sides in float64 (the "
                        "official FloatTensor patched to DoubleTensor in this process): "
                        "separates float rounding from real differences")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    tag = (f"scgan_{args.config}{'_vgg' if args.vgg else ''}{'_inst' if args.instance else ''}"
           f"_{args.sn_mode}{'_sn_order' if args.patch_sn_order else ''}"
           f"{'_f64' if args.float64 else ''}")
    out_path = os.path.abspath(args.out or os.path.join(cs.WORK, "results", f"equiv_{tag}.json"))

    cs.setup_official("scgan", args.threads)
    import torch

    from official import build_trainer, checkpoints_dir

    if args.patch_sn_order:
        cs.patch_sn_order()
    if args.float64:
        cs.use_float64()
    noise = cs.SharedNoise()
    cs.patch_randn_like(noise)
    size = SIZES[args.config]
    config = f"config/scgan_{args.config}.yml"

    def official_trainer():
        torch.manual_seed(0)
        return build_trainer(config, TINY, size=size, batch=BATCH, label_nc=NUM_CLASSES,
                             no_instance=not args.instance,
                             checkpoints_dir=checkpoints_dir(cs.WORK), vgg=args.vgg)

    opt, trainer = official_trainer()
    model = trainer.pix2pix_model_on_one_gpu
    vgg_state = cs.vgg_state_from_slices(model.criterionVGG.vgg) if args.vgg else None
    torch.manual_seed(1)
    procedure, cfg = build_sislab(opt, args, vgg_state)
    assert cfg.use_vae == bool(opt.use_vae) and cfg.discriminator == opt.netD, (cfg, opt.netD)
    off = {"G": model.netG, "D": model.netD}
    sis = {"G": procedure.generator, "D": procedure.discriminator}
    renames = {"G": scgan_map.generator,
               "D": scgan_map.fpse_discriminator if opt.netD == "fpse"
               else scgan_map.multiscale_discriminator}
    if opt.use_vae:
        off["E"], sis["E"], renames["E"] = model.netE, procedure.encoder, scgan_map.encoder
    g_side = [n for n in ("G", "E") if n in off]  # what the G step's optimiser trains
    if args.sn_mode == "converged":
        cs.converge_old_sn(m for net in off.values() for m in net.modules())
    maps = {n: cs.WeightMap(off[n].state_dict(), sis[n].state_dict(), renames[n]) for n in off}

    def sync() -> None:
        for n in off:
            maps[n].copy_into(off[n], sis[n])

    sync()
    cell = size[0] // 8
    batches = [cs.block_layout_batch(NUM_CLASSES, *size, BATCH, seed=100 + i, cell=cell)
               for i in range(args.iters)]
    gen = torch.Generator().manual_seed(7)
    eps = [{"g": torch.randn(BATCH, Z_DIM, generator=gen),
            "d": torch.randn(BATCH, Z_DIM, generator=gen)} for _ in batches]

    def official_batch(b):
        return {"label": b["label"].clone(), "image": b["image"].clone(),
                "instance": b["instance"].clone(), "path": [f"s{i}" for i in range(BATCH)]}

    def sislab_batch(b):
        out = {"label": b["label"].clone(), "image": b["image"].clone()}
        if args.instance:
            out["instance"] = b["instance"].clone()
        return out

    # the semantic maps both sides build from the same batch must be equal; then the eval-mode
    # outputs of the shared initial weights (z shared with the VAE)
    sem_o, _ = model.preprocess_input(official_batch(batches[0]))
    sem_s = procedure._semantics(sislab_batch(batches[0]))
    z0 = eps[0]["g"] if opt.use_vae else None
    with torch.no_grad():
        model.eval()
        sis["G"].eval()
        out_o = model.netG(sem_o, z0)
        out_s = sis["G"](sem_s, z0)
        model.train()
        sis["G"].train()
    report = {"method": "scgan", "config": args.config, "tiny": TINY, "size": size,
              "batch": BATCH, "vgg": args.vgg, "instance": args.instance,
              "sn_mode": args.sn_mode, "patch_sn_order": args.patch_sn_order,
              "float64": args.float64, "netD": opt.netD, "use_vae": bool(opt.use_vae),
              "entries": {n: len(maps[n]) for n in maps},
              "official_entries": {n: len(off[n].state_dict()) for n in off},
              "semantics_maxabs_diff": float((sem_o - sem_s).abs().max()),
              "eval_G_out_maxabs_diff_iter0": float((out_o[0] - out_s.image).abs().max()),
              "eval_svg_image_maxabs_diff_iter0": float((out_o[1] - out_s.svg_image).abs().max()),
              "teacher_forced": [], "free_running": []}
    loss_names = {"GAN": "g_gan", "GAN_Feat": "g_feat", f"W_Recon_{opt.rw_loss}": "g_svg",
                  "VGG": "g_vgg", "KLD": "g_kl", "D_Fake": "d_fake", "D_real": "d_real"}

    init = {n: copy.deepcopy(off[n].state_dict()) for n in off}
    bn_keys = [k for k in maps["G"].sources if k.endswith(("running_mean", "running_var"))]
    for i, b in enumerate(batches):
        s_batch = sislab_batch(b)
        semantics = procedure._semantics(s_batch)
        sync()
        procedure.opt_g.zero_grad(set_to_none=True)
        procedure.opt_d.zero_grad(set_to_none=True)
        noise.current = eps[i]["g"]
        loss_g, g_terms = procedure.generator_losses(s_batch, semantics)
        loss_g.backward()
        gs = {n: cs.grads_of(sis[n]) for n in g_side}
        trainer.run_generator_one_step(official_batch(b))
        go = {n: maps[n].to_sislab(cs.grads_of(off[n]), gs[n].keys()) for n in g_side}
        o_state, s_state = maps["G"].to_sislab(model.netG.state_dict()), sis["G"].state_dict()
        bn_diff = max(float((o_state[k] - s_state[k]).abs().max()) for k in bn_keys)
        sync()
        procedure.opt_d.zero_grad(set_to_none=True)
        noise.current = eps[i]["d"]
        loss_d, d_terms = procedure.discriminator_losses(s_batch, semantics)
        loss_d.backward()
        ds = cs.grads_of(sis["D"])
        trainer.run_discriminator_one_step(official_batch(b))
        do = maps["D"].to_sislab(cs.grads_of(model.netD), ds.keys())
        lo = {loss_names[k]: float(v.detach().mean())
              for k, v in trainer.get_latest_losses().items()}
        ls = {k: float(v.detach()) for k, v in (g_terms | d_terms).items()}
        assert set(lo) == set(ls), (sorted(lo), sorted(ls))
        row = {"iter": i + 1, "official": lo, "sislab": ls,
               "loss_absdiff": {k: abs(lo[k] - ls[k]) for k in lo},
               "D_grad": cs.compare_grads(do, ds),
               "G_bn_running_stats_maxabs_diff": bn_diff}
        for n in g_side:
            row[f"{n}_grad"] = cs.compare_grads(go[n], gs[n])
        report["teacher_forced"].append(row)
        print(json.dumps({k: row[k] for k in ("iter", "loss_absdiff")}
                         | {n: row[n + "_grad"]["rel_l2"] for n in off}), file=sys.stderr)

    if not args.skip_free:
        for n in off:
            off[n].load_state_dict(init[n])
        trainer.optimizer_G.state.clear()
        trainer.optimizer_D.state.clear()
        sync()
        procedure.opt_g.state.clear()
        procedure.opt_d.state.clear()
        _, control = official_trainer()
        cmodel = control.pix2pix_model_on_one_gpu
        if args.vgg:
            cmodel.criterionVGG.load_state_dict(model.criterionVGG.state_dict())
        for seed, n in enumerate(off):
            cs.perturb_copy(off[n], getattr(cmodel, "net" + n), seed=123 + seed)
        for i, b in enumerate(batches):
            with contextlib.redirect_stdout(sys.stderr):
                for tr in (trainer, control):
                    noise.current = eps[i]["g"]
                    tr.run_generator_one_step(official_batch(b))
                    noise.current = eps[i]["d"]
                    tr.run_discriminator_one_step(official_batch(b))
            # sislab's train_step: a G step then a D step, each drawing once with the VAE
            with noise.queue([eps[i]["g"], eps[i]["d"]] if opt.use_vae else []):
                ls = {k: float(v) for k, v in procedure.train_step(sislab_batch(b)).items()}
            lo = {loss_names[k]: float(v.detach().mean())
                  for k, v in trainer.get_latest_losses().items()}
            lc = {loss_names[k]: float(v.detach().mean())
                  for k, v in control.get_latest_losses().items()}
            row = {"iter": i + 1, "official": lo, "sislab": {k: ls[k] for k in lo},
                   "official_perturbed_1e-6": lc,
                   "loss_absdiff_sislab": {k: abs(lo[k] - ls[k]) for k in lo},
                   "loss_absdiff_control": {k: abs(lo[k] - lc[k]) for k in lo}}
            for n in off:
                o_params = {k: v.detach() for k, v in off[n].named_parameters()}
                c_params = {k: v.detach()
                            for k, v in getattr(cmodel, "net" + n).named_parameters()}
                s_params = {k: v.detach() for k, v in sis[n].named_parameters()}
                ref = {k: v for k, v in maps[n].to_sislab(o_params).items() if k in s_params}
                row[f"param_rel_l2_sislab_{n}"] = cs.param_rel_l2(ref, s_params)
                row[f"param_rel_l2_control_{n}"] = cs.param_rel_l2(o_params, c_params)
            report["free_running"].append(row)
            print(json.dumps({k: row[k] for k in ("iter", "loss_absdiff_sislab",
                                                  "loss_absdiff_control")}), file=sys.stderr)

    cs.write_report(report, out_path)
    for line in cs.summary_lines(report):
        print(line)
    print(f"report: {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
