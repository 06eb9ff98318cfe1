"""Build the OFFICIAL GroupDNet trainer (Seanseattle/SMIS, run from $OFFICIAL_ROOT/smis).

Ours: it only calls the official option parser and ``Pix2PixTrainer`` with the DeepFashion
training command of scripts/deepfashion.sh (``--model smis --netG deepfashion --netE conv
--no_instance``; its ``--use_vae`` is the option's default, True) at a tiny decoder and
discriminator width. The encoder width is hard-coded per dataset in the official ConvEncoder
(DeepFashion 256) and the class crops are resized to 256x256, so the size is the official
256x256.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys


# --model smis: GroupDNet; --model pix2pix with SPADE's generator and image encoder: the repo's
# VSPADE baseline (SPADE + VAE, Table 1), also under its DeepFashion options.
MODELS = {"groupdnet": ["--model", "smis", "--netG", "deepfashion", "--netE", "conv"],
          "vspade": ["--model", "pix2pix", "--netG", "spadebase", "--netE", "fc"]}


def build_trainer(*, ngf: int, ndf: int, batch: int, checkpoints_dir: str, vgg: bool,
                  model: str = "groupdnet"):
    """The official ``Pix2PixTrainer`` (``SmisModel`` or ``Pix2pixModel``), DeepFashion, 256x256."""
    argv = ["train.py", "--name", "lockstep_smis", "--checkpoints_dir", checkpoints_dir,
            "--dataset_mode", "deepfashion", "--gpu_ids", "-1", "--batchSize", str(batch),
            *MODELS[model], "--no_instance", "--ngf", str(ngf), "--ndf", str(ndf),
            "--nThreads", "0", "--no_html", "--no_flip"]
    if not vgg:
        argv.append("--no_vgg_loss")
    sys.argv = argv
    os.makedirs(os.path.join(checkpoints_dir, "lockstep_smis"), exist_ok=True)
    from options.train_options import TrainOptions
    from trainers.pix2pix_trainer import Pix2PixTrainer

    with contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse()
        trainer = Pix2PixTrainer(opt)
    return opt, trainer


def checkpoints_dir(work: str) -> str:
    path = os.path.join(work, "tmp", "smis_ckpt")
    os.makedirs(path, exist_ok=True)
    return path
