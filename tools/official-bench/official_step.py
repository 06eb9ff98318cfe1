#!/usr/bin/env python
"""Seconds per training iteration of the OFFICIAL implementations, on CPU, synthetic data.

    python official_step.py --repo spade|clade|oasis|scgan|va-spade|va-clade|va-oasis|groupdnet
                            --size HxW --iters 3 [--warmup 1]
                            [--threads 2] [-- extra args passed to the repo's own option parser]

Builds the networks with the repository's own option parser (sys.argv) and trainer / model
classes, then runs ``warmup`` untimed + ``iters`` timed iterations (one iteration = the repo's
G step then D step; OASIS and VA-OASIS: the loop body of train.py, i.e. G step, D step, EMA
update). VA-SPADE / VA-CLADE run xml94/VASIS's VASIS tree (SPADE's trainer, --norm_mode
spade_variation / clade_variation with the paper runs' options), VA-OASIS its VA-OASIS tree
(OASIS's train.py with --no_3dnoise, as its Cityscapes script), GroupDNet Seanseattle/SMIS
(SPADE's trainer, --model smis --netG Cityscapes --ngf 280, as its Cityscapes script). Prints
ONE JSON line on stdout: {repo, size, s_per_iter_median, iter_s, g_params, d_params, peak_rss_mb,
threads, ...}; everything the repos print goes to stderr.

Nothing in the repos is edited; only runtime monkeypatches:
  * nn.Module.cuda / Tensor.cuda -> no-ops (VGGLoss calls VGG19().cuda() unconditionally);
  * torchvision.models.vgg19(pretrained=True) -> vgg19(weights=None) (random weights, no download);
  * a stub ``ptflops`` module (SC-GAN's trainer imports it and never uses it);
  * ``torch._six`` shim with container_abcs = collections.abc (SC-GAN util/func.py);
  * torch.cuda.FloatTensor -> torch.FloatTensor (only reached if someone passes --gpu_ids != -1);
  * torch.optim.Adam(betas=...) cast to floats (SMIS passes (0, 0.9), which torch now rejects).
All repos run with --gpu_ids -1 (their own CPU path: no DataParallel).
Data loading is bypassed: random 8x8-pixel-block label map (cells at 1/8 resolution, nearest
upsampled, seed 0, exactly as sislab's bench), instance map = label map, image U(-1, 1).
"""

from __future__ import annotations

import argparse
import collections.abc
import contextlib
import json
import os
import resource
import statistics
import sys
import time
import types

# The exported official trees (README.md): ROOT/spade, ROOT/clade, ROOT/oasis, ROOT/scgan; default ../official,
# a sibling of the project root, outside the repo.
HERE = os.path.abspath(os.environ.get("OFFICIAL_ROOT", "../official"))
REPOS = {
    "spade": "spade",
    "clade": "clade",
    "oasis": "oasis",
    "scgan": "scgan",
    "va-spade": "vasis/VASIS",
    "va-clade": "vasis/VASIS",
    "va-oasis": "vasis/VA-OASIS",
    "groupdnet": "smis",
}
# Options of the official training scripts beyond the dataset and run plumbing:
# VASIS scripts/city_train.sh (the paper runs: learned position code, all-channel noise,
# norm_cat, reflect padding); SMIS scripts (cityscapes: --ngf 280 --netG Cityscapes).
VASIS_ARGS = [
    "--pos",
    "learn",
    "--pos_nc",
    "all",
    "--mode_noise",
    "norm_cat",
    "--noise_nc",
    "all",
    "--pad",
    "reflect",
    "--dist_type",
    "offline",
]
REPO_ARGS = {
    "clade": ["--norm_mode", "clade"],
    "va-spade": ["--norm_mode", "spade_variation", *VASIS_ARGS],
    "va-clade": ["--norm_mode", "clade_variation", *VASIS_ARGS],
    "groupdnet": ["--model", "smis", "--netG", "Cityscapes", "--ngf", "280"],
    "va-oasis": ["--no_3dnoise"],
}


