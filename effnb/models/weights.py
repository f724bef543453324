"""Load reference checkpoints (torchvision / timm) into effnb models, matched by structure.

The reference names its layers its own way (torchvision's ``features.1.conv.0.0.weight`` is
effnb's ``stages.0.0.conv_dw.conv.weight``), so names cannot be compared. Structure can:

1. Both state dicts are cut into modules (the entries that share a path, e.g.
   ``features.1.conv.0.0``). A module's *role* is what its entries are: a BatchNorm
   (weight, bias, running_mean, running_var), a conv (a 4-D weight), a linear layer (a 2-D
   weight), with or without a bias, each with its exact shape.
2. effnb registers its modules in the reference's order, so the two sequences of modules
   are aligned (``difflib.SequenceMatcher`` over role and shapes): a missing or extra block
   shows up as a gap, not as every later layer shifted by one.
3. Within an aligned pair, entries are paired by name (weight with weight, running_var with
   running_var) and every shape must be equal. The one reshape allowed: a 1x1 conv weight
   (C_out, C_in, 1, 1) <-> a linear weight (C_out, C_in). timm's ``conv_head`` is a 1x1
   conv on the pooled 1x1 map; effnb's GhostNet and MobileNetV3 heads hold it as the
   equivalent ``nn.Linear``.

Anything else raises ``CheckpointMismatchError`` (a ``ValueError``) naming the missing,
unexpected and mismatched entries; the model is left untouched. A transposed classifier
weight (1280, 1000) for (1000, 1280), or a conv weight of another shape with the same number
of elements, is a mismatch. A square weight stored transposed has the right shape and
cannot be told apart by structure.

Usage, after downloading torchvision's weights yourself::

    model = effnb.create_model("mobilenet_v2")
    load_reference_state_dict(model, "mobilenet_v2-7ebf99e0.pth")  # or a loaded state dict

A path is read with ``torch.load(..., weights_only=True)`` (tensors only, no arbitrary
pickled code). ``{"state_dict": ...}`` / ``{"model": ...}`` wrappers and the ``module.``
prefix of ``nn.DataParallel`` (and ``_orig_mod.`` of ``torch.compile``) are unwrapped.
A BatchNorm without ``num_batches_tracked`` (old checkpoints) keeps the model's counter.
"""

from __future__ import annotations

import difflib
import math
import os
import pathlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from effnb._checks import check_int, check_module

__all__ = [
    "CheckpointMismatchError",
    "load_reference_state_dict",
    "read_checkpoint",
    "reference_key_map",
    "synthetic_state_dict",
]

_OPTIONAL = "num_batches_tracked"  # absent from checkpoints saved before PyTorch 0.4.1
_WRAPPERS = ("state_dict", "model")  # {"state_dict": ...} (timm, Lightning), {"model": ...}
_PREFIXES = ("module.", "_orig_mod.")  # nn.DataParallel / DistributedDataParallel, torch.compile
_LISTED = 8  # entries named per category in an error message


class CheckpointMismatchError(ValueError):
    """A checkpoint that does not fit a model: ``missing`` (model keys the checkpoint lacks),
    ``unexpected`` (checkpoint keys the model lacks) and ``mismatched``
    (``(reference_key, reference_shape, our_key, our_shape)``)."""

    def __init__(
        self,
        message: str,
        missing: list[str],
        unexpected: list[str],
        mismatched: list[tuple[str, tuple[int, ...], str, tuple[int, ...]]],
    ) -> None:
        super().__init__(message)
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched


