# Solutions and plausible wrong answers for notebooks/02_squeeze_excitation.ipynb.
# Each block replaces the exercise cell; "wrong: <phrase>" names what the check must say.
# ruff: noqa: F811, F821

# %% 2.1 solution
class MySE(nn.Module):
    def __init__(self, channels, reduction):
        super().__init__()
        squeeze = channels // reduction
        if squeeze < 1:
            raise ValueError(f"{channels} // {reduction} = {squeeze}: the SE needs >= 1 unit")
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)  # (B, C, 1, 1)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))


# %% 2.1 wrong: max pooling
class MySE(nn.Module):
    def __init__(self, channels, reduction):
        super().__init__()
        squeeze = channels // reduction
        if squeeze < 1:
            raise ValueError(f"{channels} // {reduction} = {squeeze}: the SE needs >= 1 unit")
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x):
        s = x.amax((2, 3), keepdim=True)  # (B, C, 1, 1)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))


# %% 2.1 wrong: gating with ReLU
class MySE(nn.Module):
    def __init__(self, channels, reduction):
        super().__init__()
        squeeze = channels // reduction
        if squeeze < 1:
            raise ValueError(f"{channels} // {reduction} = {squeeze}: the SE needs >= 1 unit")
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)  # (B, C, 1, 1)
        return x * torch.relu(self.fc2(torch.relu(self.fc1(s))))


# %% 2.1 wrong: no sigmoid
class MySE(nn.Module):
    def __init__(self, channels, reduction):
        super().__init__()
        squeeze = channels // reduction
        if squeeze < 1:
            raise ValueError(f"{channels} // {reduction} = {squeeze}: the SE needs >= 1 unit")
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x):
        s = self.fc2(torch.relu(self.fc1(x.mean((2, 3)))))  # (B, C)
        return x * s[:, :, None, None]


# %% 2.1 wrong: C*r
class MySE(nn.Module):
    def __init__(self, channels, reduction):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels * reduction, 1)
        self.fc2 = nn.Conv2d(channels * reduction, channels, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)  # (B, C, 1, 1)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))


# %% 2.1 wrong: zero-width
class MySE(nn.Module):
    def __init__(self, channels, reduction):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x):
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3))))))  # (B, C)
        return x * s[:, :, None, None]


# %% 2.2 solution
def v3_se_params(table):
    total = 0
    for row in table:
        if row.se:
            squeeze = make_divisible(row.exp / 4, 8)
            total += 2 * row.exp * squeeze + squeeze + row.exp
    return total


# %% 2.2 wrong: not rounded
def v3_se_params(table):
    return sum(2 * r.exp * (r.exp // 4) + r.exp // 4 + r.exp for r in table if r.se)


# %% 2.2 wrong: biases
def v3_se_params(table):
    return sum(2 * r.exp * make_divisible(r.exp / 4, 8) for r in table if r.se)


# %% 2.2 wrong: rows without SE
def v3_se_params(table):
    total = 0
    for row in table:
        squeeze = make_divisible(row.exp / 4, 8)
        total += 2 * row.exp * squeeze + squeeze + row.exp
    return total


# %% 2.3 solution
answer = 2 * 672 * (112 // 4) + 112 // 4 + 672

# %% 2.3 wrong: expanded width
answer = 2 * 672 * (672 // 4) + 672 // 4 + 672

# %% 2.3 wrong: biases
answer = 2 * 672 * (112 // 4)
