"""effnb models against torchvision/timm on this CPU: reference eager, ours eager, ours deployed.

One interleaved run per (model, batch) with ``effnb.compare_latency``: the three versions
are timed round after round on the same input, so machine drift hits all of them alike.
Ratios are medians of per-round ratios. Our model gets the reference's weights (copied with
``effnb.models.weights``), so the three compute the same numbers; the script checks that.

Goals (issue 5): ours eager / reference eager <= 1.05 on every model; deployed at least
1.5x faster than reference eager on MobileNetV2, MobileNetV3 (both) and ShuffleNetV2, and
faster on all.

    PYTHONPATH=. REFVENV/bin/python benchmarks/speed.py --rounds 30   # REFVENV: torchvision + timm

Without torchvision/timm (the project venv) only our columns are measured.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
from collections.abc import Callable

import torch
from torch import nn

import effnb
from effnb.deploy import deploy
from effnb.models.weights import load_reference_state_dict

# effnb name -> (reference label, builder). Builders import lazily: the project venv has neither.
REFERENCES: dict[str, tuple[str, Callable[[], nn.Module]]] = {
    "mobilenet_v1": ("timm mobilenetv1_100", lambda: _timm("mobilenetv1_100")),
    "mobilenet_v2": ("torchvision mobilenet_v2", lambda: _tv("mobilenet_v2")),
    "mobilenet_v3_large": ("torchvision mobilenet_v3_large", lambda: _tv("mobilenet_v3_large")),
    "mobilenet_v3_small": ("torchvision mobilenet_v3_small", lambda: _tv("mobilenet_v3_small")),
    "shufflenet_v2_x1_0": ("torchvision shufflenet_v2_x1_0", lambda: _tv("shufflenet_v2_x1_0")),
    "ghostnet": ("timm ghostnet_100", lambda: _timm("ghostnet_100")),
    "efficientnet_b0": ("torchvision efficientnet_b0", lambda: _tv("efficientnet_b0")),
}
SPEEDUP_GOAL = {"mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "shufflenet_v2_x1_0"}
EAGER_RATIO_GOAL = 1.05
DEPLOY_SPEEDUP_GOAL = 1.5


def _tv(name: str) -> nn.Module:
    import torchvision

    return getattr(torchvision.models, name)(weights=None)


def _timm(name: str) -> nn.Module:
    import timm

    return timm.create_model(name, pretrained=False)


def references_available() -> tuple[bool, str]:
    """(True, '') when torchvision and timm import, else (False, why)."""
    try:
        import timm  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as exc:
        return False, str(exc)
    return True, ""


def machine() -> dict:
    """CPU model, cores, torch version and threads: printed above every table."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def build(name: str, with_reference: bool, batch: int) -> tuple[dict[str, nn.Module], float]:
    """The models to compare and the largest |logit difference| between them."""
    torch.manual_seed(0)
    ours = effnb.create_model(name).eval()
    models: dict[str, nn.Module] = {}
    if with_reference:
        ref = REFERENCES[name][1]().eval()
        load_reference_state_dict(ours, ref.state_dict())
        models["reference"] = ref
    models["ours"] = ours
    x = torch.randn(batch, 3, 224, 224)
    models["deployed"] = deploy(ours, example_input=x)
    with torch.inference_mode():
        base = ours(x)
        diff = max((m(x) - base).abs().max().item() for m in models.values())
    return models, diff


def run(args: argparse.Namespace) -> list[dict]:
    with_ref, _ = references_available()
    rows = []
    for batch in args.batch:
        for name in args.models:
            models, diff = build(name, with_ref, batch)
            cmp = effnb.compare_latency(
                models,
                224,
                batch=batch,
                threads=args.threads,
                rounds=args.rounds,
                min_run_time=args.min_run_time,
            )
            row = {
                "model": name,
                "reference": REFERENCES[name][0] if with_ref else None,
                "batch": batch,
                "max_abs_logit_diff": diff,
                "ms": {k: r.median_ms for k, r in cmp.records.items()},
                "iqr_ms": {k: r.iqr_ms for k, r in cmp.records.items()},
                "deployed_vs_ours": cmp.speedup("deployed", "ours"),
            }
            if with_ref:
                row["ours_over_reference"] = cmp.ratio("ours", "reference")
                row["deployed_speedup"] = cmp.speedup("deployed", "reference")
                row["eager_goal_met"] = row["ours_over_reference"] <= EAGER_RATIO_GOAL
                goal = DEPLOY_SPEEDUP_GOAL if name in SPEEDUP_GOAL else 1.0
                row["speedup_goal"] = goal
                row["speedup_goal_met"] = row["deployed_speedup"] >= goal
            rows.append(row)
            print(format_row(row), flush=True)
    return rows


