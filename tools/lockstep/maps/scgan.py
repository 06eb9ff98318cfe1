"""Weight-name map: official SC-GAN (dvlab-research/SCGAN) state dicts -> sislab's ``scgan``.

Ours (names only, no official code). ``rename(key) -> (sislab_key, index)``: ``index`` is the
candidate number when several official tensors are stacked into one sislab tensor (the SCC's
``conv_bases.i`` -> ``candidate_weight[i]``, including their spectral-norm u, v), else None.
"""

from __future__ import annotations

import re

# SCGGenerator block attribute -> sislab SemanticRenderGenerator.blocks index.
BLOCKS = {"head_0": 0, "G_middle_0": 1, "G_middle_1": 2, "up_0": 3, "up_1": 4, "up_2": 5,
          "up_3": 6}


def _sn(key: str) -> str:
    """torch.nn.utils.spectral_norm names -> the parametrization API's."""
    key = key.replace(".weight_orig", ".parametrizations.weight.original")
    key = key.replace(".weight_u", ".parametrizations.weight.0._u")
    return key.replace(".weight_v", ".parametrizations.weight.0._v")


def generator(key: str) -> tuple[str, int | None]:
    """Official ``SCGGenerator`` key -> sislab ``ScganGenerator`` key (and candidate index)."""
    m = re.match(r"pyramid_spaital_routing\.labelDec(\d+)\.(.*)$", key)
    if m:
        return _sn(f"svg.stages.{int(m.group(1)) - 1}.{m.group(2)}"), None
    m = re.match(r"pyramid_spaital_routing\.toRGB\.(.*)$", key)
    if m:
        return f"svg.to_rgb.{m.group(1)}", None
    if key.startswith(("fc.", "conv_img.")):
        return f"srg.{key}", None
    block, rest = key.split(".", 1)
    prefix = f"srg.blocks.{BLOCKS[block]}."
    m = re.match(r"(conv_[01])\.conv_bases\.(\d+)\.weight_(orig|u|v)$", rest)
    if m:
        leaf = {"orig": "original", "u": "0._u", "v": "0._v"}[m.group(3)]
        return f"{prefix}{m.group(1)}.parametrizations.candidate_weight.{leaf}", int(m.group(2))
    rest = rest.replace("affine_params_groups", "affine_candidates")
    return _sn(prefix + rest), None


def fpse_discriminator(key: str) -> tuple[str, int | None]:
    """Official ``FPSEDiscriminator`` key -> sislab ``FPSEDiscriminator`` key."""
    m = re.match(r"(enc|lat|final)(\d)\.0\.0\.(.*)$", key)
    if m:
        kind, level, rest = m.group(1), int(m.group(2)), m.group(3)
        index = level - 1 if kind == "enc" else level - 2
        name = {"enc": "encoder", "lat": "lateral", "final": "final"}[kind]
        return _sn(f"{name}.{index}.0.{rest}"), None
    return key, None  # tf, seg, embedding


def multiscale_discriminator(key: str) -> tuple[str, int | None]:
    """Official SPADE-style ``MultiscaleDiscriminator`` key -> sislab's (CelebA preset)."""
    key = re.sub(r"^discriminator_(\d+)\.model(\d+)\.0\.0\.", r"discriminators.\1.stages.\2.0.",
                 key)
    key = re.sub(r"^discriminator_(\d+)\.model(\d+)\.0\.", r"discriminators.\1.stages.\2.0.", key)
    return _sn(key), None


def encoder(key: str) -> tuple[str, int | None]:
    """Official SPADE-style ``ConvEncoder`` key -> sislab ``ConvEncoder`` key (CelebA preset)."""
    # layerK = Sequential(conv, InstanceNorm) -> layers[K - 1], the same Sequential
    key = re.sub(r"^layer(\d)\.", lambda m: f"layers.{int(m.group(1)) - 1}.", key)
    return _sn(key), None
