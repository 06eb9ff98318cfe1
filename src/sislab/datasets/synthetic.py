"""Procedural layout datasets: shapes and regions of K classes, each with its own texture family.

A sample is a Voronoi partition of the canvas into a few background regions plus a handful of
foreground shapes (discs, ellipses, rectangles, triangles). Every region or shape is one instance of
a class and is painted with that class's texture family: a base colour, a secondary colour and a
pattern (flat, stripes, checker, dots, rings or noise). ``variation`` scales how much one instance
of a class differs from another (colour, pattern frequency, angle, contrast), which is what makes
VASIS's intra-class variation and SMIS's per-class styles measurable on synthetic data.

Everything is a pure function of ``(index, seed)``: the class families come from ``seed`` alone
and each sample's layout from ``(seed, index)``, so train rows are indices ``0..num-1`` and val rows
``num..num+val-1`` of the same stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from sislab.errors import SpecError

PATTERNS = ("flat", "stripes", "checker", "dots", "rings", "noise")
_SHAPES = ("disc", "ellipse", "rect", "triangle")


@dataclass(frozen=True)
class SyntheticParams:
    """Parameters of a ``synthetic://`` dataset URI.

    Attributes:
        kind: Generator name (only ``shapes``).
        size: Square image side in pixels.
        classes: Number of classes K; label ids are ``0..K-1``.
        num: Rows of the train split.
        val: Rows of the val split (indices ``num..num+val-1``).
        test: Rows of the test split (the next ``test`` indices), for offline protocols.
        seed: Seed of the class families and the layouts.
        variation: Intra-class variation in [0, 1] (0: every instance of a class looks alike).
    """

    kind: str = "shapes"
    size: int = 64
    classes: int = 8
    num: int = 64
    val: int = 16
    test: int = 0
    seed: int = 0
    variation: float = 0.5

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image and label map of sample ``index`` of this dataset (see ``render_sample``)."""
        return render_sample(
            index,
            num_classes=self.classes,
            size=self.size,
            seed=self.seed,
            variation=self.variation,
        )

    def split_range(self, split: str) -> range:
        """Sample indices of a split (``train``, ``val`` or ``test``)."""
        if split == "train":
            return range(0, self.num)
        if split == "val":
            return range(self.num, self.num + self.val)
        if split == "test":
            start = self.num + self.val
            return range(start, start + self.test)
        raise SpecError(
            f"synthetic datasets have splits 'train', 'val' and 'test', not {split!r}",
            fix="set dataset.train_split: train and dataset.val_split: val",
        )


_INT_KEYS = ("size", "classes", "num", "val", "test", "seed")


def parse_synthetic_uri(uri: str) -> SyntheticParams:
    """Parse ``synthetic://shapes?size=64&classes=8&num=64&seed=0&variation=0.5&val=16``.

    Args:
        uri: The dataset URI; missing keys take the ``SyntheticParams`` defaults.

    Returns:
        The parsed parameters.

    Raises:
        SpecError: Wrong scheme or generator, unknown query key, or a value out of range.
    """
    parts = urlsplit(uri)
    if parts.scheme != "synthetic":
        raise SpecError(f"not a synthetic:// URI: {uri!r}")
    kind = parts.netloc or parts.path.strip("/")
    if kind != "shapes":
        raise SpecError(
            f"unknown synthetic generator {kind!r} in {uri!r}", fix="use synthetic://shapes?..."
        )
    values: dict[str, int | float] = {}
    for key, raw in parse_qsl(parts.query, keep_blank_values=True):
        if key in _INT_KEYS:
            try:
                values[key] = int(raw)
            except ValueError:
                raise SpecError(
                    f"synthetic URI key {key!r} must be an integer, got {raw!r}"
                ) from None
        elif key == "variation":
            try:
                values[key] = float(raw)
            except ValueError:
                raise SpecError(
                    f"synthetic URI key 'variation' must be a number, got {raw!r}"
                ) from None
        else:
            raise SpecError(
                f"unknown key {key!r} in synthetic URI {uri!r}",
                fix=f"use only {', '.join((*_INT_KEYS, 'variation'))}",
            )
    params = SyntheticParams(kind=kind, **values)
    _check(params)
    return params


