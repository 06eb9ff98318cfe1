"""OASIS (boschresearch/OASIS) -> sislab ``oasis``: the G, D and EMA names mirror the official
ones except the parameter-free norm (``first_norm`` -> ``param_free_norm``) and spectral norm."""

from __future__ import annotations

from maps import MethodMap, Setup, spectral_norm_key

# Study options: G width channels_G 4 (channels 64..4; the D widths are hard-coded in OASIS),
# EMA decay 0.999 so the EMA moves visibly in a few iterations, LabelMix weight 10.
CHANNELS_G = 4
EMA_DECAY = 0.999
LAMBDA_LM = 10.0


def official_argv(s: Setup, checkpoints_dir: str) -> list[str]:
    """OASIS train.py options (``--dataset_mode custom``: none of the dataset presets apply)."""
    return [
        "train.py",
        "--name",
        "lockstep",
        "--checkpoints_dir",
        checkpoints_dir,
        "--gpu_ids",
        "-1",
        "--dataset_mode",
        "custom",
        "--batch_size",
        str(s.batch),
        "--num_workers",
        "0",
        "--seed",
        "0",
        "--channels_G",
        str(CHANNELS_G),
        "--num_res_blocks",
        "6",
        "--param_free_norm",
        "syncbatch",
        "--spade_ks",
        "3",
        "--z_dim",
        "64",
        "--EMA_decay",
        str(EMA_DECAY),
        "--lambda_labelmix",
        str(LAMBDA_LM),
        "--lr_g",
        "0.0001",
        "--lr_d",
        "0.0004",
        "--beta1",
        "0.0",
        "--beta2",
        "0.999",
        # no BN-statistics refresh of the EMA net (it needs the dataloader) within the study
        "--freq_print",
        "1000000",
        "--freq_fid",
        "1000000",
        "--freq_save_ckpt",
        "1000000",
        "--freq_save_latest",
        "1000000",
    ]


def dataset_opts(s: Setup, dontcare: bool = False) -> dict:
    """What an OASIS dataset class sets on opt (no dataset is opened)."""
    return {
        "load_size": s.width,
        "crop_size": s.width,
        "aspect_ratio": s.width / s.height,
        "label_nc": s.classes - int(dontcare),
        "contain_dontcare_label": dontcare,
        "semantic_nc": s.classes,
        "cache_filelist_read": False,
        "cache_filelist_write": False,
    }


def sislab_spec(s: Setup, base: dict, dontcare: bool = False) -> dict:
    base["model"] = {
        "ngf": CHANNELS_G,
        "ndf": 64,
        "z_dim": 64,
        "param_free_norm": "batch",
        "spade_hidden": 128,
        "spectral_norm_g": True,
        "spectral_norm_d": True,
        "class_balancing": True,
        "ignore_class": 0 if dontcare else None,
        "labelmix_weight": LAMBDA_LM,
        "ema_decay": EMA_DECAY,
        "use_vgg_loss": False,
        "use_3d_noise": True,
    }
    base["train"].update({"lr_g": 1.0e-4, "lr_d": 4.0e-4, "betas": [0.0, 0.999]})
    base["losses"] = {"gan": 1.0, "perceptual": 0.0}
    return base


def g_key(key: str) -> str:
    return spectral_norm_key(key.replace(".first_norm.", ".param_free_norm."))


def d_key(key: str) -> str:
    return spectral_norm_key(key)


def noise_last(z_dim: int):
    """OASIS concatenates the 3D noise in FRONT of the labels; sislab after them (so every
    norm finds the classes first). The input-channel blocks of the convs that read this map
    (``fc`` and every SPADE ``mlp_shared.0``) are swapped accordingly."""

    def value(key: str, tensor):
        import torch

        if key.endswith(("fc.weight", "mlp_shared.0.weight")):
            return torch.cat([tensor[:, z_dim:], tensor[:, :z_dim]], dim=1)
        return tensor

    return value


def map_for(method: str) -> MethodMap:
    """``oasis``: no don't-care class; ``oasis-dontcare``: class 0 is OASIS's don't-care class
    (``contain_dontcare_label``: weight 0 in the balanced loss) and sislab's ``ignore_class: 0``."""
    dontcare = method == "oasis-dontcare"
    return MethodMap(
        repo="oasis",
        kind="oasis",
        official_argv=official_argv,
        sislab_spec=lambda s, base: sislab_spec(s, base, dontcare),
        key_maps={"G": g_key, "D": d_key, "EMA": g_key},
        losses={"G_adv": "g_gan", "D_fake": "d_fake", "D_real": "d_real", "D_lm": "d_labelmix"},
        dataset_opts=lambda s: dataset_opts(s, dontcare),
        sislab_method="oasis",
        value_maps={"G": noise_last(64), "EMA": noise_last(64)},
    )
