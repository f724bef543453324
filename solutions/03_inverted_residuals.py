# Solutions and plausible wrong answers for notebooks/03_inverted_residuals.ipynb.
# Each block replaces the exercise cell; "wrong: <phrase>" names what the check must say.
# ruff: noqa: F811, F821

# %% 3.1 solution
def make_divisible(value, divisor=8, min_value=None):
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:  # never more than 10% below the value
        new_value += divisor
    return new_value


# %% 3.1 wrong: rounded up (ceil)
def make_divisible(value, divisor=8, min_value=None):
    if min_value is None:
        min_value = divisor
    return max(min_value, math.ceil(value / divisor) * divisor)


# %% 3.1 wrong: forgot the 10% rule
def make_divisible(value, divisor=8, min_value=None):
    if min_value is None:
        min_value = divisor
    return max(min_value, int(value + divisor / 2) // divisor * divisor)


# %% 3.1 wrong: truncated to an integer
def make_divisible(value, divisor=8, min_value=None):
    return max(8, int(value))


# %% 3.2 solution
class MyMBConv(nn.Module):
    def __init__(
        self,
        in_channels,
        out_channels,
        expand_ratio,
        kernel_size=3,
        stride=1,
        se_channels=0,
        drop_path=0.0,
    ):
        super().__init__()
        hidden = in_channels * expand_ratio
        if expand_ratio != 1:
            self.conv_pw = ConvNormAct(in_channels, hidden, 1, act_layer=nn.ReLU6)
        else:
            self.conv_pw = nn.Identity()
        self.conv_dw = ConvNormAct(
            hidden, hidden, kernel_size, stride, groups=hidden, act_layer=nn.ReLU6
        )
        self.se = SqueezeExcite(hidden, se_channels) if se_channels else nn.Identity()
        self.conv_pwl = ConvNormAct(hidden, out_channels, 1, act_layer=None)
        self.has_skip = stride == 1 and in_channels == out_channels
        self.p = drop_path

    def forward(self, x):
        out = self.conv_pwl(self.se(self.conv_dw(self.conv_pw(x))))
        if not self.has_skip:
            return out
        if self.training and self.p > 0:
            keep = torch.rand(x.shape[0], 1, 1, 1) >= self.p  # (B, 1, 1, 1): one draw per sample
            out = out * keep / (1 - self.p)
        return x + out


# %% 3.2 wrong: ReLU on the projection
class MyMBConv(nn.Module):
    def __init__(
        self,
        in_channels,
        out_channels,
        expand_ratio,
        kernel_size=3,
        stride=1,
        se_channels=0,
        drop_path=0.0,
    ):
        super().__init__()
        hidden = in_channels * expand_ratio
        if expand_ratio != 1:
            self.conv_pw = ConvNormAct(in_channels, hidden, 1, act_layer=nn.ReLU6)
        else:
            self.conv_pw = nn.Identity()
        self.conv_dw = ConvNormAct(
            hidden, hidden, kernel_size, stride, groups=hidden, act_layer=nn.ReLU6
        )
        self.se = SqueezeExcite(hidden, se_channels) if se_channels else nn.Identity()
        self.conv_pwl = ConvNormAct(hidden, out_channels, 1, act_layer=nn.ReLU6)
        self.has_skip = stride == 1 and in_channels == out_channels
        self.p = drop_path

    def forward(self, x):
        out = self.conv_pwl(self.se(self.conv_dw(self.conv_pw(x))))
        if not self.has_skip:
            return out
        if self.training and self.p > 0:
            keep = torch.rand(x.shape[0], 1, 1, 1) >= self.p
            out = out * keep / (1 - self.p)
        return x + out


# %% 3.2 wrong: shapes differ
class MyMBConv(nn.Module):
    def __init__(
        self,
        in_channels,
        out_channels,
        expand_ratio,
        kernel_size=3,
        stride=1,
        se_channels=0,
        drop_path=0.0,
    ):
        super().__init__()
        hidden = in_channels * expand_ratio
        if expand_ratio != 1:
            self.conv_pw = ConvNormAct(in_channels, hidden, 1, act_layer=nn.ReLU6)
        else:
            self.conv_pw = nn.Identity()
        self.conv_dw = ConvNormAct(
            hidden, hidden, kernel_size, stride, groups=hidden, act_layer=nn.ReLU6
        )
        self.se = SqueezeExcite(hidden, se_channels) if se_channels else nn.Identity()
        self.conv_pwl = ConvNormAct(hidden, out_channels, 1, act_layer=None)
        self.has_skip = in_channels == out_channels  # forgets the stride
        self.p = drop_path

    def forward(self, x):
        out = self.conv_pwl(self.se(self.conv_dw(self.conv_pw(x))))
        if not self.has_skip:
            return out
        if self.training and self.p > 0:
            keep = torch.rand(x.shape[0], 1, 1, 1) >= self.p
            out = out * keep / (1 - self.p)
        return x + out


# %% 3.2 wrong: the skip is missing
class MyMBConv(nn.Module):
    def __init__(
        self,
        in_channels,
        out_channels,
        expand_ratio,
        kernel_size=3,
        stride=1,
        se_channels=0,
        drop_path=0.0,
    ):
        super().__init__()
        hidden = in_channels * expand_ratio
        if expand_ratio != 1:
            self.conv_pw = ConvNormAct(in_channels, hidden, 1, act_layer=nn.ReLU6)
        else:
            self.conv_pw = nn.Identity()
        self.conv_dw = ConvNormAct(
            hidden, hidden, kernel_size, stride, groups=hidden, act_layer=nn.ReLU6
        )
        self.se = SqueezeExcite(hidden, se_channels) if se_channels else nn.Identity()
        self.conv_pwl = ConvNormAct(hidden, out_channels, 1, act_layer=None)
        self.has_skip = False  # a block that never adds its input
        self.p = drop_path

    def forward(self, x):
        out = self.conv_pwl(self.se(self.conv_dw(self.conv_pw(x))))
        if not self.has_skip:
            return out
        if self.training and self.p > 0:
            keep = torch.rand(x.shape[0], 1, 1, 1) >= self.p
            out = out * keep / (1 - self.p)
        return x + out


# %% 3.2 wrong: not rescaled
class MyMBConv(nn.Module):
    def __init__(
        self,
        in_channels,
        out_channels,
        expand_ratio,
        kernel_size=3,
        stride=1,
        se_channels=0,
        drop_path=0.0,
    ):
        super().__init__()
        hidden = in_channels * expand_ratio
        if expand_ratio != 1:
            self.conv_pw = ConvNormAct(in_channels, hidden, 1, act_layer=nn.ReLU6)
        else:
            self.conv_pw = nn.Identity()
        self.conv_dw = ConvNormAct(
            hidden, hidden, kernel_size, stride, groups=hidden, act_layer=nn.ReLU6
        )
        self.se = SqueezeExcite(hidden, se_channels) if se_channels else nn.Identity()
        self.conv_pwl = ConvNormAct(hidden, out_channels, 1, act_layer=None)
        self.has_skip = stride == 1 and in_channels == out_channels
        self.p = drop_path

    def forward(self, x):
        out = self.conv_pwl(self.se(self.conv_dw(self.conv_pw(x))))
        if not self.has_skip:
            return out
        if self.training and self.p > 0:
            out = out * (torch.rand(x.shape[0], 1, 1, 1) >= self.p)
        return x + out
