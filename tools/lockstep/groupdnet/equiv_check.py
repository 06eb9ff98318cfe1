#!/usr/bin/env python
"""Lock-step check: official GroupDNet (Seanseattle/SMIS ``--model smis``) vs sislab's groupdnet.

    python tools/lockstep/groupdnet/equiv_check.py [--iters 4] [--model groupdnet|vspade]
        [--vgg] [--patch-sn-order] [--float64] [--skip-free] [--out FILE.json]

``--model vspade``: the repository's VSPADE baseline (``--model pix2pix --netG spadebase --netE
fc``: SPADE's generator from z, SPADE's image encoder, KL) against sislab's ``spade`` with
``use_vae: true``, same options otherwise.

Run from the sislab project root with sislab's python; the official tree is imported from
``$OFFICIAL_ROOT/smis`` (never copied). Both sides: DeepFashion preset (8 classes, no instance
map, group schedule 8, 8, 4, 4, 2, 2, 1, 'more' upsampling, group encoder with its hard-coded
width 256 reading the class-split, box-cropped image), 256x256 (the size the official class crop
needs), decoder ngf 8 and discriminator ndf 8 (tiny), batch 2, the official TTUR Adam (lr 1e-4 /
4e-4, betas (0, 0.9) hard-coded under TTUR), KL 0.05, feature matching 10 (and VGG 10 with
--vgg: the official random VGG weights copied into sislab's). Every official G, D and E
parameter and buffer is copied into sislab's through ``maps/groupdnet.py``.

The reparameterisation noise is shared: ``torch.randn_like`` (its call site on both sides) is
patched to return one pre-drawn tensor per step and side. (A) teacher-forced and (B)
free-running with the 1e-6 control, as ``scgan/equiv_check.py``. Batches: synthetic 64-pixel
block layouts, so classes are absent or partly present and the crops differ per class.
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
from maps import groupdnet as gmap_names  # noqa: E402

NGF, NDF = 8, 8
SIZE = (256, 256)
NUM_CLASSES = 8
BATCH = 2
CELL = 64


def build_sislab(opt, args, vgg_state):
    """sislab's GroupDNetProcedure (or SpadeProcedure with the VAE) with the official options."""
    import torch

    from sislab.models.geometry import DatasetGeometry
    from sislab.models.methods.groupdnet import GroupDNetConfig
    from sislab.models.methods.spade import SpadeConfig
    from sislab.models.registry import get_method
    from sislab.spec.models import LossesSpec, TrainSpec
    from sislab.trainers.procedures.base import ProcedureRuntime
    from sislab.trainers.procedures.groupdnet import GroupDNetProcedure
    from sislab.trainers.procedures.spade import SpadeProcedure

    if args.model == "vspade":
        cfg = SpadeConfig(ngf=NGF, ndf=NDF, use_vae=True, num_upsampling_layers="more")
    else:
        cfg = GroupDNetConfig(preset="deepfashion", ngf=NGF, ndf=NDF)
    geometry = DatasetGeometry(NUM_CLASSES, False, *SIZE, "more")
    assert not opt.no_TTUR  # the official code then hard-codes betas (0, 0.9)
    train = TrainSpec(lr_g=opt.lr / 2, lr_d=opt.lr * 2, betas=(0.0, 0.9), epochs=2,
                      lr_decay_epochs=0, batch_size=BATCH)
    losses = LossesSpec(gan=1.0, feat_match=opt.lambda_feat,
                        perceptual=opt.lambda_vgg if args.vgg else 0.0, kl=opt.lambda_kld)
    runtime = ProcedureRuntime(torch.device("cpu"), 1, lambda m: m, vgg_state)
    if args.model == "vspade":
        return SpadeProcedure(get_method("spade"), cfg, geometry, train, losses, runtime)
    return GroupDNetProcedure(get_method("groupdnet"), cfg, geometry, train, losses, runtime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=4)
    parser.add_argument("--model", choices=("groupdnet", "vspade"), default="groupdnet",
                        help="vspade: the repo's SPADE + VAE baseline (--model pix2pix --netG "
                        "spadebase --netE fc) against sislab's spade with use_vae")
    parser.add_argument("--vgg", action="store_true")
    parser.add_argument("--sn-mode", choices=("converged", "copied"), default="converged")
    parser.add_argument("--patch-sn-order", action="store_true")
    parser.add_argument("--float64", action="store_true")
    parser.add_argument("--skip-free", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    tag = (f"{args.model}_deepfashion{'_vgg' if args.vgg else ''}_{args.sn_mode}"
           f"{'_sn_order' if args.patch_sn_order else ''}{'_f64' if args.float64 else ''}")
    out_path = os.path.abspath(args.out or os.path.join(cs.WORK, "results", f"equiv_{tag}.json"))

    cs.setup_official("smis", args.threads)
    import torch

    from official import build_trainer, checkpoints_dir

    if args.patch_sn_order:
        cs.patch_sn_order()
    if args.float64:
        cs.use_float64()
    noise = cs.SharedNoise()
    cs.patch_randn_like(noise)
    torch.manual_seed(0)
    opt, trainer = build_trainer(ngf=NGF, ndf=NDF, batch=BATCH, model=args.model,
                                 checkpoints_dir=checkpoints_dir(cs.WORK), vgg=args.vgg)
    model = trainer.pix2pix_model_on_one_gpu
    vgg_state = cs.vgg_state_from_slices(model.criterionVGG.vgg) if args.vgg else None
    torch.manual_seed(1)
    procedure = build_sislab(opt, args, vgg_state)
    sis = {"G": procedure.generator, "D": procedure.discriminator, "E": procedure.encoder}
    off = {"G": model.netG, "D": model.netD, "E": model.netE}
    renames = {"G": gmap_names.generator, "D": gmap_names.multiscale_discriminator,
               "E": gmap_names.encoder}
    if args.sn_mode == "converged":
        cs.converge_old_sn(m for net in off.values() for m in net.modules())
    maps = {n: cs.WeightMap(off[n].state_dict(), sis[n].state_dict(), renames[n]) for n in off}

    def sync() -> None:
        for n in off:
            maps[n].copy_into(off[n], sis[n])

    sync()
    batches = [cs.block_layout_batch(NUM_CLASSES, *SIZE, BATCH, seed=200 + i, cell=CELL)
               for i in range(args.iters)]
    latent = (BATCH, opt.z_dim) if args.model == "vspade" else (BATCH, NUM_CLASSES * 8, 4, 4)
    gen = torch.Generator().manual_seed(7)
    eps = [{"g": torch.randn(latent, generator=gen), "d": torch.randn(latent, generator=gen)}
           for _ in batches]

    def official_batch(b):
        return {"label": b["label"].clone(), "image": b["image"].clone(),
                "instance": torch.zeros(1), "path": [f"s{i}" for i in range(BATCH)]}

    def sislab_batch(b):
        return {"label": b["label"].clone(), "image": b["image"].clone()}

    sem_o, real = model.preprocess_input(official_batch(batches[0]))
    sem_s = procedure._semantics(sislab_batch(batches[0]))
    with torch.no_grad():
        if args.model == "vspade":
            split_o = split_s = real
            mu_o, logvar_o = model.netE(real)
            mu_s, logvar_s = procedure.encoder(real)
        else:
            split_o = model.trans_img(sem_o, real)
            split_s = procedure.encoder.encoder_input(real, sem_s)
            mu_o, logvar_o = model.netE(split_o)
            mu_s, logvar_s = procedure.encoder(real, sem_s)
    report = {"method": args.model, "preset": "deepfashion", "ngf": NGF, "ndf": NDF,
              "size": SIZE, "batch": BATCH, "vgg": args.vgg, "sn_mode": args.sn_mode,
              "patch_sn_order": args.patch_sn_order, "float64": args.float64,
              "entries": {n: len(maps[n]) for n in maps},
              "semantics_maxabs_diff": float((sem_o - sem_s).abs().max()),
              "encoder_input_maxabs_diff": float((split_o - split_s).abs().max()),
              "encoder_mu_maxabs_diff_iter0": float((mu_o - mu_s.reshape(mu_o.shape)).abs().max()),
              "encoder_logvar_maxabs_diff_iter0": float(
                  (logvar_o - logvar_s.reshape(logvar_o.shape)).abs().max()),
              "teacher_forced": [], "free_running": []}
    loss_names = {"GAN": "g_gan", "GAN_Feat": "g_feat", "VGG": "g_vgg", "KLD": "g_kl",
                  "D_Fake": "d_fake", "D_real": "d_real"}
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
        gs = {n: cs.grads_of(sis[n]) for n in ("G", "E")}
        trainer.run_generator_one_step(official_batch(b))
        go = {n: maps[n].to_sislab(cs.grads_of(off[n]), gs[n].keys()) for n in ("G", "E")}
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
        row = {"iter": i + 1, "official": lo, "sislab": ls,
               "loss_absdiff": {k: abs(lo[k] - ls[k]) for k in lo},
               "G_grad": cs.compare_grads(go["G"], gs["G"]),
               "D_grad": cs.compare_grads(do, ds),
               "E_grad": cs.compare_grads(go["E"], gs["E"]),
               "G_bn_running_stats_maxabs_diff": bn_diff, "noise_draws": noise.calls}
        report["teacher_forced"].append(row)
        print(json.dumps({k: row[k] for k in ("iter", "loss_absdiff")}
                         | {n: row[n + "_grad"]["rel_l2"] for n in "GDE"}), file=sys.stderr)

    if not args.skip_free:
        for n in off:
            off[n].load_state_dict(init[n])
        trainer.optimizer_G.state.clear()
        trainer.optimizer_D.state.clear()
        sync()
        procedure.opt_g.state.clear()
        procedure.opt_d.state.clear()
        torch.manual_seed(0)
        _, control = build_trainer(ngf=NGF, ndf=NDF, batch=BATCH, model=args.model,
                                   checkpoints_dir=checkpoints_dir(cs.WORK), vgg=args.vgg)
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
            # sislab's train_step: a G step then a D step, each drawing once
            with noise.queue([eps[i]["g"], eps[i]["d"]]):
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
