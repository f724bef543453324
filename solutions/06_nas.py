# Solutions and plausible wrong answers for notebooks/06_nas.ipynb.
# Each block replaces the exercise cell; "wrong: <phrase>" names what the check must say.
# ruff: noqa: F811, F821


# %% 6.1 solution
def my_regularized_evolution(sample, mutate, evaluate, budget, population_size, sample_size, rng):
    """Return the history: one (architecture, score) pair per evaluation, in order."""
    history, population = [], deque()
    while len(history) < min(population_size, budget):
        arch = sample()
        history.append((arch, evaluate(arch)))
        population.append(history[-1])
    while len(history) < budget:
        picks = rng.choice(len(population), size=sample_size, replace=False)
        parent = max((population[i] for i in picks), key=lambda member: member[1])
        child = mutate(parent[0])
        history.append((child, evaluate(child)))
        population.append(history[-1])
        population.popleft()
    return history


# %% 6.1 wrong: removing the worst
def my_regularized_evolution(sample, mutate, evaluate, budget, population_size, sample_size, rng):
    """Return the history: one (architecture, score) pair per evaluation, in order."""
    history, population = [], []
    while len(history) < min(population_size, budget):
        arch = sample()
        history.append((arch, evaluate(arch)))
        population.append(history[-1])
    while len(history) < budget:
        picks = rng.choice(len(population), size=sample_size, replace=False)
        parent = max((population[i] for i in picks), key=lambda member: member[1])
        child = mutate(parent[0])
        history.append((child, evaluate(child)))
        population.append(history[-1])
        population.remove(min(population, key=lambda member: member[1]))
    return history


# %% 6.1 wrong: random member
def my_regularized_evolution(sample, mutate, evaluate, budget, population_size, sample_size, rng):
    """Return the history: one (architecture, score) pair per evaluation, in order."""
    history, population = [], deque()
    while len(history) < min(population_size, budget):
        arch = sample()
        history.append((arch, evaluate(arch)))
        population.append(history[-1])
    while len(history) < budget:
        parent = population[rng.integers(len(population))]
        child = mutate(parent[0])
        history.append((child, evaluate(child)))
        population.append(history[-1])
        population.popleft()
    return history


# %% 6.2 solution
def my_reward(accuracy, latency, target, constraint="soft"):
    """MnasNet's reward; constraint is "soft" (w = -0.07) or "hard" (w = -1 above T)."""
    alpha, beta = {"soft": (-0.07, -0.07), "hard": (0.0, -1.0)}[constraint]
    w = alpha if latency <= target else beta
    return accuracy * (latency / target) ** w


# %% 6.2 wrong: T / LAT
def my_reward(accuracy, latency, target, constraint="soft"):
    """MnasNet's reward; constraint is "soft" (w = -0.07) or "hard" (w = -1 above T)."""
    alpha, beta = {"soft": (-0.07, -0.07), "hard": (0.0, -1.0)}[constraint]
    w = alpha if latency <= target else beta
    return accuracy * (target / latency) ** w


# %% 6.2 wrong: below T
def my_reward(accuracy, latency, target, constraint="soft"):
    """MnasNet's reward; constraint is "soft" (w = -0.07) or "hard" (w = -1 above T)."""
    w = -0.07 if constraint == "soft" else -1.0
    return accuracy * (latency / target) ** w
