"""Small PyTorch models with the code patterns of published genomics models, for tests without downloads.

Each reproduces what makes its family hard to split, not its size: bpnet-lite's BPNet (optional ``X_ctl``,
trimming by ``X.shape[2]``, a dilated residual stack, a ``(profile, counts)`` tuple), its ``ControlWrapper``
(forwards ``**kwargs``, builds zero controls from the batch size) and ``ChromBPNet`` (bias + accessibility);
chrombpnet-pytorch's ``if x.shape[1] != 4`` layout check; Enformer/Borzoi ports (channels-last input, einops
when installed, a dict of per-species profiles); Sei (a B-spline basis built on the first forward); Selene's
``NonStrandSpecific`` and a Lightning module (the prefixes their checkpoints carry).
"""

from __future__ import annotations

import torch
from torch import nn

try:
    from einops import rearrange
except ImportError:  # the same permutation without einops
    rearrange = None


class BPNet(nn.Module):
    """bpnet-lite's BPNet forward, line for line (smaller defaults)."""

    def __init__(self, n_filters=8, n_layers=3, n_outputs=2, n_control_tracks=0, trimming=None):
        super().__init__()
        self.n_filters, self.n_layers, self.n_outputs = n_filters, n_layers, n_outputs
        self.n_control_tracks = n_control_tracks
        self.trimming = trimming if trimming is not None else 47 + sum(2 ** i for i in range(1, n_layers + 1))
        self.iconv = nn.Conv1d(4, n_filters, kernel_size=21, padding=10)
        self.irelu = nn.ReLU()
        self.rconvs = nn.ModuleList([nn.Conv1d(n_filters, n_filters, kernel_size=3, padding=2 ** i, dilation=2 ** i)
                                     for i in range(1, n_layers + 1)])
        self.rrelus = nn.ModuleList([nn.ReLU() for _ in range(n_layers)])
        self.fconv = nn.Conv1d(n_filters + n_control_tracks, n_outputs, kernel_size=75, padding=37)
        self.linear = nn.Linear(n_filters + (1 if n_control_tracks > 0 else 0), 1)

    def forward(self, X, X_ctl=None):
        start, end = self.trimming, X.shape[2] - self.trimming
        X = self.irelu(self.iconv(X))
        for i in range(self.n_layers):
            X_conv = self.rrelus[i](self.rconvs[i](X))
            X = torch.add(X, X_conv)
        if X_ctl is None:
            X_w_ctl = X
        else:
            X_w_ctl = torch.cat([X, X_ctl], dim=1)
        y_profile = self.fconv(X_w_ctl)[:, :, start:end]
        X = torch.mean(X[:, :, max(start - 37, 0):end + 37], dim=2)
        if X_ctl is not None:
            X_ctl = torch.sum(X_ctl[:, :, max(start - 37, 0):end + 37], dim=(1, 2))
            X_ctl = X_ctl.unsqueeze(-1)
            X = torch.cat([X, torch.log(X_ctl + 1)], dim=-1)
        y_counts = self.linear(X).reshape(X.shape[0], 1)
        return y_profile, y_counts


class ControlWrapper(nn.Module):
    """bpnet-lite's ControlWrapper: zero control tracks when none are given, ``**kwargs`` passed on."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, X, X_ctl=None, **kwargs):
        if X_ctl is not None:
            return self.model(X, X_ctl, **kwargs)
        if self.model.n_control_tracks == 0:
            return self.model(X, **kwargs)
        X_ctl = torch.zeros(X.shape[0], self.model.n_control_tracks, X.shape[-1], dtype=X.dtype, device=X.device)
        return self.model(X, X_ctl, **kwargs)


class Exp(nn.Module):
    def forward(self, X):
        return torch.exp(X)


class Log(nn.Module):
    def forward(self, X):
        return torch.log(X)


class ChromBPNet(nn.Module):
    """bpnet-lite's ChromBPNet: a frozen bias model plus an accessibility model, counts added in log space."""

    def __init__(self, bias, accessibility):
        super().__init__()
        for p in bias.parameters():
            p.requires_grad = False
        self.bias, self.accessibility = bias, accessibility
        self.n_control_tracks = accessibility.n_control_tracks
        self._log, self._exp1, self._exp2 = Log(), Exp(), Exp()

    def forward(self, X, X_ctl=None):
        acc_profile, acc_counts = self.accessibility(X)
        bias_profile, bias_counts = self.bias(X)
        n0, n1 = acc_profile.shape[-1], bias_profile.shape[-1]
        w = (n1 - n0) // 2
        y_profile = acc_profile + bias_profile[:, :, w:n1 - w]
        y_counts = self._log(self._exp1(acc_counts) + self._exp2(bias_counts))
        return y_profile, y_counts


