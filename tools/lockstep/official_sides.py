"""The official training steps, driven from this process (their code imported, never copied).

``Pix2PixSide``: SPADE-family repositories (tzt101/CLADE, xml94/VASIS ``VASIS/``): the repo's
own ``TrainOptions`` and ``Pix2PixTrainer``; a G step is ``run_generator_one_step``, a D step
``run_discriminator_one_step``.
``OasisSide``: boschresearch/OASIS and xml94/VASIS ``VA-OASIS/``: the body of the repo's
``train.py`` loop (G step, D step, ``utils.update_EMA``), with the optimisers built as there.
Both expose ``nets`` (name -> module), ``optimizers``, ``g_step(data)``, ``d_step(data)``,
``after_step(iteration)`` and ``losses()`` (official loss name -> float).
"""

from __future__ import annotations

import contextlib
import sys

import torch


def _clone(data: dict) -> dict:
    return {k: (v.clone() if torch.is_tensor(v) else v) for k, v in data.items()}


class Pix2PixSide:
    """SPADE-style ``Pix2PixTrainer`` of the official tree on ``sys.path``."""

    def __init__(self, argv: list[str]) -> None:
        sys.argv = argv
        from options.train_options import TrainOptions
        from trainers.pix2pix_trainer import Pix2PixTrainer

        with contextlib.redirect_stdout(sys.stderr):
            self.opt = TrainOptions().parse()
            self.trainer = Pix2PixTrainer(self.opt)
        model = self.trainer.pix2pix_model_on_one_gpu
        self.model = model
        self.nets = {"G": model.netG, "D": model.netD}
        self.optimizers = {"G": self.trainer.optimizer_G, "D": self.trainer.optimizer_D}

    def g_step(self, data: dict) -> None:
        self.trainer.run_generator_one_step(_clone(data))

    def d_step(self, data: dict) -> None:
        self.trainer.run_discriminator_one_step(_clone(data))

    def after_step(self, iteration: int) -> None:
        del iteration

    def losses(self) -> dict[str, float]:
        return {k: float(v.detach().mean()) for k, v in self.trainer.get_latest_losses().items()}

    def twin(self) -> Pix2PixSide:
        """A second trainer with the same options (the float-noise control)."""
        twin = object.__new__(Pix2PixSide)
        from trainers.pix2pix_trainer import Pix2PixTrainer

        with contextlib.redirect_stdout(sys.stderr):
            twin.opt = self.opt
            twin.trainer = Pix2PixTrainer(self.opt)
        twin.model = twin.trainer.pix2pix_model_on_one_gpu
        twin.nets = {"G": twin.model.netG, "D": twin.model.netD}
        twin.optimizers = {"G": twin.trainer.optimizer_G, "D": twin.trainer.optimizer_D}
        return twin


class OasisSide:
    """The OASIS ``train.py`` loop body on the official tree on ``sys.path``.

    Args:
        argv: ``train.py`` command line (``config.read_arguments`` parses it).
        dataset_opts: What the repo's dataset class would set on ``opt`` (``label_nc``,
            ``contain_dontcare_label``, ``semantic_nc``, ``crop_size``, ``aspect_ratio``, ...);
            no dataset is opened here.
    """

    def __init__(self, argv: list[str], dataset_opts: dict) -> None:
        sys.argv = argv
        import config
        import models.models as models
        import utils.utils as utils

        import models.losses as losses

        self._models, self._utils = models, utils
        with contextlib.redirect_stdout(sys.stderr):
            self.opt = config.read_arguments(train=True)
        for key, value in dataset_opts.items():
            setattr(self.opt, key, value)
        self.losses_computer = losses.losses_computer(self.opt)
        self._build()

    def _build(self) -> None:
        opt, models = self.opt, self._models
        with contextlib.redirect_stdout(sys.stderr):
            model = models.put_on_multi_gpus(models.OASIS_model(opt), opt)
        self.model = model
        self.nets = {"G": model.module.netG, "D": model.module.netD}
        if model.module.netEMA is not None:
            self.nets["EMA"] = model.module.netEMA
        # train.py: Adam on netG / netD with lr_g / lr_d and (beta1, beta2)
        self.optimizers = {
            "G": torch.optim.Adam(
                model.module.netG.parameters(), lr=opt.lr_g, betas=(opt.beta1, opt.beta2)
            ),
            "D": torch.optim.Adam(
                model.module.netD.parameters(), lr=opt.lr_d, betas=(opt.beta1, opt.beta2)
            ),
        }
        self._latest: dict[str, float] = {}

    def _prep(self, data: dict):
        return self._models.preprocess_input(self.opt, _clone(data))

    def g_step(self, data: dict) -> None:
        image, label = self._prep(data)
        self.model.module.netG.zero_grad()
        loss_g, parts = self.model(image, label, "losses_G", self.losses_computer)
        loss_g.mean().backward()
        self.optimizers["G"].step()
        self._latest["G_adv"] = float(parts[0].mean())
        if parts[1] is not None:
            self._latest["G_vgg"] = float(parts[1].mean())

    def d_step(self, data: dict) -> None:
        image, label = self._prep(data)
        self.model.module.netD.zero_grad()
        loss_d, parts = self.model(image, label, "losses_D", self.losses_computer)
        loss_d.mean().backward()
        self.optimizers["D"].step()
        self._latest["D_fake"] = float(parts[0].mean())
        self._latest["D_real"] = float(parts[1].mean())
        if parts[2] is not None:
            self._latest["D_lm"] = float(parts[2].mean())

    def after_step(self, iteration: int) -> None:
        """``utils.update_EMA`` as train.py calls it (iteration >= 1 and the freq_* options set
        high, so the BN-statistics refresh over the dataloader is never due)."""
        if not self.opt.no_EMA:
            self._utils.update_EMA(self.model, iteration, None, self.opt)

    def losses(self) -> dict[str, float]:
        return dict(self._latest)

    def twin(self) -> OasisSide:
        twin = object.__new__(OasisSide)
        twin._models, twin._utils, twin.opt = self._models, self._utils, self.opt
        twin.losses_computer = self.losses_computer
        twin._build()
        return twin
