#!/usr/bin/python3
"""PyTorch side of bench/bench_stage2.sh (PyTorch 1.13 CPU, one thread).

Usage: /usr/bin/python3 bench/bench_stage2_torch.py DIR [IH_ROWS]

DIR holds the seeds' field codes and labels written by test/unit/bench_stage2
and the C timings.  Trains the same architecture (embeddings 16 per field,
MLP 128-64-32-1, ReLU, dropout 0.2, BCE, Adam lr 1e-3 wd 1e-6, batch 4,000,
a held-out tenth evaluated after every epoch) in float32 and reports seconds
per epoch; then times path_explain-style Integrated Hessians (double
backprop, 6 x 6 samples, float32) on IH_ROWS rows and scales linearly to the
rows the C run used.
"""
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_attribution_torch import integrated_hessians  # noqa: E402


class TorchDnn(torch.nn.Module):
    def __init__(self, ncodes, nfields, E=16):
        super().__init__()
        self.emb = torch.nn.Embedding(ncodes, E)
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(nfields * E, 128), torch.nn.ReLU(), torch.nn.Dropout(0.2),
            torch.nn.Linear(128, 64), torch.nn.ReLU(), torch.nn.Dropout(0.2),
            torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Dropout(0.2),
            torch.nn.Linear(32, 1))

    def embed(self, idx):
        return self.emb(idx).reshape(idx.shape[0], -1)

    def forward(self, x):
        return self.mlp(x)


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    d = sys.argv[1]
    ih_rows = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    meta = {}
    with open(os.path.join(d, "meta.txt")) as f:
        for line in f:
            k, v = line.split()
            meta[k] = float(v)
    F, ncodes, n = int(meta["nfields"]), int(meta["ncodes"]), int(meta["nrows"])
    codes = np.fromfile(os.path.join(d, "codes.i32"), dtype=np.int32).reshape(n, F)
    off = np.fromfile(os.path.join(d, "code_off.i32"), dtype=np.int32)
    y = torch.as_tensor(np.fromfile(os.path.join(d, "y.i32"), dtype=np.int32),
                        dtype=torch.float32)
    idx = torch.as_tensor(codes + off[None, :-1], dtype=torch.long)

    model = TorchDnn(ncodes, F)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-6)
    lossf = torch.nn.BCEWithLogitsLoss()
    perm = torch.randperm(n)
    nval = n // 10
    val, tr = perm[:nval], perm[nval:]
    epochs = 10
    t0 = time.time()
    for _ in range(epochs):
        model.train()
        order = tr[torch.randperm(len(tr))]
        for s in range(0, len(order), 4000):
            b = order[s:s + 4000]
            opt.zero_grad()
            loss = lossf(model(model.embed(idx[b]))[:, 0], y[b])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            vl = lossf(model(model.embed(idx[val]))[:, 0], y[val]).item()
    torch_epoch = (time.time() - t0) / epochs
    c_epoch = meta["c_secs_per_epoch_T"]
    print(f"DNN epoch on {n} seeds ({len(tr)} train + {nval} held-out rows), one thread:")
    print(f"  C/OpenBLAS float32 {c_epoch:.3f} s/epoch   PyTorch 1.13 float32 "
          f"{torch_epoch:.3f} s/epoch   (torch/C = {torch_epoch / c_epoch:.2f}x; "
          f"torch held-out loss after {epochs} epochs {vl:.4f})")

    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = model.embed(idx[:ih_rows]).detach()
    t0 = time.time()
    integrated_hessians(model, x, y[:ih_rows].long(), steps=6)
    torch_ih = time.time() - t0
    c_rows = int(meta["c_ih_rows"])
    c_ih = meta["c_ih_secs"]
    scaled = torch_ih * c_rows / ih_rows
    print(f"Integrated Hessians, 36 samples, {F} fields x 16 dims:")
    print(f"  C (gradients only, gemm) {c_ih:.2f} s for {c_rows} rows   "
          f"PyTorch double backprop {torch_ih:.2f} s for {ih_rows} rows "
          f"-> {scaled:.1f} s for {c_rows} rows (linear scaling)   "
          f"(torch/C = {scaled / c_ih:.0f}x)")


if __name__ == "__main__":
    main()