def bpnet(seed=0, **kwargs):
    torch.manual_seed(seed)
    return BPNet(**kwargs).eval()


def chrombpnet(seed=0):
    torch.manual_seed(seed)
    return ChromBPNet(BPNet(n_filters=4, n_layers=2, n_outputs=1), BPNet(n_outputs=1)).eval()


class ChromBPNetTorch(nn.Module):
    """chrombpnet-pytorch's pattern: transposes ``(N, L, 4)`` itself, residual convolutions cropped to match."""

    def __init__(self, filters=8, layers=3, out_length=20):
        super().__init__()
        self.out_length = out_length
        self.first = nn.Conv1d(4, filters, 11)
        self.convs = nn.ModuleList([nn.Conv1d(filters, filters, 3, dilation=2 ** (i + 1)) for i in range(layers)])
        self.profile = nn.Conv1d(filters, 1, 15)
        self.counts = nn.Linear(filters, 1)

    def forward(self, x):
        if x.shape[1] != 4:
            x = x.permute(0, 2, 1)
        x = torch.relu(self.first(x))
        for conv in self.convs:
            conv_x = torch.relu(conv(x))
            crop = (x.shape[2] - conv_x.shape[2]) // 2
            x = conv_x + x[:, :, crop:x.shape[2] - crop]
        crop = (x.shape[2] - 14 - self.out_length) // 2
        profile = self.profile(x)[:, 0, crop:crop + self.out_length]
        counts = self.counts(x.mean(dim=2))
        return profile, counts


def chrombpnet_torch(seed=0):
    torch.manual_seed(seed)
    return ChromBPNetTorch().eval()


def _to_channels_first(x):
    return rearrange(x, "b n d -> b d n") if rearrange is not None else x.permute(0, 2, 1)


class Residual(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


class EnformerLike(nn.Module):
    """Enformer/Borzoi ports' pattern: ``(N, L, 4)`` input, einops rearranges, residual blocks, a target crop,
    and a dict of per-species profiles ``(N, T, S)``."""

    def __init__(self, dim=8, target_length=6):
        super().__init__()
        self.target_length = target_length
        self.stem = nn.Conv1d(4, dim, 5, padding=2)
        self.stem_block = Residual(nn.Sequential(nn.BatchNorm1d(dim), nn.GELU(), nn.Conv1d(dim, dim, 1)))
        self.pool = nn.MaxPool1d(2)
        self.tower = nn.Sequential(nn.Conv1d(dim, dim, 3, padding=1), nn.GELU(), nn.MaxPool1d(2))
        self.transformer = Residual(nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim)))
        self.final = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU())
        self.heads = nn.ModuleDict({"human": nn.Sequential(nn.Linear(2 * dim, 5), nn.Softplus()),
                                    "mouse": nn.Sequential(nn.Linear(2 * dim, 3), nn.Softplus())})

    def forward(self, x, head=None, return_embeddings=False, **kwargs):
        x = _to_channels_first(x)
        x = self.pool(self.stem_block(self.stem(x)))
        x = self.tower(x)
        x = x.permute(0, 2, 1) if rearrange is None else rearrange(x, "b d n -> b n d")
        x = self.transformer(x)
        crop = (x.shape[-2] - self.target_length) // 2
        x = x[:, crop:crop + self.target_length]
        embeddings = self.final(x)
        if return_embeddings:
            return embeddings
        out = {name: module(embeddings) for name, module in self.heads.items()}
        return out[head] if head is not None else out


