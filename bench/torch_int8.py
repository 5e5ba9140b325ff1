#!/usr/bin/python3
"""PyTorch's int8 inference for bench/int_speed.sh: images/s at batch 256 of a zoo model
quantized by PyTorch's own eager-mode static quantization (conv-BN-ReLU fused, per-channel
int8 weights, per-tensor uint8 activations calibrated on random inputs), on its quantized
engine (oneDNN or QNNPACK, whichever is faster here: both are tried and the better printed;
Debian's python3-torch 1.13 has no FBGEMM).

Usage: torch_int8.py MODEL THREADS [SECONDS [cpu]]   prints: MODEL THREADS images_per_s engine
(cpu: images per second of the process's CPU time, for a machine other work keeps busy)
Run with OPENBLAS_NUM_THREADS=1 (torch's fastest setting here)."""
import sys, time
import torch
import torch.nn as nn
import torch.ao.quantization as tq

from torch_ref import lenet5, mlp, rate, shape_of


class QBlock(nn.Module):
    """ResNet basic block written for eager-mode quantization: the residual add and its ReLU
    go through FloatFunctional so that convert() makes them quantized ops."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))
        self.add_relu = nn.quantized.FloatFunctional()

    def forward(self, x):
        y = self.relu1(self.bn1(self.conv1(x)))
        return self.add_relu.add_relu(self.bn2(self.conv2(y)), self.shortcut(x))

    def fuse(self):
        tq.fuse_modules(self, [["conv1", "bn1", "relu1"], ["conv2", "bn2"]], inplace=True)
        if len(self.shortcut):
            tq.fuse_modules(self.shortcut, [["0", "1"]], inplace=True)


class Quantized(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.quant, self.body, self.dequant = tq.QuantStub(), body, tq.DeQuantStub()

    def forward(self, x):
        return self.dequant(self.body(self.quant(x)))


def resnet20(c, h, w, k):
    layers = [nn.Conv2d(c, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(QBlock(cin, cout, stride if i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, k)]
    return nn.Sequential(*layers)


def fuse(name, body):
    """Conv(-BN)(-ReLU) and Linear-ReLU pairs into single modules, as a user tuning for speed
    would."""
    mods = list(body.named_children())
    groups = []
    for i, (n, m) in enumerate(mods):
        nxt = [mods[j] for j in range(i + 1, min(i + 3, len(mods)))]
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            g = [n]
            for n2, m2 in nxt:
                if isinstance(m2, nn.BatchNorm2d) and len(g) == 1 and isinstance(m, nn.Conv2d):
                    g.append(n2)
                elif isinstance(m2, nn.ReLU):
                    g.append(n2)
                    break
                else:
                    break
            if len(g) > 1:
                groups.append(g)
        if isinstance(m, QBlock):
            m.fuse()
    if groups:
        tq.fuse_modules(body, groups, inplace=True)


def quantized_model(name, engine):
    torch.backends.quantized.engine = engine
    c, h, w = shape_of(name)
    body = {"mlp": mlp, "lenet5": lenet5, "resnet20": resnet20}[name](c, h, w, 10)
    body.eval()
    fuse(name, body)
    model = Quantized(body)
    model.qconfig = tq.get_default_qconfig(engine)
    tq.prepare(model, inplace=True)
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(64, c, h, w))
    tq.convert(model, inplace=True)
    return model, (c, h, w)


def main():
    name, threads = sys.argv[1], int(sys.argv[2])
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    # `cpu` after the seconds: images per second of the process's CPU time (a busy machine)
    clock = time.process_time if sys.argv[4:5] == ["cpu"] else time.perf_counter
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    best = (0.0, "none")
    for engine in ("onednn", "qnnpack"):
        if engine not in torch.backends.quantized.supported_engines:
            continue
        model, (c, h, w) = quantized_model(name, engine)
        x = torch.rand(256, c, h, w)
        with torch.no_grad():
            r = rate(lambda: model(x), 256, seconds, clock)
        best = max(best, (r, engine))
    print(f"{name} {threads} {best[0]:.0f} {best[1]}")


if __name__ == "__main__":
    main()
