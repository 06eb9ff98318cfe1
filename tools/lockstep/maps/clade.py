"""CLADE and CLADE-ICPE (tzt101/CLADE, ``--norm_mode clade [--add_dist]``) -> sislab ``clade``."""

from __future__ import annotations

import re

from maps import MethodMap, Setup, spectral_norm_key


def official_argv(s: Setup, checkpoints_dir: str) -> list[str]:
    """tzt101/CLADE train.py options of the study (every knob spelled out)."""
    argv = [
        "train.py",
        "--name",
        "lockstep",
        "--checkpoints_dir",
        checkpoints_dir,
        "--gpu_ids",
        "-1",
        "--model",
        "pix2pix",
        "--dataset_mode",
        "custom",
        "--label_dir",
        "unused",
        "--image_dir",
        "unused",
        "--label_nc",
        str(s.classes),
        "--preprocess_mode",
        "none",
        "--load_size",
        str(s.width),
        "--crop_size",
        str(s.width),
        "--aspect_ratio",
        repr(s.width / s.height),
        "--no_flip",
        "--batchSize",
        str(s.batch),
        "--nThreads",
        "0",
        "--no_html",
        "--netG",
        "spade",
        "--norm_mode",
        "clade",
        "--ngf",
        "16",
        "--num_upsampling_layers",
        "normal",
        "--norm_G",
        "spectralspadesyncbatch3x3",
        "--init_type",
        "xavier",
        "--init_variance",
        "0.02",
        "--netD",
        "multiscale",
        "--netD_subarch",
        "n_layer",
        "--num_D",
        "2",
        "--n_layers_D",
        "4",
        "--ndf",
        "16",
        "--norm_D",
        "spectralinstance",
        "--gan_mode",
        "hinge",
        "--lambda_feat",
        "10",
        "--no_vgg_loss",
        "--no_TTUR",
        "--lr",
        "0.0002",
        "--beta1",
        "0.0",
        "--beta2",
        "0.9",
        "--niter",
        "1",
        "--niter_decay",
        "0",
    ]
    if not s.use_instance:
        argv.append("--no_instance")
    if s.method == "clade-icpe":
        argv.append("--add_dist")
    return argv


def sislab_spec(s: Setup, base: dict) -> dict:
    base["model"] = {
        "ngf": 16,
        "ndf": 16,
        "num_upsampling_layers": "normal",
        "param_free_norm": "batch",
        "num_d": 2,
        "n_layers_d": 4,
        "spectral_norm_g": True,
        "spectral_norm_d": True,
    }
    base["train"].update({"lr_g": 2.0e-4, "lr_d": 2.0e-4, "betas": [0.0, 0.9]})
    base["losses"] = {"gan": 1.0, "feat_match": 10.0, "perceptual": 0.0}
    return base


def g_key(key: str) -> str:
    """CLADE G: ``norm_X.class_specified_affine.*`` and ``norm_X.inst_conv`` keep their names;
    only spectral-norm names change."""
    return spectral_norm_key(key)


def d_key(key: str) -> str:
    """SPADE's multiscale D: ``discriminator_i.modelN.0[.0]`` -> ``discriminators.i.stages.N.0``."""
    key = re.sub(
        r"^discriminator_(\d+)\.model(\d+)\.0\.0\.", r"discriminators.\1.stages.\2.0.", key
    )
    key = re.sub(r"^discriminator_(\d+)\.model(\d+)\.0\.", r"discriminators.\1.stages.\2.0.", key)
    return spectral_norm_key(key)


def official_dist(s: Setup, label):
    """CLADE-ICPE's ``dist`` input: the official ``util/cal_dist_masks.cal_connectedComponents``
    run on each label map (what the repo stores as ``*_distance.npy``)."""
    import numpy as np
    import torch
    from util.cal_dist_masks import cal_connectedComponents

    maps = []
    for lab in label[:, 0].numpy().astype(np.uint8):
        h, w = cal_connectedComponents(lab, "norm")
        maps.append(np.stack([h, w]))
    return {"dist": torch.from_numpy(np.stack(maps)).float()}


def map_for(method: str) -> MethodMap:
    return MethodMap(
        repo="clade",
        kind="pix2pix",
        official_argv=official_argv,
        sislab_spec=sislab_spec,
        key_maps={"G": g_key, "D": d_key},
        losses={"GAN": "g_gan", "GAN_Feat": "g_feat", "D_Fake": "d_fake", "D_real": "d_real"},
        extra_batch=official_dist if method == "clade-icpe" else None,
    )
