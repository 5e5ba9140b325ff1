#!/usr/bin/python3
"""PyTorch reference for bench/speed.sh: training (batch 64) and inference (batch 256)
images/s of the zoo models, on random inputs, with a given thread count.

Usage: torch_ref.py MODEL THREADS [SECONDS]   prints: MODEL THREADS train_ips infer_ips
Run with OPENBLAS_NUM_THREADS=1 (torch's fastest setting here: one pool)."""
import sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp(c, h, w, k):
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 256), nn.ReLU(),
                         nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, k))


def lenet5(c, h, w, k):
    s = ((h // 2) - 4) // 2
    return nn.Sequential(nn.Conv2d(c, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(16 * s * s, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, k))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


def resnet20(c, h, w, k):
    layers = [nn.Conv2d(c, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(Block(cin, cout, stride if i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, k)]
    return nn.Sequential(*layers)


def shape_of(name):
    return (3, 32, 32) if name == "resnet20" else (1, 28, 28)


def rate(fn, batch, seconds, clock=time.perf_counter):
    """Images per second of `clock` (the wall clock, or time.process_time for CPU time)."""
    fn()  # two warm-up calls, as bench_speed does
    fn()
    n, t0, c0 = 0, time.perf_counter(), clock()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += batch
    return n / (clock() - c0)


def main():
    name, threads = sys.argv[1], int(sys.argv[2])
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    c, h, w = shape_of(name)
    model = {"mlp": mlp, "lenet5": lenet5, "resnet20": resnet20}[name](c, h, w, 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.randn(64, c, h, w), torch.randint(0, 10, (64,))
    xi = torch.randn(256, c, h, w)

    def train_step():
        opt.zero_grad()
        F.cross_entropy(model(xt), yt).backward()
        opt.step()

    model.train()
    tr = rate(train_step, 64, seconds)
    model.eval()
    with torch.no_grad():
        inf = rate(lambda: model(xi), 256, seconds)
    print(f"{name} {threads} {tr:.0f} {inf:.0f}")


if __name__ == "__main__":
    main()
