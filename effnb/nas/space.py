"""A MnasNet-style factorized search space over a small MobileNetV2-like skeleton.

MnasNet (Tan et al., arXiv 1807.11626, Sec. 4.1) splits the network into a fixed sequence
of stages and searches, per stage, the block's kernel size, expansion ratio, squeeze-and-
excitation and number of layers; every layer of a stage repeats the stage's choice. The
macro skeleton (stage widths and strides) is fixed, here a shrunken MobileNetV2 for 16-32 px
inputs: stem 3x3 conv (16 channels, stride 1), four stages of widths 16, 24, 32, 64 with
strides 1, 2, 2, 2, a 1x1 head conv to 128 channels and a linear classifier.

Per stage: kernel in {3, 5, 7}, expansion in {1, 3, 6}, SE ratio in {0, 0.25}, layers in
{1, 2, 3}: 3 * 3 * 2 * 3 = 54 choices, 54^4 = 8,503,056 architectures. Notebook 06 builds
and searches it.

Every network is an ``effnb.models.net.EfficientCNN`` of ``effnb.layers`` blocks
(``ConvNormAct`` stem and head, ``InvertedResidual`` with ``se_channels``, ``ClassifierHead``),
so ``effnb.costs.profile`` and ``effnb.bench`` work on it unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from effnb._checks import (
    check_choice,
    check_generator,
    check_int,
    check_kernel,
    check_probability,
)
from effnb.layers import ConvNormAct, InvertedResidual
from effnb.models.net import ClassifierHead, EfficientCNN

__all__ = [
    "GENES",
    "Architecture",
    "BlockSpec",
    "SearchSpace",
    "StageChoice",
    "StageSkeleton",
]

GENES = ("kernel", "expansion", "se_ratio", "layers")  # order of the genes within a stage


@dataclass(frozen=True)
class StageChoice:
    """What is searched in one stage; every layer of the stage uses it."""

    kernel: int  # depthwise kernel size k
    expansion: int  # hidden = expansion * in_channels (1: no expansion conv)
    se_ratio: float  # SE squeeze width = max(1, int(in_channels * se_ratio)); 0: no SE
    layers: int  # blocks in the stage; the first has the stage's stride


@dataclass(frozen=True)
class Architecture:
    """One point of the space: a StageChoice per stage. Frozen, so hashable (dict keys, sets)."""

    stages: tuple[StageChoice, ...]

    def __str__(self) -> str:
        return " | ".join(
            f"k{s.kernel} e{s.expansion} se{s.se_ratio:g} x{s.layers}" for s in self.stages
        )


@dataclass(frozen=True)
class StageSkeleton:
    """The fixed part of a stage: output channels and the stride of its first block."""

    out_channels: int
    stride: int


@dataclass(frozen=True)
class BlockSpec:
    """One InvertedResidual as built: everything its latency depends on, at a fixed input size.

    ``size`` is the input's height = width. Two blocks with equal specs cost the same, so the
    latency table (effnb.nas.latency) measures each distinct spec once.
    """

    in_channels: int
    out_channels: int
    hidden_channels: int
    kernel: int
    stride: int
    se_channels: int
    size: int

    @property
    def key(self) -> str:
        return (
            f"ir_{self.in_channels}_{self.out_channels}_h{self.hidden_channels}_k{self.kernel}"
            f"_s{self.stride}_se{self.se_channels}_@{self.size}"
        )

    def build(self) -> InvertedResidual:
        return InvertedResidual(
            self.in_channels,
            self.out_channels,
            self.hidden_channels,
            kernel_size=self.kernel,
            stride=self.stride,
            se_channels=self.se_channels,
        )


# Widths and strides of MobileNetV2's first four stages (arXiv 1801.04381, Table 2: 16, 24,
# 32, 64 channels), with the stem at stride 1 for small inputs.
SMALL_SKELETON = (
    StageSkeleton(16, 1),
    StageSkeleton(24, 2),
    StageSkeleton(32, 2),
    StageSkeleton(64, 2),
)


MAX_CHANNELS = 4096  # a skeleton wider than this is a typo for a course space on small images
MAX_EXPANSION = 16  # MobileNetV2 uses 6; 16 is already far outside any published space
MAX_LAYERS = 32  # blocks per stage; MnasNet searches 1-4
MAX_INPUT_SIZE = 1024  # px; the space's networks are built for 8-64 px inputs


def _choices(name: str, values: Any, check: Callable[[str, Any], Any]) -> tuple:
    """The choices of one gene as a tuple of plain Python numbers, each passed through
    ``check(f"{name}[i]", v)`` (a ``_checks`` helper); empty or duplicate lists are refused."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise TypeError(
            f"{name} must be a non-empty sequence of choices, got {values!r} "
            f"({type(values).__name__})"
        )
    values = tuple(check(f"{name}[{i}]", v) for i, v in enumerate(values))
    if not values:
        raise ValueError(f"{name} must be a non-empty list of choices, got {list(values)}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} has duplicate choices: {list(values)}")
    return values