HEADER = (
    f"{'model':20s} {'batch':>5s} {'ref ms':>8s} {'ours ms':>8s} {'depl ms':>8s} "
    f"{'ours/ref':>9s} {'ref/depl':>9s} {'ours/depl':>9s} {'goals':>12s} {'max|diff|':>10s}"
)


def format_row(row: dict) -> str:
    ms = row["ms"]
    ref = f"{ms['reference']:8.1f}" if "reference" in ms else f"{'-':>8s}"
    ratio = f"{row['ours_over_reference']:9.3f}" if "ours_over_reference" in row else f"{'-':>9s}"
    speed = f"{row['deployed_speedup']:8.2f}x" if "deployed_speedup" in row else f"{'-':>9s}"
    if "eager_goal_met" in row:
        goals = f"{'ok' if row['eager_goal_met'] else 'MISS'}/{'ok' if row['speedup_goal_met'] else 'MISS'}"
    else:
        goals = "-"
    return (
        f"{row['model']:20s} {row['batch']:5d} {ref} {ms['ours']:8.1f} {ms['deployed']:8.1f} "
        f"{ratio} {speed} {row['deployed_vs_ours']:8.2f}x {goals:>12s} {row['max_abs_logit_diff']:10.1e}"
    )


def markdown(info: dict, args: argparse.Namespace, rows: list[dict]) -> str:
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}, "
        f"{args.threads} thread(s), 1-min load average at start {info['load_avg_1min']}; "
        f"{args.rounds} interleaved rounds, 224x224 input. Ratios are medians of per-round ratios.",
        "",
        "| model | batch | reference eager ms | ours eager ms | ours deployed ms | ours / ref | "
        "speedup deployed vs ref | goals (eager <= 1.05 / speedup) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ms = r["ms"]
        ref = f"{ms['reference']:.1f}" if "reference" in ms else "-"
        ratio = f"{r['ours_over_reference']:.3f}" if "ours_over_reference" in r else "-"
        speed = f"{r['deployed_speedup']:.2f}x" if "deployed_speedup" in r else "-"
        goals = (
            f"{'met' if r['eager_goal_met'] else 'missed'} / "
            f"{'met' if r['speedup_goal_met'] else 'missed'} (>= {r['speedup_goal']}x)"
            if "eager_goal_met" in r
            else "-"
        )
        lines.append(
            f"| {r['model']} | {r['batch']} | {ref} | {ms['ours']:.1f} | {ms['deployed']:.1f} | "
            f"{ratio} | {speed} | {goals} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", default="1,8", help="comma-separated batch sizes (default 1,8)")
    p.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    p.add_argument("--models", default=",".join(REFERENCES), help="comma-separated effnb names")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--min-run-time", type=float, default=0.2, help="seconds per model per round")
    p.add_argument("--quick", action="store_true", help="3 rounds of 0.05 s: a smoke test")
    p.add_argument("--out", default=None, help="write results to OUT.json and OUT.md")
    args = p.parse_args(argv)
    args.batch = [int(b) for b in args.batch.split(",")]
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in REFERENCES]
    if unknown:
        p.error(f"--models: unknown {unknown}; choose from {list(REFERENCES)}")
    if args.quick:
        args.rounds, args.min_run_time = 3, 0.05
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    print(
        f"CPU: {info['cpu']} | cores: {info['cores']} | torch {info['torch']} | "
        f"threads: {args.threads} | load avg: {info['load_avg_1min']} | rounds: {args.rounds}"
    )
    print("ours/ref: median per-round ratio (goal <= 1.05); ref/depl: deployed speedup.")
    with_ref, why = references_available()
    if not with_ref:
        print(f"torchvision/timm not importable ({why}): reference columns skipped.")
    print()
    print(HEADER)
    print("-" * len(HEADER))
    rows = run(args)
    if args.out:
        out = pathlib.Path(args.out)
        payload = {"machine": info, "args": {k: v for k, v in vars(args).items()}, "rows": rows}
        out.with_suffix(".json").write_text(json.dumps(payload, indent=2))
        out.with_suffix(".md").write_text(markdown(info, args, rows))
        print(f"\nwrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
