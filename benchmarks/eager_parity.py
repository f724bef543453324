"""effnb eager against the reference eager, same weights, allocator configured, fresh processes.

Goal (issue 15, item 2): with glibc's allocator configured (``effnb.allocator.GLIBC_CONFIGURED``),
effnb eager / reference eager <= 1.05 in each of 5 fresh processes, at batch 1, 224 px, 2
threads, for MobileNetV2, MobileNetV3-Large, ShuffleNetV2 x1.0 and EfficientNet-B0 (references:
torchvision's builders). Each process builds one pair, copies the reference's weights into
effnb's model (``effnb.models.weights.load_reference_state_dict``; the largest output
difference is printed), and times both in ONE interleaved ``effnb.compare_latency`` run; the
ratio is the median of the per-round ratios with its 95% sign-test interval.

A control runs in the same processes: a second, independently built copy of the reference
(``reference copy``), timed in the same interleaved run. Its ratio to the reference is what
the harness reports for two networks that are the same code; how far it strays from 1.00 is
the resolution (heap placement, build order, the round's position) against which effnb's
ratio is read. ``--no-control`` leaves it out.

torchvision and timm are not project dependencies; run it in a venv that has them:

    PYTHONPATH=. ../refvenv/bin/python benchmarks/eager_parity.py
    ... --processes 5 --rounds 15 --min-run-time 0.1 --threads 2 --models mobilenet_v2

Prints a table (and writes --out PATH.json if given), then the structure effnb pays for and
the reference does not: module calls per forward (counted with a global forward pre-hook), the
``nn.Identity`` / ``DropPath`` placeholders among them, and what those calls cost at the per-call
price measured here (``timeit`` of one placeholder call), as a share of effnb's median time.
Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import pathlib
import platform
import sys
import timeit
from collections import Counter
from typing import Any, NamedTuple

import torch
from torch import nn

import effnb
from effnb.allocator import fresh_process_study
from effnb.bench import allocator_summary
from effnb.layers import DropPath

REFERENCES = {
    "mobilenet_v2": "torchvision:mobilenet_v2",
    "mobilenet_v3_large": "torchvision:mobilenet_v3_large",
    "shufflenet_v2_x1_0": "torchvision:shufflenet_v2_x1_0",
    "efficientnet_b0": "torchvision:efficientnet_b0",
}
GOAL = 1.05
NAN_CI = (math.nan, math.nan, math.nan)


class Row(NamedTuple):
    """One fresh process of one model: the records and the (lo, median, hi) ratios."""

    name: str
    process: int
    ours: Any  # effnb.allocator record of effnb's model
    ref: Any  # ... of the reference
    ratio: tuple[float, float, float]  # effnb / reference
    control: tuple[float, float, float]  # reference copy / reference (NaN: --no-control)


def module_calls(model: nn.Module, x: torch.Tensor) -> Counter:
    """How many times each module type is called in one forward of ``model`` on ``x``."""
    calls: Counter = Counter()
    handle = nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: calls.update([type(module).__name__])
    )
    try:
        with torch.inference_mode():
            model(x)
    finally:
        handle.remove()
    return calls


def placeholder_cost_us() -> dict[str, float]:
    """Median over 5 repeats of the per-call time (microseconds) of an eval-mode placeholder."""
    t = torch.zeros(1)
    out = {}
    for name, module in (("Identity", nn.Identity()), ("DropPath", DropPath(0.2).eval())):
        runs = timeit.repeat(lambda m=module: m(t), number=20_000, repeat=5)
        out[name] = sorted(runs)[2] / 20_000 * 1e6
    return out


def structure_report(names: list[str], effnb_ms: dict[str, float]) -> None:
    """Module calls effnb makes that the reference does not, and their estimated cost."""
    tv = importlib.import_module("torchvision.models")
    cost = placeholder_cost_us()
    print(
        f"\nstructure: module calls per forward (placeholder call here: Identity "
        f"{cost['Identity']:.2f} us, DropPath {cost['DropPath']:.2f} us)"
    )
    x = torch.randn(1, 3, 224, 224)
    for name in names:
        ours = module_calls(effnb.create_model(name).eval(), x)
        ref = module_calls(getattr(tv, REFERENCES[name].split(":")[1])(weights=None).eval(), x)
        extra_us = ours["Identity"] * cost["Identity"] + ours["DropPath"] * cost["DropPath"]
        share = extra_us / 1e3 / effnb_ms[name] if name in effnb_ms else float("nan")
        print(
            f"  {name:20s} effnb {sum(ours.values()):3d} calls ({ours['Identity']} Identity, "
            f"{ours['DropPath']} DropPath), reference {sum(ref.values()):3d}: placeholders cost "
            f"~{extra_us:.0f} us per forward = {100 * share:.2f}% of effnb's median time"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(REFERENCES))
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--min-run-time", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--env", default="glibc", help="allocator environment (effnb.allocator)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--out", type=pathlib.Path, default=None)
    parser.add_argument(
        "--no-control", dest="control", action="store_false", help="no reference copy"
    )
    args = parser.parse_args(argv)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in REFERENCES]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {list(REFERENCES)}")
    print(
        f"torch {torch.__version__}, python {platform.python_version()}, {platform.machine()}, "
        f"{args.threads} threads, batch 1, 224 px; parent {allocator_summary()}"
    )
    rows: list[Row] = []
    out: dict[str, list[dict]] = {}
    for name in names:
        specs = {"effnb": name, "reference": REFERENCES[name]}
        if args.control:
            specs["reference copy"] = REFERENCES[name]
        study = fresh_process_study(
            specs,
            [args.env],
            processes=args.processes,
            threads=args.threads,
            rounds=args.rounds,
            min_run_time=args.min_run_time,
            timeout=args.timeout,
            same_weights={"effnb": "reference"},
            verbose=True,
        )
        for line in study.failures:
            print(f"  FAILED {name}: {line}")
        if args.env in study.skipped:
            print(f"  {args.env}: {study.skipped[args.env]}")
            continue
        procs = sorted({r.process for r in study.records})
        for i in procs:
            recs = {r.label: r for r in study.records if r.process == i}
            control = (
                study.process_ratio_ci(args.env, i, "reference copy", "reference")
                if "reference copy" in recs
                else NAN_CI
            )
            ratio = study.process_ratio_ci(args.env, i, "effnb", "reference")
            rows.append(Row(name, i, recs["effnb"], recs["reference"], ratio, control))
        out[name] = [
            {
                "process": row.process,
                "effnb_ms": row.ours.median_ms,
                "reference_ms": row.ref.median_ms,
                "ratio": row.ratio[1],
                "ci": [row.ratio[0], row.ratio[2]],
                "faults_effnb": row.ours.faults_per_call,
                "faults_reference": row.ref.faults_per_call,
                "max_abs_diff": row.ours.max_abs_diff,
                "allocator": row.ours.allocator,
                "control_ratio": row.control[1],
                "control_ci": [row.control[0], row.control[2]],
            }
            for row in rows
            if row.name == name
        ]
    head = (
        f"{'model':20s} {'proc':>4s} {'effnb ms':>9s} {'ref ms':>8s} {'ratio':>6s} "
        f"{'95% CI':>12s} {'copy/ref (95% CI)':>20s} {'faults/call effnb/ref':>22s} "
        f"{'max|diff|':>10s}  goal <= {GOAL}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    met_all = True
    for name, i, ours, ref, (lo, med, hi), control in rows:
        ci = f"{lo:.3f}-{hi:.3f}" if math.isfinite(lo) else "too few"
        c_lo, c_med, c_hi = control
        copy = (
            f"{c_med:.3f} ({c_lo:.3f}-{c_hi:.3f})"
            if math.isfinite(c_lo)
            else (f"{c_med:.3f}" if math.isfinite(c_med) else "-")
        )
        faults = f"{ours.faults_per_call or 0:,.0f} / {ref.faults_per_call or 0:,.0f}"
        met = med <= GOAL
        met_all &= met
        verdict = "met" if met else "MISSED"
        if met and math.isfinite(hi) and hi > GOAL:
            verdict += " (median; CI reaches above)"
        print(
            f"{name:20s} {i:>4d} {ours.median_ms:>9.2f} {ref.median_ms:>8.2f} {med:>6.3f} "
            f"{ci:>12s} {copy:>20s} {faults:>22s} {ours.max_abs_diff or 0:>10.1e}  {verdict}"
        )
    if rows:
        print(f"allocator in the children: {allocator_summary(rows[0].ours.allocator)}")
    print(f"goal (median ratio <= {GOAL} in every process): {'met' if met_all else 'NOT met'}")
    controls = [row.control[1] for row in rows if math.isfinite(row.control[1])]
    if controls:
        print(
            f"control (a second reference copy / the reference, same processes): "
            f"{min(controls):.3f}-{max(controls):.3f} over {len(controls)} processes"
        )
    effnb_ms = {}
    for name in names:
        times = [row.ours.median_ms for row in rows if row.name == name]
        if times:
            effnb_ms[name] = sorted(times)[len(times) // 2]
    torch.set_num_threads(args.threads)
    structure_report(names, effnb_ms)
    if args.out is not None:
        args.out.with_suffix(".json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
