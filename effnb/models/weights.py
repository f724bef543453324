"""Load reference checkpoints (torchvision / timm) into effnb models.

effnb registers every layer in the same order as the reference implementation, so a
checkpoint maps onto our model entry by entry: the i-th tensor of the reference
``state_dict`` goes to the i-th tensor of ours. ``reference_key_map`` builds that
pairing and checks it (same count, same kind of entry, same number of elements);
``load_reference_state_dict`` applies it. The only reshape is the 1x1 ``conv_head`` of
timm's GhostNet, which we hold as an equivalent ``nn.Linear`` after pooling.

Usage, after downloading torchvision's weights yourself::

    sd = torch.load("mobilenet_v2-7ebf99e0.pth")
    model = effnb.create_model("mobilenet_v2")
    load_reference_state_dict(model, sd)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn

from effnb._checks import check_module

__all__ = ["load_reference_state_dict", "reference_key_map", "synthetic_state_dict"]

_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _kind(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def reference_key_map(
    model: nn.Module, reference_shapes: Mapping[str, tuple[int, ...] | torch.Size]
) -> dict[str, str]:
    """Pair each reference key with ours, in order: ``{reference_key: effnb_key}``.

    ``reference_shapes`` maps the reference's state-dict keys, in their order, to shapes
    (a real state dict works, as do the recorded fixtures in ``tests/fixtures``). Raises
    ValueError naming the first pair whose kind (weight/bias/running stat) or size differs.
    """
    check_module("model", model)
    ours = model.state_dict()
    if len(ours) != len(reference_shapes):
        raise ValueError(
            f"the reference has {len(reference_shapes)} state-dict entries and {type(model).__name__} "
            f"has {len(ours)}: they are not the same architecture"
        )
    mapping = {}
    for (ref_key, ref_shape), (our_key, our_tensor) in zip(
        reference_shapes.items(), ours.items(), strict=True
    ):
        ref_shape = tuple(ref_shape)
        if _kind(ref_key) != _kind(our_key) or _numel(ref_shape) != our_tensor.numel():
            raise ValueError(
                f"reference entry {ref_key} {ref_shape} does not match effnb entry {our_key} "
                f"{tuple(our_tensor.shape)}"
            )
        mapping[ref_key] = our_key
    return mapping


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def load_reference_state_dict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor]
) -> nn.Module:
    """Copy a reference checkpoint into ``model`` (strict), reshaping 1x1-conv <-> linear."""
    mapping = reference_key_map(model, {k: tuple(v.shape) for k, v in state_dict.items()})
    ours = model.state_dict()
    converted = OrderedDict(
        (our_key, state_dict[ref_key].reshape(ours[our_key].shape))
        for ref_key, our_key in mapping.items()
    )
    model.load_state_dict(converted, strict=True)
    return model


def synthetic_state_dict(shapes: Mapping[str, tuple[int, ...]], seed: int = 0) -> OrderedDict:
    """Deterministic, well-scaled weights for a list of keys and shapes (for parity tests).

    Entry i is drawn from ``torch.Generator().manual_seed(seed + i)``: conv/linear weights
    ~ N(0, 1/fan_in), BN weight ~ 1 + N(0, 0.1^2), biases and running means ~ N(0, 0.1^2),
    running variances ~ U(0.5, 1.5). The same keys give the same tensors in any torch
    version, so logits recorded from the reference can be compared with ours.
    """
    out = OrderedDict()
    for i, (key, shape) in enumerate(shapes.items()):
        shape = tuple(shape)
        gen = torch.Generator().manual_seed(seed + i)
        kind = _kind(key)
        if kind == "num_batches_tracked":
            t = torch.zeros(shape, dtype=torch.long)
        elif kind == "running_var":
            t = 0.5 + torch.rand(shape, generator=gen)
        elif len(shape) >= 2:
            fan_in = _numel(shape[1:])
            t = torch.randn(shape, generator=gen) / fan_in**0.5
        elif kind == "weight":
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        else:
            t = 0.1 * torch.randn(shape, generator=gen)
        out[key] = t
    return out
