"""Recipe of GroupDNet (Seanseattle/SMIS): ``options/train_options.py``, ``models/smis_model.py``
and the training lines of ``scripts/*.sh``.

Under TTUR (the default) ``smis_model.py`` hard-codes Adam (0, 0.9) and splits ``--lr`` 2e-4 into
G 1e-4 / D 4e-4, whatever ``--beta1/--beta2`` say. The scripts' training commands (commented out
in the repository, kept as the record of the runs) train DeepFashion 60 + 40 epochs with batch 8,
Cityscapes and ADE20K 100 + 100 with batch 4; the paper (Appendix A) used batch 32 on DeepFashion
and Cityscapes and 16 on ADE20K.
"""

from __future__ import annotations

from sislab.recipes.values import GENERIC, RecipeValue, schedule

OPTIONS = "smis/options/train_options.py"
MODEL = "smis/models/smis_model.py"
PAPER_BATCH = "SMIS paper Appendix A 'Training details'"


def _script(name: str, line: int, niter: int, decay: int, batch: int, paper_batch: int):
    script = f"smis/scripts/{name}.sh:{line}"
    values = schedule(niter + decay, decay, f"{script} (niter {niter}, niter_decay {decay})")
    return (
        *values,
        RecipeValue("train.batch_size", batch, f"{script} (batchSize)", paper_batch, PAPER_BATCH),
    )


GROUPDNET = {
    GENERIC: (
        RecipeValue("train.lr_g", 1.0e-4, f"{OPTIONS}:30 lr 2e-4, TTUR at {MODEL}:76 (lr/2)"),
        RecipeValue("train.lr_d", 4.0e-4, f"{OPTIONS}:30 lr 2e-4, TTUR at {MODEL}:76 (lr*2)"),
        RecipeValue("train.betas", (0.0, 0.9), f"{MODEL}:75 (TTUR overrides --beta1/--beta2)"),
        RecipeValue("losses.feat_match", 10.0, f"{OPTIONS}:35"),
        RecipeValue("losses.perceptual", 10.0, f"{OPTIONS}:36"),
        RecipeValue("losses.kl", 0.05, f"{OPTIONS}:42"),
    ),
    "deepfashion": _script("deepfashion", 2, 60, 40, 8, 32),
    "cityscapes": _script("cityscapes", 3, 100, 100, 4, 32),
    "ade20k": _script("ade20k", 2, 100, 100, 4, 16),
}
