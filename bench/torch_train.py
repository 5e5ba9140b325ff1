#!/usr/bin/python3
"""PyTorch counterpart of `tinyqat train --model lenet5 --data fashion-mnist --epochs 1`, for
comparing peak memory (run both under /usr/bin/time -v): LeNet-5, Adam (lr 1e-3), batch 64,
shuffled, inputs normalised with the training set's mean and standard deviation, one epoch,
then the test accuracy. The IDX files are read with gzip and numpy.

Usage: torch_train.py [DIR] [THREADS]   (DIR defaults to the CLI's fashion-mnist folder,
Debian's dataset-fashion-mnist; run with OPENBLAS_NUM_THREADS=1)"""
import gzip, os, struct, sys, time
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ref import lenet5  # the same model as the speed reference


def idx(path, magic):
    with gzip.open(path, "rb") as f:
        data = f.read()
    got, = struct.unpack(">I", data[:4])
    if got != magic:
        sys.exit(f"torch_train: {path}: bad magic 0x{got:08x} (expected 0x{magic:08x})")
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(folder, split):
    x = idx(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"), 0x803)
    y = idx(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"), 0x801)
    return torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1), torch.from_numpy(y.astype(np.int64))


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    torch.manual_seed(1)
    xtr, ytr = load(folder, "train")
    xte, yte = load(folder, "t10k")
    mean, std = xtr.mean(), xtr.std()
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    model = lenet5(1, 28, 28, 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    model.train()
    order = torch.randperm(len(xtr))
    for i in range(0, len(order), 64):
        b = order[i:i + 64]
        opt.zero_grad()
        F.cross_entropy(model(xtr[b]), ytr[b]).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        correct = sum((model(xte[i:i + 256]).argmax(1) == yte[i:i + 256]).sum().item()
                      for i in range(0, len(xte), 256))
    print(f"lenet5 1 epoch: test accuracy {100.0 * correct / len(xte):.2f}% "
          f"in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