def _check(p: SyntheticParams) -> None:
    if not 2 <= p.classes <= 256:
        raise SpecError(f"synthetic classes must be in [2, 256], got {p.classes}")
    if p.size < 8:
        raise SpecError(f"synthetic size must be >= 8, got {p.size}")
    if p.num < 1 or p.val < 0 or p.test < 0:
        raise SpecError(
            f"synthetic num must be >= 1, val and test >= 0, got num={p.num} val={p.val} "
            f"test={p.test}"
        )
    if not 0.0 <= p.variation <= 1.0:
        raise SpecError(f"synthetic variation must be in [0, 1], got {p.variation}")


@dataclass(frozen=True)
class _Family:
    """A class's texture family: what all its instances share."""

    colour: np.ndarray  # (3,) float, base colour
    accent: np.ndarray  # (3,) float, secondary colour of the pattern
    pattern: str
    freq: float  # cycles per image side
    angle: float


def class_families(num_classes: int, seed: int) -> list[_Family]:
    """The texture family of each class, a function of ``seed`` only."""
    families = []
    for k in range(num_classes):
        rng = np.random.default_rng([seed, 0x5EED, k])
        colour = rng.uniform(25.0, 230.0, size=3)
        accent = np.clip(colour + rng.choice([-1.0, 1.0], size=3) * rng.uniform(50, 110, 3), 0, 255)
        families.append(
            _Family(
                colour=colour,
                accent=accent,
                # Cycle through the patterns so that small K still covers distinct families.
                pattern=PATTERNS[(k + seed) % len(PATTERNS)],
                freq=float(rng.uniform(3.0, 9.0)),
                angle=float(rng.uniform(0.0, np.pi)),
            )
        )
    return families


def _texture(
    fam: _Family, rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, variation: float
) -> np.ndarray:
    """Paint one instance of a family at the given pixel coordinates, float (..., 3) in [0, 255]."""
    v = variation
    colour = np.clip(fam.colour + v * rng.normal(0.0, 35.0, 3), 0, 255)
    accent = np.clip(fam.accent + v * rng.normal(0.0, 35.0, 3), 0, 255)
    freq = fam.freq * float(np.exp(v * 0.4 * rng.normal()))
    angle = fam.angle + v * (np.pi / 4) * rng.normal()
    phase = rng.uniform(0.0, 2 * np.pi)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    w = -xx * np.sin(angle) + yy * np.cos(angle)
    t = 2 * np.pi * freq
    if fam.pattern == "flat":
        mix = np.zeros_like(xx)
    elif fam.pattern == "stripes":
        mix = (np.sin(t * u + phase) > 0).astype(np.float64)
    elif fam.pattern == "checker":
        mix = ((np.sin(t * u + phase) > 0) ^ (np.sin(t * w) > 0)).astype(np.float64)
    elif fam.pattern == "dots":
        mix = ((np.sin(t * u + phase) * np.sin(t * w + phase)) > 0.5).astype(np.float64)
    elif fam.pattern == "rings":
        cy, cx = rng.uniform(0.0, 1.0, 2)
        mix = 0.5 + 0.5 * np.sin(t * np.hypot(yy - cy, xx - cx) + phase)
    else:  # noise: smooth random field from a coarse grid, upsampled by repetition
        cells = max(2, round(freq))
        coarse = rng.uniform(0.0, 1.0, (cells, cells))
        iy = np.minimum((yy * cells).astype(int), cells - 1)
        ix = np.minimum((xx * cells).astype(int), cells - 1)
        mix = coarse[iy, ix]
    strength = np.clip(1.0 + v * 0.5 * rng.normal(), 0.2, 1.5)
    mix = np.clip(mix * strength, 0.0, 1.0)[..., None]
    return colour * (1.0 - mix) + accent * mix