def _rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _patch_runtime(torch) -> None:
    import torchvision

    torch.nn.Module.cuda = lambda self, *a, **k: self
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.cuda.FloatTensor = torch.FloatTensor  # OASIS losses.py / SPADE with GPU ids
    torch.cuda.ByteTensor = torch.ByteTensor
    torch.cuda.BoolTensor = torch.BoolTensor

    original_vgg19 = torchvision.models.vgg19

    def vgg19(*args, pretrained=False, weights=None, **kwargs):
        del pretrained, weights  # random weights: timing does not depend on them
        return original_vgg19(*args, weights=None, **kwargs)

    torchvision.models.vgg19 = vgg19

    # SMIS passes betas=(0, 0.9) (an int and a float), which current torch.optim.Adam rejects.
    original_adam_init = torch.optim.Adam.__init__

    def adam_init(self, params, *args, **kwargs):
        if "betas" in kwargs:
            kwargs["betas"] = tuple(float(b) for b in kwargs["betas"])
        original_adam_init(self, params, *args, **kwargs)

    torch.optim.Adam.__init__ = adam_init
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
        torch._six = six


def synthetic_batch(torch, num_classes: int, height: int, width: int, batch: int):
    """Same layout generator as sislab.trainers.bench._synthetic_batch (seed 0)."""
    generator = torch.Generator().manual_seed(0)
    cells = torch.randint(
        0, num_classes, (batch, 1, max(height // 8, 1), max(width // 8, 1)), generator=generator
    )
    label = torch.nn.functional.interpolate(cells.float(), size=(height, width), mode="nearest")
    image = torch.rand(batch, 3, height, width, generator=generator) * 2 - 1
    return label, image


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------------------------
# SPADE / CLADE (same Pix2PixTrainer skeleton)
# --------------------------------------------------------------------------------------------
def build_spade_like(torch, repo: str, height: int, width: int, batch: int, extra: list[str]):
    ckpt = os.path.join(HERE, "ckpt", repo)
    argv = [
        "train.py",
        "--name",
        f"bench_{repo}",
        "--checkpoints_dir",
        ckpt,
        "--dataset_mode",
        "cityscapes",
        "--gpu_ids",
        "-1",
        "--batchSize",
        str(batch),
        "--crop_size",
        str(width),
        "--load_size",
        str(width),
        "--aspect_ratio",
        repr(width / height),
        "--nThreads",
        "0",
        "--no_html",
    ]
    argv += REPO_ARGS.get(repo, [])
    sys.argv = argv + extra
    from options.train_options import TrainOptions
    from trainers.pix2pix_trainer import Pix2PixTrainer

    opt = TrainOptions().parse()
    trainer = Pix2PixTrainer(opt)
    model = trainer.pix2pix_model_on_one_gpu
    label, image = synthetic_batch(
        torch, opt.label_nc + int(opt.contain_dontcare_label), height, width, batch
    )
    data = {
        "label": label,
        "instance": label.clone(),
        "image": image,
        "path": [f"synthetic_{i}.png" for i in range(batch)],
    }
    if repo in ("clade", "va-spade", "va-clade"):
        data["dist"] = torch.zeros(batch)  # their datasets give 0 without --add_dist

    def step():
        trainer.run_generator_one_step(data)
        trainer.run_discriminator_one_step(data)

    info = {
        "norm_G": opt.norm_G,
        "norm_D": opt.norm_D,
        "num_upsampling_layers": opt.num_upsampling_layers,
        "ngf": opt.ngf,
        "ndf": opt.ndf,
        "num_D": opt.num_D,
        "n_layers_D": opt.n_layers_D,
        "semantic_nc": opt.semantic_nc,
        "gan_mode": opt.gan_mode,
        "lambda_feat": opt.lambda_feat,
        "lambda_vgg": opt.lambda_vgg,
        "no_vgg_loss": opt.no_vgg_loss,
        "no_ganFeat_loss": opt.no_ganFeat_loss,
        "crop_size": opt.crop_size,
        "aspect_ratio": opt.aspect_ratio,
        "latent": [model.netG.sh, model.netG.sw],
    }
    for key in ("norm_mode", "pos", "pos_nc", "mode_noise", "noise_nc", "pad", "netG", "model"):
        if hasattr(opt, key):
            info[key] = getattr(opt, key)
    return step, _count(model.netG), _count(model.netD), info


# --------------------------------------------------------------------------------------------
# OASIS
# --------------------------------------------------------------------------------------------
def build_oasis(torch, height: int, width: int, batch: int, extra: list[str], repo: str = "oasis"):
    ckpt = os.path.join(HERE, "ckpt", repo)
    sys.argv = [
        "train.py",
        "--name",
        f"bench_{repo}",
        "--checkpoints_dir",
        ckpt,
        "--dataset_mode",
        "cityscapes",
        "--gpu_ids",
        "-1",
        "--batch_size",
        str(batch),
        "--num_workers",
        "0",
        *REPO_ARGS.get(repo, []),
        *extra,
    ]
    # The order of train.py's imports (official modules; the order is theirs, not isort's).
    import config  # noqa: I001
    import models.losses as losses
    import models.models as models
    import utils.utils as utils

    opt = config.read_arguments(train=True)
    # What dataloaders/CityscapesDataset.__init__ sets on opt (crop size = our width instead of 512).
    opt.load_size = width
    opt.crop_size = width
    opt.label_nc = 34
    opt.contain_dontcare_label = True
    opt.semantic_nc = 35
    opt.cache_filelist_read = False
    opt.cache_filelist_write = False
    opt.aspect_ratio = width / height

    losses_computer = losses.losses_computer(opt)
    model = models.OASIS_model(opt)
    model = models.put_on_multi_gpus(model, opt)
    optimizerG = torch.optim.Adam(
        model.module.netG.parameters(), lr=opt.lr_g, betas=(opt.beta1, opt.beta2)
    )
    optimizerD = torch.optim.Adam(
        model.module.netD.parameters(), lr=opt.lr_d, betas=(opt.beta1, opt.beta2)
    )
    label, image = synthetic_batch(torch, opt.semantic_nc, height, width, batch)
    state = {"iter": 1}

    def step():
        # train.py loop body (visualisation / checkpoint / FID branches are never taken here).
        data_i = {"label": label.clone(), "image": image, "name": ["synthetic"] * batch}
        img, lab = models.preprocess_input(opt, data_i)
        model.module.netG.zero_grad()
        loss_G, _ = model(img, lab, "losses_G", losses_computer)
        loss_G = loss_G.mean()
        loss_G.backward()
        optimizerG.step()
        model.module.netD.zero_grad()
        loss_D, _ = model(img, lab, "losses_D", losses_computer)
        loss_D = loss_D.mean()
        loss_D.backward()
        optimizerD.step()
        if not opt.no_EMA:
            # cur_iter chosen so that no BN-statistics refresh (every freq_print iters) happens.
            utils.update_EMA(model, state["iter"], None, opt)
        state["iter"] += 1

    info = {
        "channels_G": opt.channels_G,
        "channels_D": opt.channels_D,
        "num_res_blocks": opt.num_res_blocks,
        "param_free_norm": opt.param_free_norm,
        "no_3dnoise": opt.no_3dnoise,
        "z_dim": opt.z_dim,
        "no_EMA": opt.no_EMA,
        "EMA_decay": opt.EMA_decay,
        "no_labelmix": opt.no_labelmix,
        "lambda_labelmix": opt.lambda_labelmix,
        "add_vgg_loss": opt.add_vgg_loss,
        "no_balancing_inloss": opt.no_balancing_inloss,
        "semantic_nc": opt.semantic_nc,
        "no_spectral_norm": opt.no_spectral_norm,
        "crop_size": opt.crop_size,
    }
    return step, _count(model.module.netG), _count(model.module.netD), info


# --------------------------------------------------------------------------------------------
# SC-GAN
# --------------------------------------------------------------------------------------------
# Keys of config/scgan_ade20k.yml that describe the data / run rather than the model: the dataset
# is Cityscapes here (instance maps on, as SPADE's cityscapes mode and sislab's preset).
SCGAN_NON_MODEL_KEYS = {
    "name",
    "dataset",
    "dataset_mode",
    "dataroot",
    "nThread",
    "batchSize",
    "no_instance",
    "no_pairing_check",
    "niter",
    "niter_decay",
    "save_epoch_freq",
}


def build_scgan(torch, height: int, width: int, batch: int, extra: list[str], config_file: str):
    import yaml

    ckpt = os.path.join(HERE, "ckpt", "scgan")
    sys.argv = [
        "train.py",
        "--name",
        "bench_scgan",
        "--checkpoints_dir",
        ckpt,
        "--dataset_mode",
        "cityscapes",
        "--gpu_ids",
        "-1",
        "--batchSize",
        str(batch),
        "--netG",
        "scg",
        "--netD",
        "fpse",
        "--crop_size",
        str(width),
        "--load_size",
        str(width),
        "--aspect_ratio",
        repr(width / height),
        "--nThreads",
        "0",
        "--no_html",
        "--config",
        config_file,
        *extra,
    ]
    from option.train_options import TrainOptions
    from trainer.pix2pix_trainer import Pix2PixTrainer

    opt = TrainOptions().parse()
    # train.py load_opt: setattr every YAML key after parsing (yaml.safe_load instead of the
    # Loader-less yaml.load that current PyYAML rejects); data/run keys are skipped.
    with open(config_file) as f:
        more = yaml.safe_load(f)
    applied = {}
    for key, value in more.items():
        if key in SCGAN_NON_MODEL_KEYS:
            continue
        setattr(opt, key, value)
        applied[key] = value
    opt.semantic_nc = opt.label_nc + int(opt.contain_dontcare_label) + int(not opt.no_instance)
    trainer = Pix2PixTrainer(opt)
    model = trainer.pix2pix_model_on_one_gpu
    label, image = synthetic_batch(
        torch, opt.label_nc + int(opt.contain_dontcare_label), height, width, batch
    )
    data = {
        "label": label,
        "instance": label.clone(),
        "image": image,
        "path": [f"synthetic_{i}.png" for i in range(batch)],
    }

    def step():
        trainer.run_generator_one_step(data)
        trainer.run_discriminator_one_step(data)

    info = {
        "yaml_applied": applied,
        "norm_G": opt.norm_G,
        "norm_D": opt.norm_D,
        "netD": opt.netD,
        "num_upsampling_layers": opt.num_upsampling_layers,
        "semantic_nc": opt.semantic_nc,
        "rw_loss": opt.rw_loss,
        "no_vgg_loss": opt.no_vgg_loss,
        "crop_size": opt.crop_size,
    }
    return step, _count(model.netG), _count(model.netD), info


def build_official(
    torch, repo: str, height: int, width: int, batch: int, extra: list[str],
    scgan_config: str = "config/scgan_ade20k.yml",
):  # fmt: skip
    """The repo's training step and its G/D parameter counts and options (run from the repo's
    folder, after ``_patch_runtime``); shared with ``interleaved.py``."""
    if repo in ("spade", "clade", "va-spade", "va-clade", "groupdnet"):
        return build_spade_like(torch, repo, height, width, batch, extra)
    if repo in ("oasis", "va-oasis"):
        return build_oasis(torch, height, width, batch, extra, repo)
    return build_scgan(torch, height, width, batch, extra, scgan_config)


def main() -> int:
    own = sys.argv[1:]
    extra: list[str] = []
    if "--" in own:
        cut = own.index("--")
        own, extra = own[:cut], own[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True, choices=sorted(REPOS))
    parser.add_argument("--size", default="64x128", help="HxW")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scgan-config", default="config/scgan_ade20k.yml")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        help="after timing, profile one more step and print the top N ops "
        "(torch.profiler, self CPU time) to stderr",
    )
    args = parser.parse_args(own)
    height, width = (int(v) for v in args.size.lower().split("x"))

    real_stdout = sys.stdout
    repo_dir = os.path.join(HERE, REPOS[args.repo])
    os.chdir(repo_dir)
    sys.path.insert(0, repo_dir)

    t_start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        import torch

        torch.set_num_threads(args.threads)
        _patch_runtime(torch)
        torch.manual_seed(args.seed)
        step, g_params, d_params, info = build_official(
            torch, args.repo, height, width, args.batch, extra, args.scgan_config
        )
        torch.manual_seed(args.seed)  # OASIS read_arguments reseeds; make all start alike
        build_s = time.perf_counter() - t_start
        for _ in range(args.warmup):
            step()
        times = []
        for _ in range(args.iters):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as prof:
                step()
            print(
                prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile),
                file=sys.stderr,
            )

    result = {
        "repo": args.repo,
        "size": f"{height}x{width}",
        "s_per_iter_median": statistics.median(times),
        "iter_s": [round(t, 4) for t in times],
        "g_params": g_params,
        "d_params": d_params,
        "peak_rss_mb": round(_rss_peak_mb(), 1),
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "warmup": args.warmup,
        "build_s": round(build_s, 2),
        "torch": torch.__version__,
        "config": info,
    }
    print(json.dumps(result), file=real_stdout, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
