"""A small model registry: names -> builders, with reference facts next to each model."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from effnb._checks import (
    MAX_LAYER_PARAMS,
    SizeLimitError,
    check_bool,
    check_int,
    format_bytes,
    memory_limit,
)
from effnb.models.net import EfficientCNN

__all__ = [
    "ModelInfo",
    "check_planned_bytes",
    "create_model",
    "list_models",
    "model_info",
    "register_model",
]


@dataclass(frozen=True)
class ModelInfo:
    """What we know about a registered model, with where each fact comes from."""

    name: str
    builder: Callable[..., nn.Module]
    input_size: int  # native (training) resolution in pixels
    family: str
    reference: str = ""  # implementation our parity tests compare against
    reference_params: int | None = None  # sum(p.numel()) of the reference at 1000 classes
    reference_macs: int | None = None  # conv+linear MACs of the reference at input_size
    top1: float | None = None  # published ImageNet top-1 (%), quoted, not measured here
    paper: str = ""  # where top1 is published
    extras: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, ModelInfo] = {}

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])


def register_model(
    name: str,
    *,
    family: str,
    input_size: int = 224,
    reference: str = "",
    reference_params: int | None = None,
    reference_macs: int | None = None,
    top1: float | None = None,
    paper: str = "",
    extras: Mapping[str, Any] | None = None,
) -> Callable[[Builder], Builder]:
    """Decorator: register the builder it wraps under ``name``, with its reference facts.

    ``@register_model("mobilenet_v2", family="mobilenet", reference="torchvision mobilenet_v2",
    reference_params=3_504_872, reference_macs=300_774_272, top1=72.0, paper=...)`` above
    ``def mobilenet_v2(...)`` (as timm's ``@register_model`` and torchvision's weight metadata
    keep the facts beside the builder). Each fact is a named field of ``ModelInfo``; the
    builder is returned unchanged. Variants made by a factory register with
    ``register_model(name, ...)(factory(...))``. A duplicate name is an error.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"model name must be a non-empty string, got {name!r}")
    if not isinstance(family, str) or not family:
        raise TypeError(f"family of {name!r} must be a non-empty string, got {family!r}")
    input_size = check_int("input_size", input_size)

    def register(builder: Builder) -> Builder:
        if not callable(builder):
            raise TypeError(f"builder for {name!r} must be callable, got {type(builder).__name__}")
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is already registered")
        _REGISTRY[name] = ModelInfo(
            name=name,
            builder=builder,
            input_size=input_size,
            family=family,
            reference=reference,
            reference_params=reference_params,
            reference_macs=reference_macs,
            top1=top1,
            paper=paper,
            extras=dict(extras or {}),
        )
        return builder

    return register


def list_models(family: str | None = None) -> list[str]:
    """Names of registered models, in registration order (the course's order)."""
    return [n for n, i in _REGISTRY.items() if family is None or i.family == family]


