"""Scaling a search out: Dask's executor for ``search``, and an Optuna study many workers share.

Two ways, for two situations:

- **Dask** (``dask_executor``): your own search loop (``effnb.nas.search``, random or
  regularized evolution) stays in this process; only the evaluations (trainings) go to a
  ``dask.distributed`` cluster through ``Client.get_executor()``, a
  ``concurrent.futures.Executor``. With no address it starts a ``LocalCluster`` of worker
  processes on 127.0.0.1 (no dashboard); with ``"tcp://host:8786"`` it uses the cluster a
  scheduler there runs. ``search(..., executor=...)`` is unchanged, and so is its result:
  the search draws every architecture from its own generator, so where a training runs does
  not change which architectures are tried.
- **Optuna** (``optuna_worker``, ``study_candidates``): no process owns the search; each
  worker asks a shared study (RDB storage: SQLite on one machine, PostgreSQL across machines)
  for the next architecture, trains it and tells the study two objectives, accuracy
  (maximised) and predicted latency (minimised), under NSGA-II (Deb et al. 2002). Workers
  can join and leave at any time; the study's Pareto front (``study.best_trials``) is the
  one ``effnb.nas.pareto_front`` gives on ``study_candidates``.

Latency is never measured by the workers: ``latency_fn`` is meant to be a
``LatencyPredictor`` (table lookups), because two trainings timing networks on the same cores
at once would each measure the other's load. Notebook 06 runs both.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import WorkerPlugin

from effnb._checks import check_int, check_seconds, check_seed
from effnb.nas.search import Candidate, Evaluation, mnasnet_reward
from effnb.nas.space import GENES, Architecture, SearchSpace

if TYPE_CHECKING:
    import optuna

__all__ = [
    "TorchThreads",
    "create_study",
    "dask_executor",
    "gene_choices",
    "load_study",
    "optuna_worker",
    "study_candidates",
    "suggest_architecture",
]

# GENES order (kernel, expansion, se_ratio, layers) -> the SearchSpace field holding its choices
_GENE_FIELDS = {
    "kernel": "kernels",
    "expansion": "expansions",
    "se_ratio": "se_ratios",
    "layers": "layers",
}


class TorchThreads(WorkerPlugin):
    """A Dask worker plugin: ``torch.set_num_threads(threads)`` in every worker, joiners too.

    One thread per worker process: the cluster already runs one process per core, so a second
    torch thread per process would only make two processes fight over each core (on a 2-core
    machine, 2 workers x 2 threads = 4 busy threads on 2 cores, each training slower and the
    timings of anything else on the machine disturbed).
    """

    name = "effnb-torch-threads"

    def __init__(self, threads: int = 1) -> None:
        self.threads = check_int("threads", threads)

    def setup(self, worker: Any) -> None:
        import torch

        torch.set_num_threads(self.threads)

    def teardown(self, worker: Any) -> None:  # the plugin interface; nothing to undo
        pass


@contextmanager
def dask_executor(
    address: str | None = None, n_workers: int = 2, timeout: float = 60.0
) -> Iterator[Executor]:
    """A ``dask.distributed`` executor for ``search(..., executor=...)``; closes everything on exit.

    ``address=None`` starts ``LocalCluster(n_workers, processes=True, threads_per_worker=1,
    host="127.0.0.1", dashboard_address=None)``: worker processes on the loopback interface
    only, no dashboard. ``address="tcp://host:8786"`` connects to a running scheduler instead
    (``n_workers`` is then the scheduler's business and ignored). Every worker gets one torch
    thread (``TorchThreads``). The local cluster logs errors only (``silence_logs=ERROR``): its
    INFO and WARNING lines (a worker slow to exit being killed at shutdown, say) would land on
    stderr of every notebook cell. ``timeout`` (seconds) bounds starting the cluster, connecting,
    waiting for the workers and closing client and cluster; a training itself is not bounded
    here. Yields ``client.get_executor(pure=False)``: every submit is a fresh evaluation.
    """
    from distributed import Client, LocalCluster

    if address is not None and not isinstance(address, str):
        raise TypeError(
            f"address must be a scheduler address such as 'tcp://host:8786' or None, got "
            f"{address!r} ({type(address).__name__})"
        )
    n_workers = check_int("n_workers", n_workers)
    timeout = check_seconds("timeout", timeout)
    with ExitStack() as stack:
        cluster = None
        if address is None:
            cluster = LocalCluster(
                n_workers=n_workers,
                processes=True,
                threads_per_worker=1,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,  # no INFO/WARNING chatter (e.g. shutdown) on stderr
                timeout=timeout,
            )
            stack.callback(cluster.close, timeout=timeout)
        client = Client(cluster if cluster is not None else address, timeout=timeout)
        stack.callback(client.close, timeout=timeout)
        client.register_plugin(TorchThreads(1))
        if cluster is not None:
            client.wait_for_workers(n_workers, timeout=timeout)
        yield client.get_executor(pure=False)


# --- Optuna ---------------------------------------------------------------------------------


def gene_choices(space: SearchSpace) -> list[tuple[str, int, int, tuple]]:
    """The searchable positions of ``space``'s code, in its order: (name, code index, stage, choices).

    A position is searchable when its gene has more than one choice; the name is
    ``s<stage>_<gene>`` (e.g. ``s0_kernel``). Genes with one choice keep index 0.
    """
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space must be a SearchSpace, got {type(space).__name__}")
    out = []
    for stage in range(space.num_stages):
        for j, gene in enumerate(GENES):
            choices = tuple(getattr(space, _GENE_FIELDS[gene]))
            if len(choices) > 1:
                out.append((f"s{stage}_{gene}", stage * len(GENES) + j, stage, choices))
    return out


def suggest_architecture(trial: optuna.trial.BaseTrial, space: SearchSpace) -> Architecture:
    """One ``trial.suggest_categorical`` per searchable position (``gene_choices``), in the
    space's order, over the gene's values; the architecture is ``space.decode`` of their indices."""
    code = [0] * len(space.cardinalities)
    for name, position, _, choices in gene_choices(space):
        value = trial.suggest_categorical(name, list(choices))
        code[position] = choices.index(value)
    return space.decode(code)


def create_study(storage: str, study_name: str) -> optuna.Study:
    """Create (or load, if it is there) the two-objective study the workers share.

    Directions: maximise accuracy, minimise predicted latency (ms). Call it once, in one
    process, before starting workers: two processes creating a fresh SQLite database at the
    same moment race on its tables ("table studies already exists").
    """
    import optuna

    _check_storage(storage, study_name)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        storage=storage,
        study_name=study_name,
        directions=["maximize", "minimize"],  # accuracy, predicted latency (ms)
        load_if_exists=True,
    )


def _check_storage(storage: str, study_name: str) -> None:
    if not isinstance(storage, str) or "://" not in storage:
        raise ValueError(f"storage must be an RDB URL such as 'sqlite:///nas.db', got {storage!r}")
    if not isinstance(study_name, str) or not study_name:
        raise ValueError(f"study_name must be a non-empty string, got {study_name!r}")


def optuna_worker(
    storage: str,
    study_name: str,
    space: SearchSpace,
    evaluator: Callable[[Architecture], Evaluation | float],
    latency_fn: Callable[[Architecture], float],
    n_trials: int,
    seed: int,
    population_size: int = 50,
) -> list[int]:
    """Run ``n_trials`` ask-and-tell trials against a shared study; return their trial numbers.

    Loads the study ``study_name`` from ``storage`` (an RDB URL: ``sqlite:///path.db``, or
    ``postgresql://...`` for workers on several machines; ``create_study`` makes it first):
    maximise accuracy, minimise ``latency_fn(arch)``, under
    ``NSGAIISampler(population_size=population_size, seed=seed)``. NSGA-II's first generation
    (``population_size`` trials, counted over all workers) is random; later ones breed from
    the study's non-dominated trials. Give every worker its own ``seed``: two workers with one
    seed would propose the same random architectures.
    Each trial: ``study.ask()``, ``suggest_architecture``, ``evaluator(arch)`` (an Evaluation or a
    bare accuracy), ``study.tell(trial, [accuracy, latency])``, with the code, params, MACs and
    training seconds kept as user attributes. A trial whose evaluation raises is told FAIL and
    the error propagates: the trials already told stay in the study.
    """
    import optuna

    _check_storage(storage, study_name)
    if not callable(evaluator) or not callable(latency_fn):
        raise TypeError("evaluator and latency_fn must be callables taking an Architecture")
    gene_choices(space)  # checks the space
    n_trials = check_int("n_trials", n_trials)
    seed = check_seed("seed", seed)
    population_size = check_int("population_size", population_size, minimum=2)
    create_study(storage, study_name)  # loads it when it is there (the usual case)
    study = optuna.load_study(
        study_name=study_name,
        storage=storage,
        sampler=optuna.samplers.NSGAIISampler(population_size=population_size, seed=seed),
    )
    numbers = []
    for _ in range(n_trials):
        trial = study.ask()
        try:
            arch = suggest_architecture(trial, space)
            value = evaluator(arch)
            ev = value if isinstance(value, Evaluation) else Evaluation(accuracy=float(value))
            latency = float(latency_fn(arch))
        except BaseException:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        for name, attr in (
            ("code", list(space.encode(arch))),
            ("params", ev.params),
            ("macs", ev.macs),
            ("seconds", ev.seconds),
            ("cached", ev.cached),
        ):
            trial.set_user_attr(name, attr)
        study.tell(trial, [ev.accuracy, latency])
        numbers.append(trial.number)
    return numbers


def load_study(storage: str, study_name: str) -> optuna.Study:
    """The study ``optuna_worker`` writes, loaded read-side (no sampler needed)."""
    import optuna

    _check_storage(storage, study_name)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=study_name, storage=storage)


def study_candidates(
    storage: str,
    study_name: str,
    space: SearchSpace,
    *,
    target: float | None = None,
    constraint: str = "soft",
) -> list[Candidate]:
    """The study's COMPLETE trials as effnb ``Candidate``s, in trial-number order.

    ``index`` is the trial number, ``accuracy`` and ``latency_ms`` the two objective values,
    the architecture is rebuilt from the trial's parameters (``suggest_architecture``'s names).
    ``reward`` is ``mnasnet_reward(accuracy, latency, target, constraint)`` when a target is
    given, else the accuracy (w = 0). ``pareto_front`` then applies unchanged.
    """
    import optuna

    study = load_study(storage, study_name)
    if target is not None and not (isinstance(target, int | float) and math.isfinite(target)):
        raise ValueError(f"target must be a finite latency in ms or None, got {target!r}")
    positions = gene_choices(space)
    out = []
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if trial.state != optuna.trial.TrialState.COMPLETE:
            continue
        code = [0] * len(space.cardinalities)
        for name, position, _, choices in positions:
            code[position] = choices.index(trial.params[name])
        arch = space.decode(code)
        assert trial.values is not None  # COMPLETE multi-objective trials have values
        accuracy, latency = (float(v) for v in trial.values)
        attrs = trial.user_attrs
        out.append(
            Candidate(
                index=trial.number,
                arch=arch,
                code=tuple(code),
                accuracy=accuracy,
                latency_ms=latency,
                reward=(
                    accuracy
                    if target is None
                    else mnasnet_reward(accuracy, latency, float(target), constraint)
                ),
                params=int(attrs.get("params", 0)),
                macs=int(attrs.get("macs", 0)),
                seconds=float(attrs.get("seconds", 0.0)),
                cached=bool(attrs.get("cached", False)),
            )
        )
    return out