def enformer_like(seed=0):
    torch.manual_seed(seed)
    return EnformerLike().eval()


class BSplineTransformation(nn.Module):
    """Sei's spline basis: built from the input's length on the first forward, then kept."""

    def __init__(self, degrees_of_freedom):
        super().__init__()
        self._spline_tr = None
        self._df = degrees_of_freedom

    def forward(self, input):
        if self._spline_tr is None:
            spatial_dim = input.size()[-1]
            grid = torch.linspace(0, 1, spatial_dim)[:, None]
            knots = torch.linspace(0, 1, self._df)[None, :]
            self._spline_tr = torch.relu(1 - (grid - knots).abs() * (self._df - 1))
            if input.is_cuda:
                self._spline_tr = self._spline_tr.cuda()
        return torch.matmul(input, self._spline_tr)


class SeiLike(nn.Module):
    """Sei's pattern: residual sums of conv blocks, then the lazily built spline basis and a classifier."""

    def __init__(self, channels=8, df=4, length=40, outputs=3):
        super().__init__()
        self._df, self.channels = df, channels
        self.lconv1 = nn.Sequential(nn.Conv1d(4, channels, 9, padding=4), nn.Conv1d(channels, channels, 9, padding=4))
        self.conv1 = nn.Sequential(nn.Conv1d(channels, channels, 9, padding=4), nn.ReLU())
        self.lconv2 = nn.Sequential(nn.MaxPool1d(2), nn.Conv1d(channels, channels, 9, padding=4))
        self.conv2 = nn.Sequential(nn.Conv1d(channels, channels, 9, padding=4), nn.ReLU())
        self.spline_tr = nn.Sequential(nn.Dropout(0.5), BSplineTransformation(df))
        self.classifier = nn.Sequential(nn.Linear(channels * df, outputs), nn.Sigmoid())

    def forward(self, x):
        lout1 = self.lconv1(x)
        out1 = self.conv1(lout1)
        lout2 = self.lconv2(out1 + lout1)
        out2 = self.conv2(lout2)
        out = self.spline_tr(out2 + lout2)
        reshape_out = out.view(out.size(0), self.channels * self._df)
        return self.classifier(reshape_out)


def sei_like(seed=0):
    torch.manual_seed(seed)
    return SeiLike().eval()


class DeeperDeepSEA(nn.Module):
    """Selene's DeeperDeepSEA layout: ``conv_net`` and ``classifier`` Sequentials, flattened by ``view``."""

    def __init__(self, length=40, outputs=3):
        super().__init__()
        self.conv_net = nn.Sequential(nn.Conv1d(4, 6, 5), nn.ReLU(), nn.MaxPool1d(2), nn.Conv1d(6, 8, 5), nn.ReLU())
        self.width = ((length - 4) // 2 - 4)
        self.classifier = nn.Sequential(nn.Linear(8 * self.width, outputs), nn.Sigmoid())

    def forward(self, x):
        out = self.conv_net(x)
        return self.classifier(out.view(out.size(0), 8 * self.width))


def deeper_deepsea(seed=0):
    torch.manual_seed(seed)
    return DeeperDeepSEA().eval()


class NonStrandSpecific(nn.Module):
    """Selene's wrapper: the mean of the sequence's and its reverse complement's predictions."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input):
        reverse_input = torch.flip(torch.flip(input, [1]), [2])
        return (self.model.forward(input) + self.model.forward(reverse_input)) / 2


class LitModule(nn.Module):
    """A LightningModule's shape (without Lightning): the network as ``self.model``."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.loss = nn.BCELoss()

    def forward(self, x):
        return self.model(x)