def _kind(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _path(key: str) -> str:
    return key.rsplit(".", 1)[0] if "." in key else ""


@dataclass(frozen=True)
class _Module:
    """The state-dict entries of one module: ``entries`` maps kind -> (key, shape)."""

    path: str
    entries: dict[str, tuple[str, tuple[int, ...]]]

    @property
    def signature(self) -> tuple:
        """Role and shapes, with the 1x1 conv <-> linear reshape folded in (see module doc)."""
        return tuple(
            sorted((kind, _comparable(kind, shape)) for kind, (_, shape) in self.entries.items())
        )

    @property
    def role(self) -> tuple:
        """What the module is, without sizes: its entry kinds (a BatchNorm, a layer with bias)."""
        return tuple(sorted(self.entries))


def _comparable(kind: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    if kind == "weight" and len(shape) == 4 and shape[2:] == (1, 1):
        return shape[:2]  # a 1x1 conv weight compares as the linear weight it equals
    return shape


def _shapes_fit(ref_shape: tuple[int, ...], our_shape: tuple[int, ...], kind: str) -> bool:
    if ref_shape == our_shape:
        return True
    return (
        kind == "weight"
        and {len(ref_shape), len(our_shape)} == {2, 4}
        and _comparable(kind, ref_shape) == _comparable(kind, our_shape)
        and max(ref_shape, our_shape, key=len)[2:] == (1, 1)
    )


def _modules(shapes: Mapping[str, tuple[int, ...]]) -> list[_Module]:
    """Entries grouped by module path, in order of first appearance (num_batches_tracked
    left out of the signature: it is optional)."""
    grouped: dict[str, dict[str, tuple[str, tuple[int, ...]]]] = {}
    for key, shape in shapes.items():
        grouped.setdefault(_path(key), {})[_kind(key)] = (key, shape)
    return [_Module(path, entries) for path, entries in grouped.items()]


def _without_optional(module: _Module) -> _Module:
    return _Module(module.path, {k: v for k, v in module.entries.items() if k != _OPTIONAL})


def _as_shape(key: str, value) -> tuple[int, ...]:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | torch.Size):
        raise TypeError(
            f"reference entry {key!r} must be a tensor or a shape (a sequence of ints), got "
            f"{type(value).__name__}"
        )
    return tuple(check_int(f"shape of reference entry {key!r}", s, minimum=0) for s in value)


def _align(
    ref: list[_Module], ours: list[_Module]
) -> tuple[list[tuple[_Module, _Module]], list[_Module], list[_Module]]:
    """(paired modules, reference modules left over, our modules left over)."""
    ref_core, our_core = [_without_optional(m) for m in ref], [_without_optional(m) for m in ours]
    pairs: list[tuple[_Module, _Module]] = []
    extra: list[_Module] = []
    missing: list[_Module] = []
    matcher = difflib.SequenceMatcher(
        None, [m.signature for m in ref_core], [m.signature for m in our_core], autojunk=False
    )
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs.extend(zip(ref[i1:i2], ours[j1:j2], strict=True))
            continue
        # A changed stretch: pair modules of the same role (their shapes differ), so the
        # error names a mismatch rather than one missing and one unexpected entry.
        inner = difflib.SequenceMatcher(
            None,
            [m.role for m in ref_core[i1:i2]],
            [m.role for m in our_core[j1:j2]],
            autojunk=False,
        )
        for tag2, a1, a2, b1, b2 in inner.get_opcodes():
            if tag2 == "equal":
                pairs.extend(zip(ref[i1 + a1 : i1 + a2], ours[j1 + b1 : j1 + b2], strict=True))
            else:
                extra.extend(ref[i1 + a1 : i1 + a2])
                missing.extend(ours[j1 + b1 : j1 + b2])
    return pairs, extra, missing


def _listing(title: str, items: list[str]) -> str:
    shown = "\n    ".join(items[:_LISTED])
    more = f"\n    ... and {len(items) - _LISTED} more" if len(items) > _LISTED else ""
    return f"\n  {title} ({len(items)}):\n    {shown}{more}"


def reference_key_map(
    model: nn.Module, reference_shapes: Mapping[str, Sequence[int] | torch.Size | torch.Tensor]
) -> dict[str, str]:
    """Pair each reference key with ours by structure: ``{reference_key: effnb_key}``.

    ``reference_shapes`` maps the reference's state-dict keys, in their order, to shapes or
    tensors (a real state dict works, as do the recorded fixtures in ``tests/fixtures``).
    Raises ``CheckpointMismatchError`` (a ValueError) naming every missing, unexpected and
    mismatched entry when the checkpoint does not fit exactly (the 1x1 conv <-> linear
    reshape aside). The result is in the reference's order.
    """
    check_module("model", model)
    if not isinstance(reference_shapes, Mapping):
        raise TypeError(
            "reference_shapes must be a mapping of state-dict keys to shapes or tensors, got "
            f"{type(reference_shapes).__name__}"
        )
    for key in reference_shapes:
        if not isinstance(key, str):
            raise TypeError(f"reference state-dict keys must be strings, got {key!r}")
    ref_shapes = {k: _as_shape(k, v) for k, v in reference_shapes.items()}
    our_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    pairs, extra, absent = _align(_modules(ref_shapes), _modules(our_shapes))

    mapping: dict[str, str] = {}
    missing = [key for m in absent for key, _ in m.entries.values()]
    unexpected = [key for m in extra for key, _ in m.entries.values()]
    mismatched: list[tuple[str, tuple[int, ...], str, tuple[int, ...]]] = []
    for ref_module, our_module in pairs:
        for kind, (ref_key, ref_shape) in ref_module.entries.items():
            if kind not in our_module.entries:
                unexpected.append(ref_key)
                continue
            our_key, our_shape = our_module.entries[kind]
            if _shapes_fit(ref_shape, our_shape, kind):
                mapping[ref_key] = our_key
            else:
                mismatched.append((ref_key, ref_shape, our_key, our_shape))
        for kind, (our_key, _) in our_module.entries.items():
            if kind not in ref_module.entries and kind != _OPTIONAL:
                missing.append(our_key)

    if missing or unexpected or mismatched:
        name = getattr(model, "name", "") or type(model).__name__
        head = (
            f"the checkpoint does not fit {name}: {len(mismatched)} mismatched, {len(missing)} "
            f"missing and {len(unexpected)} unexpected entries (the reference has "
            f"{len(ref_shapes)} state-dict entries and {name} has {len(our_shapes)})"
        )
        if missing or unexpected:
            head += "; they are not the same architecture"
        text = head
        if mismatched:
            text += _listing(
                "mismatched",
                [
                    f"reference entry {rk} {rs} does not match effnb entry {ok} {os_}"
                    for rk, rs, ok, os_ in mismatched
                ],
            )
        if missing:
            text += _listing(f"missing (in {name}, not in the checkpoint)", missing)
        if unexpected:
            text += _listing(f"unexpected (in the checkpoint, not in {name})", unexpected)
        raise CheckpointMismatchError(text, missing, unexpected, mismatched)
    return {k: mapping[k] for k in ref_shapes if k in mapping}


def read_checkpoint(source) -> dict[str, torch.Tensor]:
    """A flat ``{key: tensor}`` state dict from a path, a state dict or a wrapper of one.

    A path is read with ``torch.load(path, map_location="cpu", weights_only=True)``.
    ``{"state_dict": sd}`` and ``{"model": sd}`` are unwrapped, then a ``module.`` (or
    ``_orig_mod.``) prefix shared by every key is removed. Every value must be a tensor.
    """
    if isinstance(source, str | os.PathLike):
        path = pathlib.Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint file {path} does not exist")
        try:
            source = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign file, named
            raise ValueError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
        where = f" in {path}"
    else:
        where = ""
    if not isinstance(source, Mapping):
        raise TypeError(
            f"state_dict must be a mapping of names to tensors, a {{'state_dict': ...}} wrapper "
            f"or a file path, got {type(source).__name__}{where}"
        )
    for wrapper in _WRAPPERS:
        inner = source.get(wrapper)
        if isinstance(inner, Mapping):  # a state dict's values are tensors, never mappings
            source = inner
            break
    state = dict(source)
    for prefix in _PREFIXES:
        if state and all(isinstance(k, str) and k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    for key, value in state.items():
        if not isinstance(key, str):
            raise TypeError(f"state-dict keys must be strings, got {key!r}{where}")
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"state-dict entry {key!r}{where} must be a tensor, got {type(value).__name__}"
            )
    if not state:
        raise ValueError(f"the checkpoint{where} holds no entries")
    return state


def load_reference_state_dict(model: nn.Module, state_dict) -> nn.Module:
    """Copy a reference checkpoint into ``model`` (strict, by structure; see the module doc).

    ``state_dict``: a state dict, a path to a ``torch.save``-d one, or a
    ``{"state_dict": ...}`` / ``{"model": ...}`` wrapper; a ``module.`` prefix is removed.
    Every shape must match exactly, bar the 1x1 conv <-> linear reshape; entries that do
    not fit, or hold NaN or infinity, raise before the model is touched.
    """
    check_module("model", model)
    state = read_checkpoint(state_dict)
    mapping = reference_key_map(model, state)
    bad = [
        k
        for k, v in state.items()
        if v.is_floating_point() and v.numel() and not bool(torch.isfinite(v).all())
    ]
    if bad:
        raise ValueError(
            f"the checkpoint holds NaN or infinite values in {len(bad)} entries: "
            f"{', '.join(bad[:_LISTED])}{' ...' if len(bad) > _LISTED else ''}"
        )
    ours = model.state_dict()
    converted = OrderedDict(
        (our_key, state[ref_key].reshape(ours[our_key].shape))
        for ref_key, our_key in mapping.items()
    )
    for key, value in ours.items():  # counters the checkpoint does not carry (old BatchNorms)
        converted.setdefault(key, value)
    model.load_state_dict(converted, strict=True)
    return model


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def synthetic_state_dict(shapes: Mapping[str, tuple[int, ...]], seed: int = 0) -> OrderedDict:
    """Deterministic, well-scaled weights for a list of keys and shapes (for parity tests).

    Entry i is drawn from ``torch.Generator().manual_seed(seed + i)``: conv/linear weights
    ~ N(0, 1/fan_in), BN weight ~ 1 + N(0, 0.1^2), biases and running means ~ N(0, 0.1^2),
    running variances ~ U(0.5, 1.5). The same keys give the same tensors in any torch
    version, so logits recorded from the reference can be compared with ours.
    """
    seed = check_int("seed", seed, minimum=0)
    out = OrderedDict()
    for i, (key, shape) in enumerate(shapes.items()):
        shape = _as_shape(key, shape)
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
