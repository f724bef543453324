"""A small model registry: names -> builders, with reference facts next to each model."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

__all__ = ["ModelInfo", "create_model", "list_models", "model_info", "register_model"]


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
    extras: dict = field(default_factory=dict)


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(name: str, builder: Callable[..., nn.Module], **facts) -> ModelInfo:
    """Register ``builder`` under ``name``; a duplicate name is an error."""
    if name in _REGISTRY:
        raise ValueError(f"model name {name!r} is already registered")
    info = ModelInfo(name=name, builder=builder, **facts)
    _REGISTRY[name] = info
    return info


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


def create_model(name: str, *, small_input: bool = False, **kwargs) -> nn.Module:
    """Build a registered model, e.g. ``create_model('mobilenet_v2', width_mult=0.5, num_classes=10)``.

    ``small_input=True`` removes the stem's downsampling for 16-32 px images (see
    ``EfficientCNN.small_input``).
    """
    info = model_info(name)
    params = inspect.signature(info.builder).parameters
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        raise TypeError(
            f"{name} got unexpected argument(s) {unknown}; it takes {sorted(params) + ['small_input']}"
        )
    model = info.builder(**kwargs)
    return model.small_input() if small_input else model