def _shape_mask(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    kind = _SHAPES[int(rng.integers(len(_SHAPES)))]
    cy, cx = rng.uniform(0.1, 0.9, 2)
    ry, rx = rng.uniform(0.08, 0.3, 2)
    if kind == "disc":
        return np.hypot(yy - cy, xx - cx) < ry
    if kind == "ellipse":
        a = rng.uniform(0.0, np.pi)
        du, dw = (
            (xx - cx) * np.cos(a) + (yy - cy) * np.sin(a),
            -(xx - cx) * np.sin(a) + (yy - cy) * np.cos(a),
        )
        return (du / rx) ** 2 + (dw / ry) ** 2 < 1.0
    if kind == "rect":
        return (np.abs(yy - cy) < ry) & (np.abs(xx - cx) < rx)
    # triangle: inside all three half-planes of a random triangle around the centre
    angles = rng.uniform(0.0, 2 * np.pi) + np.array([0.0, 2.1, 4.2]) + rng.normal(0, 0.2, 3)
    py, px = cy + ry * np.sin(angles), cx + rx * 1.5 * np.cos(angles)
    inside = np.ones_like(xx, dtype=bool)
    sign = None
    for i in range(3):
        j = (i + 1) % 3
        cross = (px[j] - px[i]) * (yy - py[i]) - (py[j] - py[i]) * (xx - px[i])
        s = cross >= 0
        inside &= s if sign is None else s == sign
        sign = s if sign is None else sign
    return inside


def render_sample(
    index: int, *, num_classes: int, size: int, seed: int, variation: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Render one procedural sample.

    Args:
        index: Sample index in the stream (train rows first, then val rows).
        num_classes: Number of classes K.
        size: Square side in pixels.
        seed: Dataset seed (class families and layouts).
        variation: Intra-class variation in [0, 1].

    Returns:
        ``(image, label)``: uint8 ``(size, size, 3)`` RGB and uint8 ``(size, size)`` ids in
        ``[0, num_classes)``.
    """
    image, label, _ = render_sample_with_instances(
        index, num_classes=num_classes, size=size, seed=seed, variation=variation
    )
    return image, label


def render_sample_with_instances(
    index: int, *, num_classes: int, size: int, seed: int, variation: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like ``render_sample``, plus the instance map (uint8, one id per region or shape)."""
    families = class_families(num_classes, seed)
    rng = np.random.default_rng([seed, 0x1A7, index])
    coords = (np.arange(size, dtype=np.float64) + 0.5) / size
    yy, xx = np.meshgrid(coords, coords, indexing="ij")

    label = np.zeros((size, size), dtype=np.uint8)
    instance = np.zeros((size, size), dtype=np.uint8)
    image = np.zeros((size, size, 3), dtype=np.float64)

    # Background: a Voronoi partition into 2-4 regions, each of one class.
    n_regions = int(rng.integers(2, 5))
    centres = rng.uniform(0.0, 1.0, (n_regions, 2))
    dist = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    owner = np.argmin(dist, axis=0)
    region_classes = rng.integers(0, num_classes, n_regions)
    inst_id = 0
    for r in range(n_regions):
        mask = owner == r
        k = int(region_classes[r])
        inst_id += 1
        image[mask] = _texture(families[k], rng, yy[mask], xx[mask], variation)
        label[mask] = k
        instance[mask] = inst_id

    # Foreground: 2-6 shapes painted in order (later shapes occlude earlier ones).
    for _ in range(int(rng.integers(2, 7))):
        mask = _shape_mask(rng, yy, xx)
        k = int(rng.integers(0, num_classes))
        tex = _texture(families[k], rng, yy[mask], xx[mask], variation)
        if not mask.any():
            continue
        inst_id += 1
        image[mask] = tex
        label[mask] = k
        instance[mask] = inst_id

    # Mild sensor noise, also scaled by variation, so flat classes are not perfectly constant.
    image += rng.normal(0.0, 3.0 * variation, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), label, instance