def model_info(name: str) -> ModelInfo:
    """The registry entry for ``name``; unknown names list what exists."""
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    if name not in _REGISTRY:
        raise ValueError(f"unknown model name {name!r}; available: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def model_bytes_limit() -> int:
    """Most bytes of parameters and buffers ``create_model`` allocates: 1/8 of
    ``effnb._checks.memory_limit()`` (512 MiB by default, twice EfficientNet-B7's weights)."""
    return memory_limit() // 8


_FACTORIES = {torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn}


def _requested_shape(func, args: tuple, kwargs: dict) -> tuple[int, ...] | None:
    """The shape a factory call (``torch.empty(3, 4)``, ``torch.zeros((3, 4))``) asks for."""
    size = kwargs.get("size", args[0] if len(args) == 1 or func is torch.full else args)
    if isinstance(size, int):
        size = (size,)
    try:
        return tuple(int(s) for s in size)
    except (TypeError, ValueError):
        return None


class _AllocationGuard(TorchFunctionMode):
    """Counts the bytes a model build allocates and stops it, before the allocation, at a
    tensor larger than ``MAX_LAYER_PARAMS`` or a total beyond ``model_bytes_limit()``.

    Every parameter and buffer of an ``nn.Module`` comes from one of ``_FACTORIES``
    (``nn.Conv2d`` calls ``torch.empty``), so this sees them all; on the meta device
    nothing is allocated and nothing is counted.
    """

    def __init__(self, call: str) -> None:
        super().__init__()
        self.call = call
        self.limit = model_bytes_limit()
        self.total = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _FACTORIES:
            shape = _requested_shape(func, args, kwargs)
            device = torch.device(kwargs.get("device") or torch.get_default_device())
            if shape is not None and device.type != "meta":
                numel = math.prod(shape)
                dtype = kwargs.get("dtype") or torch.get_default_dtype()
                nbytes = numel * torch.empty((), dtype=dtype, device="meta").element_size()
                if numel > MAX_LAYER_PARAMS:
                    raise SizeLimitError(
                        f"{self.call} would allocate a {shape} tensor ({numel:,} values), more "
                        f"than the {MAX_LAYER_PARAMS:,} one layer may have (6.5x the largest layer "
                        "of any registered model): a size argument is far too large. Stopped "
                        f"before allocating it, after {format_bytes(self.total)}; build it under "
                        "`with torch.device('meta')` to count it without allocating."
                    )
                if self.total + nbytes > self.limit:
                    raise SizeLimitError(
                        f"{self.call} would hold more than {format_bytes(self.limit)} of "
                        "parameters and buffers (1/8 of effnb's memory limit; set EFFNB_MAX_BYTES "
                        f"to change it): a size argument is far too large. Stopped after "
                        f"{format_bytes(self.total)}; build it under `with torch.device('meta')` "
                        "to count it without allocating."
                    )
                self.total += nbytes
        return func(*args, **kwargs)

    def check_planned(self, nbytes: int) -> None:
        """Stop before building when the config alone says the build would not fit."""
        if nbytes > self.limit:
            raise SizeLimitError(
                f"{self.call} would hold more than {format_bytes(self.limit)} of parameters and "
                "buffers (1/8 of effnb's memory limit; set EFFNB_MAX_BYTES to change it): its "
                f"config counts {format_bytes(nbytes)} of parameters before building anything, "
                "so a size argument is far too large. Build it under `with torch.device('meta')` "
                "to count it without allocating."
            )


_ACTIVE_GUARD: ContextVar[_AllocationGuard | None] = ContextVar("_ACTIVE_GUARD", default=None)


def check_planned_bytes(count: Callable[[], int]) -> None:
    """For builders: fail at once when ``create_model``'s bound would stop this build anyway.

    ``count()`` is the bytes of parameters the builder's config will allocate, counted from
    its table before any layer exists (a lower bound is enough: the allocation guard still
    counts every tensor). Only evaluated inside ``create_model`` on a device that allocates,
    so direct builder calls and ``with torch.device('meta')`` builds are unchanged.
    """
    guard = _ACTIVE_GUARD.get()
    if guard is not None and torch.get_default_device().type != "meta":
        guard.check_planned(count())


def create_model(name: str, *, small_input: bool = False, **kwargs) -> nn.Module:
    """Build a registered model, e.g. ``create_model('mobilenet_v2', width_mult=0.5, num_classes=10)``.

    ``small_input=True`` removes the stem's downsampling for 16-32 px images (see
    ``EfficientCNN.small_input``). A build that would allocate a layer of more than
    ``effnb._checks.MAX_LAYER_PARAMS`` weights, or more than ``model_bytes_limit()`` bytes in
    all (``width_mult=100``, ``num_classes=10**9``), raises ``SizeLimitError`` naming the
    arguments before that allocation; on the meta device any size can be built.
    """
    info = model_info(name)
    check_bool("small_input", small_input)
    params = inspect.signature(info.builder).parameters
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        raise TypeError(
            f"{name} got unexpected argument(s) {unknown}; it takes {sorted(params) + ['small_input']}"
        )
    call = f"create_model({', '.join([repr(name)] + [f'{k}={v!r}' for k, v in kwargs.items()])})"
    guard = _AllocationGuard(call)
    token = _ACTIVE_GUARD.set(guard)
    try:
        with guard:
            model = info.builder(**kwargs)
    except SizeLimitError as exc:
        if str(exc).startswith(call):
            raise
        raise SizeLimitError(f"{call}: {exc}") from None
    finally:
        _ACTIVE_GUARD.reset(token)
    if not small_input:
        return model
    if not isinstance(model, EfficientCNN):
        raise TypeError(
            f"small_input=True needs an EfficientCNN; {name} built a {type(model).__name__}"
        )
    return model.small_input()
