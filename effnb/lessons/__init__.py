"""Plotting and widget glue behind the notebooks, one module per notebook.

The ideas are built on the notebook pages; these modules only draw figures and feed widgets
(each names the notebook it serves). ``copy_weights`` is how a page checks the network it
built against effnb's: same parameter count, then the same outputs on the same weights.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["copy_weights"]


def copy_weights(dst: nn.Module, src: nn.Module) -> nn.Module:
    """Copy ``src``'s parameters and buffers into ``dst`` entry by entry, in registration order.

    For checking a network built on the page against effnb's copy, whose submodules may be
    named differently: the two state dicts must have the same number of entries and the same
    shape at every position, else ``ValueError`` names the first mismatch. (Loading real
    checkpoints matches by name instead: ``effnb.models.weights``.) Returns ``dst``.
    """
    d, s = dst.state_dict(), src.state_dict()
    if len(d) != len(s):
        raise ValueError(
            f"dst has {len(d)} state entries and src {len(s)}: the networks differ in structure"
        )
    for (dk, dv), (sk, sv) in zip(d.items(), s.items(), strict=True):
        if dv.shape != sv.shape:
            raise ValueError(
                f"dst[{dk!r}] has shape {tuple(dv.shape)} but src[{sk!r}] has {tuple(sv.shape)}"
            )
    with torch.no_grad():
        dst.load_state_dict(dict(zip(d, s.values(), strict=True)))
    return dst
