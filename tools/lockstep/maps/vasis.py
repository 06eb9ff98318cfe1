"""VA-SPADE / VA-CLADE (xml94/VASIS ``VASIS/``, ``--norm_mode spade_variation|clade_variation``)
and VA-OASIS (``VA-OASIS/``) -> sislab ``va-spade`` / ``va-clade`` / ``va-oasis``.

Options are the paper runs' (VASIS/scripts/city_train.sh, last block): ``--pad reflect
--mode_noise norm_cat --noise_nc all --pos learn --pos_nc all``, at the study's small size.
"""

from __future__ import annotations

import re

from maps import MethodMap, Setup, clade, oasis, spectral_norm_key

VARIATION = [
    "--pad",
    "reflect",
    "--mode_noise",
    "norm_cat",
    "--noise_nc",
    "all",
    "--pos",
    "learn",
    "--pos_nc",
    "all",
    "--kernel",
    "3",
    "--kernel_norm",
    "3",
]
SISLAB_VARIATION = {
    "semantic_noise": True,
    "noise_channels": "all",
    "noise_mode": "cat",
    "noise_distribution": "uniform",
    "position_code": "learn",
    "position_channels": "all",
    "padding": "reflect",
}


def pix2pix_argv(s: Setup, checkpoints_dir: str) -> list[str]:
    argv = clade.official_argv(
        Setup("clade", s.classes, s.height, s.width, s.batch, s.use_instance), checkpoints_dir
    )
    mode = "spade_variation" if s.method == "va-spade" else "clade_variation"
    argv[argv.index("clade")] = mode
    return argv + VARIATION


def pix2pix_spec(s: Setup, base: dict) -> dict:
    base = clade.sislab_spec(s, base)
    base["model"].update(SISLAB_VARIATION)
    if s.method == "va-spade":
        base["model"]["spade_hidden"] = 128
    return base


def oasis_argv(s: Setup, checkpoints_dir: str) -> list[str]:
    # VA-OASIS hard-codes the variation options in models/norms.py (no command-line switches)
    return [*oasis.official_argv(s, checkpoints_dir), "--no_3dnoise"]


def oasis_spec(s: Setup, base: dict) -> dict:
    base = oasis.sislab_spec(s, base)
    base["model"].update(SISLAB_VARIATION)
    base["model"]["use_3d_noise"] = False
    return base


def g_key(key: str) -> str:
    """VASIS norm layers: sislab groups the semantic-noise tables under ``noise.`` and the
    position code under ``position.``; the reflection-padded MLP convs (``Sequential(pad,
    conv)``) are single convs with ``padding_mode="reflect"`` in sislab."""
    key = re.sub(r"^(fc|conv_img)\.1\.", r"\1.", key)  # Sequential(ReflectionPad2d, conv)
    # VA-CLADE: the class tables and the noise / position parts live in class_specified_affine
    key = key.replace(".class_specified_affine.gamma_seg", ".class_affine.weight")
    key = key.replace(".class_specified_affine.beta_seg", ".class_affine.bias")
    key = key.replace(".class_specified_affine.", ".")
    key = re.sub(r"\.((?:gamma|beta)_noise_(?:gamma|beta))$", r".noise.\1", key)
    key = re.sub(
        r"\.((?:gamma|beta)_pos_learn|conv_pos_(?:gamma|beta)\.(?:weight|bias))$",
        r".position.\1",
        key,
    )
    key = re.sub(r"\.mlp_shared\.1\.", ".mlp_shared.0.", key)
    key = re.sub(r"\.mlp_(gamma|beta)\.1\.", r".mlp_\1.", key)
    key = key.replace(".first_norm.", ".param_free_norm.")
    return spectral_norm_key(key)


def va_oasis_g_key(key: str) -> str:
    """VA-OASIS residual convs are unpadded convs followed by ReflectionPad2d(1); sislab wraps
    them as ``Sequential(conv, pad)``, hence ``conv_0`` -> ``conv_0.0``."""
    key = re.sub(r"^body\.(\d+)\.conv_([01])\.", r"body.\1.conv_\2.0.", key)
    return g_key(key)


def map_for(method: str) -> MethodMap:
    if method == "va-oasis":
        return MethodMap(
            repo="vasis/VA-OASIS",
            kind="oasis",
            official_argv=oasis_argv,
            sislab_spec=oasis_spec,
            key_maps={"G": va_oasis_g_key, "D": oasis.d_key, "EMA": va_oasis_g_key},
            losses={"G_adv": "g_gan", "D_fake": "d_fake", "D_real": "d_real", "D_lm": "d_labelmix"},
            dataset_opts=oasis.dataset_opts,
        )
    return MethodMap(
        repo="vasis/VASIS",
        kind="pix2pix",
        official_argv=pix2pix_argv,
        sislab_spec=pix2pix_spec,
        key_maps={"G": g_key, "D": clade.d_key},
        losses={"GAN": "g_gan", "GAN_Feat": "g_feat", "D_Fake": "d_fake", "D_real": "d_real"},
    )
