#!/usr/bin/python3
"""PyTorch's QAT overhead, for bench/qat_overhead.sh: time of a training step (batch 64,
Adam, random inputs) of the models of torch_ref.py in float and with fake quantization,
float and QAT steps alternating, median of the per-pair ratios QAT / float.

Two QAT flavours:
  fq  a plain fake-quant reference: every Conv2d/Linear fake-quantizes its weight per output
      channel (torch.fake_quantize_per_channel_affine) and its input per tensor
      (torch.fake_quantize_per_tensor_affine) with fixed scales from one calibration batch
      (abs max; unsigned when the input was never negative) -- what tinyqat does;
  ao  the torch.ao eager QAT flow: prepare_qat with the default QAT qconfig of the qnnpack
      engine (int8; for w4a4 the same observers with 4-bit ranges), observers running.

Usage: torch_qat.py MODEL RECIPE THREADS [PAIRS]
prints: MODEL RECIPE float_ms fq_ms fq_ratio ao_ms ao_ratio fq_min_ratio ao_min_ratio
(ms are medians, ratios the median of per-pair ratios; the min ratios compare the fastest
steps, the least disturbed estimate on a loaded machine)
Run with OPENBLAS_NUM_THREADS=1 (torch's fastest setting here: one pool)."""
import copy
import os
import statistics
import sys
import time
import types

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.ao.quantization as tq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref  # noqa: E402

BITS = {"int8": (8, 8), "w4a4": (4, 4)}  # (weight bits, activation bits)


def fq_forward(self, x):
    if self.fq_on:
        x = torch.fake_quantize_per_tensor_affine(x, self.a_scale, 0, self.a_lo, self.a_hi)
        w = torch.fake_quantize_per_channel_affine(self.weight, self.w_scale, self.w_zero, 0,
                                                   self.w_lo, self.w_hi)
    else:
        w = self.weight
    if isinstance(self, nn.Linear):
        return F.linear(x, w, self.bias)
    return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


def attach_fake_quant(model, x, wbits, abits):
    """Patches every Conv2d/Linear; scales fixed from the weights and from one batch."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    seen = {}
    hooks = [m.register_forward_pre_hook(
        lambda m, inp: seen.__setitem__(m, (inp[0].abs().max().item(), inp[0].min().item())))
        for m in layers]
    with torch.no_grad():
        model.eval()
        model(x)
        model.train()
    for h in hooks:
        h.remove()
    wq = 2 ** (wbits - 1) - 1
    for m in layers:
        amax, lo = seen[m]
        unsigned = lo >= 0.0
        aq = 2 ** abits - 1 if unsigned else 2 ** (abits - 1) - 1
        m.a_scale = max(amax, 1e-12) / aq
        m.a_lo, m.a_hi = (0, aq) if unsigned else (-aq - 1, aq)
        w_amax = m.weight.detach().abs().flatten(1).amax(1).clamp_min(1e-12)
        m.w_scale = w_amax / wq
        m.w_zero = torch.zeros(m.weight.shape[0], dtype=torch.int32)
        m.w_lo, m.w_hi = -wq - 1, wq
        m.fq_on = False
        m.forward = types.MethodType(fq_forward, m)
    return layers


def ao_qconfig(wbits, abits):
    if (wbits, abits) == (8, 8):
        return tq.get_default_qat_qconfig("qnnpack")
    act = tq.FakeQuantize.with_args(observer=tq.MovingAverageMinMaxObserver,
                                    quant_min=0, quant_max=2 ** abits - 1, dtype=torch.quint8)
    wt = tq.FakeQuantize.with_args(observer=tq.MovingAveragePerChannelMinMaxObserver,
                                   quant_min=-2 ** (wbits - 1), quant_max=2 ** (wbits - 1) - 1,
                                   dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    return tq.QConfig(activation=act, weight=wt)


def make_step(model, x, y):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def timed(step, before=None):
    if before:
        before()
    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


def main():
    name, recipe, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    pairs = int(sys.argv[4]) if len(sys.argv) > 4 else 21
    wbits, abits = BITS[recipe]
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    c, h, w = torch_ref.shape_of(name)
    build = {"mlp": torch_ref.mlp, "lenet5": torch_ref.lenet5, "resnet20": torch_ref.resnet20}
    model = build[name](c, h, w, 10)
    x, y = torch.randn(64, c, h, w), torch.randint(0, 10, (64,))

    torch.backends.quantized.engine = "qnnpack"
    ao_model = nn.Sequential(tq.QuantStub(), copy.deepcopy(model), tq.DeQuantStub())
    ao_model.qconfig = ao_qconfig(wbits, abits)
    ao_model.train()
    tq.prepare_qat(ao_model, inplace=True)

    layers = attach_fake_quant(model, x, wbits, abits)
    model.train()

    def fq(on):
        def set_state():
            for m in layers:
                m.fq_on = on
        return set_state

    step, ao_step = make_step(model, x, y), make_step(ao_model, x, y)
    timed(step, fq(False)), timed(step, fq(True)), timed(ao_step)  # warm-up
    tf, tfq, tao, rfq, rao = [], [], [], [], []
    for i in range(pairs):
        # float, fq and ao steps in rotating order: adjacent steps see nearly the same load
        runs = [("f", step, fq(False)), ("q", step, fq(True)), ("a", ao_step, None)]
        k = i % 3
        got = {tag: timed(s, b) for tag, s, b in runs[k:] + runs[:k]}
        tf.append(got["f"]), tfq.append(got["q"]), tao.append(got["a"])
        rfq.append(got["q"] / got["f"]), rao.append(got["a"] / got["f"])
    med = statistics.median
    print(f"{name} {recipe} {1e3 * med(tf):.2f} {1e3 * med(tfq):.2f} {med(rfq):.3f} "
          f"{1e3 * med(tao):.2f} {med(rao):.3f} {min(tfq) / min(tf):.3f} {min(tao) / min(tf):.3f}")


if __name__ == "__main__":
    main()
