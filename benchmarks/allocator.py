"""The allocator table: default vs configured allocators, effnb and the reference, fresh processes.

Issue 15's goal table: for each model, ``--processes`` fresh processes per allocator
environment (``effnb.allocator``: glibc defaults, glibc configured, jemalloc and tcmalloc via
LD_PRELOAD where installed), ONE model per process as a user's script would have it, batch 1,
224 px. Each row: min / median / max of the per-process median times and the minor page faults
per call, then the verdict of each environment against the default (exact Mann-Whitney over
the process medians).

    PYTHONPATH=. ../refvenv/bin/python benchmarks/allocator.py
    .venv/bin/python benchmarks/allocator.py --no-reference      # effnb only (project venv)

The reference (torchvision) needs a venv with torchvision; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import platform
import sys

import torch

from effnb.allocator import ENVIRONMENTS, fresh_process_study
from effnb.bench import allocator_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2", help="an effnb model name")
    parser.add_argument("--reference", default="torchvision:mobilenet_v2")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--envs", default=",".join(ENVIRONMENTS))
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-run-time", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    envs = [e.strip() for e in args.envs.split(",") if e.strip()]
    print(
        f"torch {torch.__version__}, python {platform.python_version()}, {platform.machine()}, "
        f"{args.threads} threads, batch 1, 224 px; parent {allocator_summary()}"
    )
    models = {f"effnb {args.model}": args.model}
    if not args.no_reference:
        models[args.reference.replace(":", " ")] = args.reference
    for label, spec in models.items():
        study = fresh_process_study(
            {label: spec},
            envs,
            processes=args.processes,
            threads=args.threads,
            rounds=args.rounds,
            min_run_time=args.min_run_time,
            timeout=args.timeout,
            verbose=True,
        )
        print()
        print(study.table())
        for env in envs:
            if env != "default" and env not in study.skipped and "default" in envs:
                print("  " + study.verdict(label, env, "default"))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