def _int_choice(maximum: int) -> Callable[[str, Any], int]:
    return lambda name, v: check_int(name, v, minimum=1, maximum=maximum)


@dataclass(frozen=True)
class SearchSpace:
    """Per-stage choices over a fixed skeleton; encodes, samples, mutates and builds.

    An architecture's code is the tuple of choice indices, stage by stage, genes in the
    order of ``GENES`` (kernel, expansion, se_ratio, layers): 4 genes per stage.
    ``size`` = prod over stages of |kernels| * |expansions| * |se_ratios| * |layers|.
    """

    kernels: tuple[int, ...] = (3, 5, 7)
    expansions: tuple[int, ...] = (1, 3, 6)
    se_ratios: tuple[float, ...] = (0.0, 0.25)
    layers: tuple[int, ...] = (1, 2, 3)
    skeleton: tuple[StageSkeleton, ...] = SMALL_SKELETON
    stem_channels: int = 16
    head_channels: int = 128
    in_chans: int = 3
    _options: tuple[tuple, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # every choice is stored as a plain Python number, so repr(space) (part of cache keys)
        # is the same whether the caller passed ints, numpy ints or 0-d tensors
        choices = {
            "kernels": _choices("kernels", self.kernels, check_kernel),
            "expansions": _choices("expansions", self.expansions, _int_choice(MAX_EXPANSION)),
            "se_ratios": _choices("se_ratios", self.se_ratios, check_probability),
            "layers": _choices("layers", self.layers, _int_choice(MAX_LAYERS)),
        }
        for name, values in choices.items():
            object.__setattr__(self, name, values)
        if not isinstance(self.skeleton, Sequence) or isinstance(self.skeleton, str):
            raise TypeError(
                f"skeleton must be a sequence of StageSkeleton, got {type(self.skeleton).__name__}"
            )
        if not self.skeleton:
            raise ValueError("skeleton must have at least one stage, got an empty list")
        skeleton = []
        for i, s in enumerate(self.skeleton):
            if not isinstance(s, StageSkeleton):
                raise TypeError(f"skeleton[{i}] must be a StageSkeleton, got {s!r}")
            out = check_int(f"skeleton[{i}].out_channels", s.out_channels, maximum=MAX_CHANNELS)
            stride = check_int(f"skeleton[{i}].stride", s.stride)
            skeleton.append(
                StageSkeleton(out, check_choice(f"skeleton[{i}].stride", stride, (1, 2)))
            )
        object.__setattr__(self, "skeleton", tuple(skeleton))
        for name in ("stem_channels", "head_channels", "in_chans"):
            object.__setattr__(
                self, name, check_int(name, getattr(self, name), maximum=MAX_CHANNELS)
            )
        options = (self.kernels, self.expansions, self.se_ratios, self.layers)
        object.__setattr__(self, "_options", options)

    # --- size and coding -------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        return len(self.skeleton)

    @property
    def choices_per_stage(self) -> int:
        return math.prod(len(o) for o in self._options)

    @property
    def size(self) -> int:
        """Number of distinct architectures: choices_per_stage ** num_stages."""
        return self.choices_per_stage**self.num_stages

    @property
    def cardinalities(self) -> tuple[int, ...]:
        """Number of choices of every gene of the code, stage by stage."""
        return tuple(len(o) for _ in self.skeleton for o in self._options)

    def contains(self, arch: Architecture) -> bool:
        """True if ``arch`` has one StageChoice per stage and every value is an allowed choice."""
        if not isinstance(arch, Architecture) or len(arch.stages) != self.num_stages:
            return False
        for stage in arch.stages:
            if not isinstance(stage, StageChoice):
                return False
            values = (stage.kernel, stage.expansion, stage.se_ratio, stage.layers)
            if any(v not in o for v, o in zip(values, self._options, strict=True)):
                return False
        return True

    def check(self, arch: Architecture) -> Architecture:
        """Return ``arch`` if it is in the space; raise ValueError naming what is wrong."""
        if not isinstance(arch, Architecture):
            raise TypeError(f"arch must be an Architecture, got {type(arch).__name__}")
        if not isinstance(arch.stages, Sequence) or isinstance(arch.stages, str):
            raise TypeError(
                f"arch.stages must be a tuple of StageChoice, got {type(arch.stages).__name__}"
            )
        if len(arch.stages) != self.num_stages:
            raise ValueError(
                f"arch has {len(arch.stages)} stages, this space has {self.num_stages}"
            )
        for i, stage in enumerate(arch.stages):
            if not isinstance(stage, StageChoice):
                raise TypeError(
                    f"arch.stages[{i}] must be a StageChoice, got {type(stage).__name__}"
                )
            values = (stage.kernel, stage.expansion, stage.se_ratio, stage.layers)
            for gene, v, o in zip(GENES, values, self._options, strict=True):
                if v not in o:
                    raise ValueError(
                        f"arch is outside the space: stage {i} {gene}={v!r}, allowed {list(o)}"
                    )
        return arch

    def encode(self, arch: Architecture) -> tuple[int, ...]:
        """Architecture -> tuple of choice indices (4 per stage, in GENES order)."""
        self.check(arch)
        code: list[int] = []
        for stage in arch.stages:
            values = (stage.kernel, stage.expansion, stage.se_ratio, stage.layers)
            code.extend(o.index(v) for v, o in zip(values, self._options, strict=True))
        return tuple(code)

    def decode(self, code: Sequence[int]) -> Architecture:
        """Tuple of choice indices -> Architecture.

        TypeError if ``code`` is not a sequence of integers, ValueError if it has the wrong
        number of genes or an index outside its gene's choices (the message names the gene).
        """
        if isinstance(code, str | bytes) or not isinstance(code, Sequence | np.ndarray):
            raise TypeError(
                f"code must be a sequence of {len(self.cardinalities)} choice indices, "
                f"got {code!r} ({type(code).__name__})"
            )
        cards = self.cardinalities
        if len(code) != len(cards):
            raise ValueError(
                f"code must have {len(cards)} genes (4 per stage), got {len(code)}: {tuple(code)}"
            )
        g = len(GENES)
        code = tuple(
            check_int(
                f"code[{i}] (gene {i}: stage {i // g} {GENES[i % g]})",
                c,
                minimum=0,
                maximum=n - 1,
                why=f"that gene has {n} choices",
            )
            for i, (c, n) in enumerate(zip(code, cards, strict=True))
        )
        stages = []
        for s in range(self.num_stages):
            k, e, se, n = (o[code[s * g + j]] for j, o in enumerate(self._options))
            stages.append(StageChoice(kernel=k, expansion=e, se_ratio=se, layers=n))
        return Architecture(tuple(stages))

    def index(self, arch: Architecture) -> int:
        """Mixed-radix rank of ``arch`` in [0, size): a compact, stable integer id."""
        rank = 0
        for c, n in zip(self.encode(arch), self.cardinalities, strict=True):
            rank = rank * n + c
        return rank

    # --- sampling and mutation -----------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniformly random architecture (each gene uniform and independent)."""
        check_generator("rng", rng)
        return self.decode(tuple(int(rng.integers(n)) for n in self.cardinalities))

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """Change exactly one gene to a different allowed value (Real et al. 2019's mutation)."""
        check_generator("rng", rng)
        code = list(self.encode(arch))
        cards = self.cardinalities
        mutable = [i for i, n in enumerate(cards) if n > 1]
        if not mutable:
            raise ValueError("every gene of this space has a single choice: nothing to mutate")
        i = mutable[int(rng.integers(len(mutable)))]
        new = int(rng.integers(cards[i] - 1))
        code[i] = new if new < code[i] else new + 1  # uniform over the other values
        return self.decode(code)

    # --- networks ------------------------------------------------------------------
    def block_specs(self, arch: Architecture, input_size: int) -> list[BlockSpec]:
        """Every InvertedResidual of ``arch`` with its input size, in order."""
        self.check(arch)
        size = check_int("input_size", input_size, maximum=MAX_INPUT_SIZE)
        c_in = self.stem_channels
        specs = []
        for skel, stage in zip(self.skeleton, arch.stages, strict=True):
            for j in range(stage.layers):
                stride = skel.stride if j == 0 else 1
                se = max(1, int(c_in * stage.se_ratio)) if stage.se_ratio > 0 else 0
                specs.append(
                    BlockSpec(
                        c_in,
                        skel.out_channels,
                        c_in * stage.expansion,
                        stage.kernel,
                        stride,
                        se,
                        size,
                    )
                )
                size = (size - 1) // stride + 1  # 'same' padding: ceil(size / stride)
                c_in = skel.out_channels
        return specs

    def all_block_specs(self, input_size: int) -> list[BlockSpec]:
        """Every distinct block the space can build at ``input_size`` (the latency table's rows)."""
        size = check_int("input_size", input_size, maximum=MAX_INPUT_SIZE)
        seen: dict[str, BlockSpec] = {}
        c_in = self.stem_channels
        for skel in self.skeleton:
            out_size = (size - 1) // skel.stride + 1
            firsts = [(c_in, skel.stride, size)]
            if max(self.layers) > 1:
                firsts.append((skel.out_channels, 1, out_size))
            for cin, stride, sz in firsts:
                for k in self.kernels:
                    for e in self.expansions:
                        for r in self.se_ratios:
                            se = max(1, int(cin * r)) if r > 0 else 0
                            spec = BlockSpec(cin, skel.out_channels, cin * e, k, stride, se, sz)
                            seen.setdefault(spec.key, spec)
            c_in, size = skel.out_channels, out_size
        return list(seen.values())

    def total_stride(self) -> int:
        return math.prod(s.stride for s in self.skeleton)

    def build_stem(self) -> ConvNormAct:
        return ConvNormAct(self.in_chans, self.stem_channels, 3, stride=1, act_layer=nn.ReLU6)

    def build_head(self) -> ConvNormAct:
        return ConvNormAct(
            self.skeleton[-1].out_channels, self.head_channels, 1, act_layer=nn.ReLU6
        )

    def build(
        self, arch: Architecture, num_classes: int = 10, dropout: float = 0.0
    ) -> EfficientCNN:
        """The network of ``arch``: stem -> stages of InvertedResidual -> head -> classifier."""
        num_classes = check_int("num_classes", num_classes, maximum=100_000)
        dropout = check_probability("dropout", dropout)
        specs = self.block_specs(arch, 32)  # the input size only matters for BlockSpec.size
        stages: list[nn.Module] = []
        i = 0
        for stage in arch.stages:
            seq = nn.Sequential()
            for j in range(stage.layers):
                seq.add_module(str(j), specs[i].build())
                i += 1
            stages.append(seq)
        return EfficientCNN(
            stem=self.build_stem(),
            stages=stages,
            head=self.build_head(),
            classifier=ClassifierHead(self.head_channels, num_classes, dropout=dropout),
            in_chans=self.in_chans,
            total_stride=self.total_stride(),
            default_input_size=32,
            name="nas",
        )

    # --- hand-designed references ------------------------------------------------------
    def baselines(self) -> dict[str, Architecture]:
        """MobileNetV2-like points of this space: k3, no SE, MobileNetV2's depths (1, 2, 3, 3).

        ``mobilenet_v2_like``: expansion 1 in the first stage (MobileNetV2's first bottleneck
        has t = 1, arXiv 1801.04381 Table 2) and 6 after; ``mobilenet_v2_like_e3``: the same
        with expansion 3, a cheaper variant. Depths are clipped to the space's layer choices.
        """
        depths = (1, 2, 3, 3, 3, 3, 3)

        def nearest(values, target):
            return min(values, key=lambda v: (abs(v - target), v))

        def make(e_first: int, e_rest: int) -> Architecture:
            return Architecture(
                tuple(
                    StageChoice(
                        kernel=nearest(self.kernels, 3),
                        expansion=nearest(self.expansions, e_first if i == 0 else e_rest),
                        se_ratio=nearest(self.se_ratios, 0.0),
                        layers=nearest(self.layers, depths[min(i, len(depths) - 1)]),
                    )
                    for i in range(self.num_stages)
                )
            )

        return {"mobilenet_v2_like": make(1, 6), "mobilenet_v2_like_e3": make(1, 3)}
