# Solutions and plausible wrong answers for notebooks/05_compound_scaling.ipynb.
# Each block replaces the exercise cell; "wrong: <phrase>" names what the check must say.
# ruff: noqa: F811, F821

# %% 5.1 solution
def compound(phi, alpha=1.2, beta=1.1, gamma=1.15, base_resolution=224):
    return alpha**phi, beta**phi, base_resolution * gamma**phi


# %% 5.1 wrong: depth and width are swapped
def compound(phi, alpha=1.2, beta=1.1, gamma=1.15, base_resolution=224):
    return beta**phi, alpha**phi, base_resolution * gamma**phi


# %% 5.1 wrong: the squares belong to the MACs constraint
def compound(phi, alpha=1.2, beta=1.1, gamma=1.15, base_resolution=224):
    return alpha**phi, beta ** (2 * phi), base_resolution * gamma ** (2 * phi)


# %% 5.1 wrong: not pixels
def compound(phi, alpha=1.2, beta=1.1, gamma=1.15, base_resolution=224):
    return alpha**phi, beta**phi, gamma**phi


# %% 5.2 solution
def round_channels(c):
    new = max(8, int(c + 4) // 8 * 8)
    if new < 0.9 * c:
        new += 8
    return new


# %% 5.2 wrong: ceil rounding
def round_channels(c):
    return max(8, math.ceil(c / 8) * 8)


# %% 5.2 wrong: the 10% rule is missing
def round_channels(c):
    return max(8, int(c + 4) // 8 * 8)


# %% 5.2 wrong: Python's round()
def round_channels(c):
    new = max(8, round(c / 8) * 8)
    if new < 0.9 * c:
        new += 8
    return new


# %% 5.3 solution
def scale_depth(n, d):
    return math.ceil(n * d)


# %% 5.3 wrong: round() to the nearest
def scale_depth(n, d):
    return round(n * d)


# %% 5.3 wrong: int() truncates
def scale_depth(n, d):
    return int(n * d)
