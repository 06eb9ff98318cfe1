"""Build the OFFICIAL SC-GAN trainer (dvlab-research/SCGAN, run from $OFFICIAL_ROOT/scgan).

Ours: it only calls the official option parser and ``Pix2PixTrainer``. The model keys of
``config/scgan_{ade20k,celeba}.yml`` are applied with setattr after parsing, as the official
train.py ``load_opt`` does (``yaml.safe_load``: current PyYAML rejects its Loader-less call);
the tiny widths and the synthetic label count then override them.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

# Keys of the official YAMLs that describe data / run, not the model (data is synthetic here).
NON_MODEL_KEYS = {"name", "dataset", "dataset_mode", "dataroot", "nThread", "batchSize",
                  "no_pairing_check", "niter", "niter_decay", "save_epoch_freq"}


def build_trainer(config: str, overrides: dict, *, size: tuple[int, int], batch: int,
                  label_nc: int, no_instance: bool, checkpoints_dir: str, vgg: bool):
    """The official ``Pix2PixTrainer`` with ``config``'s model keys plus ``overrides``."""
    import yaml

    height, width = size
    with open(config) as f:
        more = yaml.safe_load(f)
    # netD on the command line: the parser adds the D's own options (num_D, ...) from it
    argv = ["train.py", "--name", "lockstep_scgan", "--checkpoints_dir", checkpoints_dir,
            "--dataset_mode", "ade20k", "--gpu_ids", "-1", "--batchSize", str(batch),
            "--netG", "scg", "--netD", more["netD"], "--crop_size", str(width), "--load_size",
            str(width), "--aspect_ratio", repr(width / height), "--nThreads", "0", "--no_html",
            "--config", config]
    if not vgg:
        argv.append("--no_vgg_loss")
    sys.argv = argv
    from option.train_options import TrainOptions
    from trainer.pix2pix_trainer import Pix2PixTrainer

    with contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse()
    for key, value in {**{k: v for k, v in more.items() if k not in NON_MODEL_KEYS},
                       **overrides}.items():
        setattr(opt, key, value)
    opt.label_nc = label_nc
    opt.contain_dontcare_label = False
    opt.no_instance = no_instance
    opt.semantic_nc = label_nc + int(not no_instance)
    with contextlib.redirect_stdout(io.StringIO()):
        trainer = Pix2PixTrainer(opt)
    return opt, trainer


def checkpoints_dir(work: str) -> str:
    path = os.path.join(work, "tmp", "scgan_ckpt")
    os.makedirs(path, exist_ok=True)
    return path
