"""Neural architecture search on a laptop: a MnasNet-style space, a latency model, two searches.

- ``effnb.nas.space``: ``SearchSpace`` (per-stage kernel, expansion, SE, depth over a small
  MobileNetV2-like skeleton) and ``Architecture``;
- ``effnb.nas.latency``: a per-block latency table measured on this machine, calibrated and
  validated against whole networks;
- ``effnb.nas.search``: the MnasNet reward, random search and regularized evolution over any
  ``concurrent.futures.Executor``; a failed candidate is a ``Failure`` in the result (the
  others go on), and latency is only measured while no evaluation is running.

Notebook 06 (notebooks/06_nas.ipynb) walks through all three.
"""

from effnb.nas.latency import (
    LatencyPredictor,
    LatencyTable,
    ValidationReport,
    build_latency_table,
    measure_networks,
    repeatability,
    spearman,
    validate,
)
from effnb.nas.search import (
    HARD,
    SOFT,
    Candidate,
    DigitsEvaluator,
    Evaluation,
    Failure,
    SearchError,
    SearchResult,
    SearchWarning,
    SynchronousExecutor,
    mnasnet_reward,
    pareto_front,
    reward,
    search,
)
from effnb.nas.space import Architecture, BlockSpec, SearchSpace, StageChoice, StageSkeleton

__all__ = [
    "HARD",
    "SOFT",
    "Architecture",
    "BlockSpec",
    "Candidate",
    "DigitsEvaluator",
    "Evaluation",
    "Failure",
    "LatencyPredictor",
    "LatencyTable",
    "SearchError",
    "SearchResult",
    "SearchSpace",
    "SearchWarning",
    "StageChoice",
    "StageSkeleton",
    "SynchronousExecutor",
    "ValidationReport",
    "build_latency_table",
    "measure_networks",
    "mnasnet_reward",
    "pareto_front",
    "repeatability",
    "reward",
    "search",
    "spearman",
    "validate",
]
