"""Peak activation memory of one batch-1 forward pass at 224 px: measured against estimated.

Columns (MiB, input included, fp32, eval mode under ``torch.inference_mode``):

* measured (tensors): storages of op outputs, live bytes tracked through the dispatcher
  (``effnb.memory.measure_peak_bytes(method="tensors")``);
* measured (allocator): CPU allocator events from ``torch.profiler`` (adds kernel scratch);
* cost model: ``effnb.costs.profile(...).peak_activation_bytes``, max over layers of
  input + output (a lower bound);
* estimate: ``effnb.memory.estimate_peak_bytes``, which adds the inputs of enclosing
  module calls and held shortcuts.

    PYTHONPATH=. .venv/bin/python benchmarks/memory.py [--models a,b] [--size 224] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from dataclasses import asdict

import torch

import effnb
from effnb.memory import memory_report

MODELS = (
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "shufflenet_v2_x1_0",
    "ghostnet",
    "efficientnet_b0",
)
MIB = 2**20


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--out", default=None, help="write OUT.json")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    head = (
        f"{'model':20s} {'tensors':>9s} {'allocator':>10s} {'cost model':>11s} {'estimate':>9s} "
        f"{'cost/meas':>10s} {'est/meas':>9s}"
    )
    print(
        f"peak activation memory, MiB, batch {args.batch}, {args.size} px, torch {torch.__version__}"
    )
    print(head + "\n" + "-" * len(head))
    rows = []
    for name in args.models.split(","):
        r = memory_report(effnb.create_model(name), args.size, args.batch)
        rows.append(asdict(r))
        print(
            f"{name:20s} {r.measured_tensors / MIB:9.2f} {r.measured_allocator / MIB:10.2f} "
            f"{r.cost_model / MIB:11.2f} {r.estimate / MIB:9.2f} "
            f"{r.cost_model / r.measured_tensors:10.2f} {r.estimate / r.measured_tensors:9.2f}"
        )
    if args.out:
        pathlib.Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
