"""Recipe of SC-GAN (dvlab-research/SCGAN): its ``config/scgan_*.yml`` and ``option/`` defaults.

The YAMLs set the batch, ``niter``/``niter_decay`` and Adam (0, 0.999); ``--lr`` 2e-4 is split by
TTUR as in SPADE. There is no Cityscapes YAML: sislab's SC-GAN preset for Cityscapes is the
ADE20K one, and so is its recipe. The paper (§3.4, §4) trains COCO-Stuff 100 epochs without a
decay (the official YAML: 100 + 100). ``model.svg_loss_weight`` (lambda_w_recon) is applied by
the model's preset (``SCGAN_PRESETS``).
"""

from __future__ import annotations

from sislab.recipes.values import GENERIC, RecipeValue, schedule

OPTIONS = "scgan/option/train_options.py"
PAPER_TRAINING = "SC-GAN paper §4 (epochs per dataset; first half constant on the first three)"


def _yml(name: str, batch: int, niter: int, svg_weight: float, paper: tuple | None = None):
    yml = f"scgan/config/scgan_{name}.yml"
    epochs = schedule(niter * 2, niter, f"{yml}:35,37 (niter {niter}, niter_decay {niter})")
    if paper is not None:
        epochs = tuple(
            RecipeValue(v.field, v.official, v.source, p, PAPER_TRAINING)
            for v, p in zip(epochs, paper, strict=True)
        )
    return (
        *epochs,
        RecipeValue("train.batch_size", batch, f"{yml}:29"),
        RecipeValue("train.betas", (0.0, 0.999), f"{yml}:38-39"),
        RecipeValue("model.svg_loss_weight", svg_weight, f"{yml}:30 (lambda_w_recon)"),
    )


SCGAN = {
    GENERIC: (
        RecipeValue(
            "train.lr_g",
            1.0e-4,
            f"{OPTIONS}:33 lr 2e-4, TTUR at scgan/model/pix2pix_model.py:80 (lr/2)",
        ),
        RecipeValue(
            "train.lr_d",
            4.0e-4,
            f"{OPTIONS}:33 lr 2e-4, TTUR at scgan/model/pix2pix_model.py:80 (lr*2)",
        ),
        # Every YAML sets Adam (0, 0.999) (the option default is 0.9), as the paper's §3.4 does.
        RecipeValue("train.betas", (0.0, 0.999), "scgan/config/scgan_ade20k.yml:38-39"),
        RecipeValue("losses.feat_match", 10.0, f"{OPTIONS}:40"),
        RecipeValue("losses.perceptual", 10.0, f"{OPTIONS}:41"),
        RecipeValue("losses.kl", 0.05, f"{OPTIONS}:47"),
    ),
    "ade20k": _yml("ade20k", 16, 100, 2.0),
    "cityscapes": _yml("ade20k", 16, 100, 2.0),
    "coco-stuff": _yml("coco", 16, 100, 2.0, paper=(100, 0)),
    "celebamask-hq": _yml("celeba", 8, 50, 1.0),
}
