#!/usr/bin/python3
"""Check samplellm's C Integrated Hessians against PyTorch double backprop.

Usage: /usr/bin/python3 bench/check_attribution_torch.py [DUMP_DIR]

Without DUMP_DIR it builds test/unit/test_stage2 and runs it with --dump into
a temporary directory.  For the binary and the 3-class model it rebuilds the
DNN (per-field embeddings -> 128-64-32-out ReLU MLP) in PyTorch on the dumped
weights, computes Integrated Hessians of the per-row loss with respect to the
concatenated embeddings the way path_explain's PathExplainerTorch.interactions
does it (zero baseline, expectation form, 6 outer x 6 inner interpolation
constants, double backprop, a second backward pass per input feature), but
with the C code's stratified midpoints (i + 0.5) / 6 instead of random draws,
sums over embedding dims, averages over rows, takes |.| and zeroes the
diagonal, and compares the F x F matrix with the C one.

Tolerances: the C float64 path must agree to 1e-9 relative to the largest
entry (both sides are exact formulas in double; only summation order
differs).  The C float32 path (production) must agree to 1e-3: weights
rounded to float32 (rel 6e-8) and float32 gemm accumulation over ~128-term
dot products (rel ~1e-6 per layer) through 4 layers and two backward passes
stay well inside 1e-3 of the largest entry.
"""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT = os.path.join(HERE, "..", "test", "unit")


def read_meta(d):
    meta = {}
    with open(os.path.join(d, "meta.txt")) as f:
        for line in f:
            k, v = line.split()
            meta[k] = int(v)
    return meta


class Dnn(torch.nn.Module):
    """The C model's architecture, loaded from its flat parameter vector."""

    def __init__(self, params, ncodes, E, widths, dtype=torch.float64):
        super().__init__()
        p = torch.as_tensor(params, dtype=dtype)
        off = ncodes * E
        self.emb = p[:off].reshape(ncodes, E)
        self.W, self.b = [], []
        for i in range(4):
            ni, no = widths[i], widths[i + 1]
            self.W.append(p[off:off + ni * no].reshape(ni, no))
            off += ni * no
            self.b.append(p[off:off + no])
            off += no
        assert off == len(p)

    def embed(self, codes, code_off):
        idx = torch.as_tensor(codes + code_off[None, :-1], dtype=torch.long)
        return self.emb[idx].reshape(codes.shape[0], -1)

    def forward(self, x):
        for i in range(3):
            x = torch.relu(x @ self.W[i] + self.b[i])
        return x @ self.W[3] + self.b[3]


def row_loss(logits, y):
    if logits.shape[1] == 1:
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits[:, 0], y.to(logits.dtype), reduction="none")
    return torch.nn.functional.cross_entropy(logits, y, reduction="none")


def integrated_hessians(model, x, y, steps=6):
    """path_explain-style IH of the loss (double backprop); returns (n, D, D)."""
    n, D = x.shape
    alphas = [(i + 0.5) / steps for i in range(steps)]
    out = torch.zeros(n, D, D, dtype=x.dtype)
    for a in alphas:
        z = (a * x).detach().requires_grad_(True)
        g = torch.zeros_like(z)
        for b in alphas:
            u = b * z
            loss = row_loss(model(u), y)
            g = g + torch.autograd.grad(loss.sum(), u, create_graph=True)[0]
        ig = z * g / steps                      # attributions at z
        for feat in range(D):
            second = torch.autograd.grad(ig[:, feat].sum(), z,
                                         retain_graph=True)[0]
            out[:, feat, :] += second.detach()
    # path_explain multiplies by the outer delta (x - baseline) on the last
    # index and averages over the outer samples
    return out * x[:, None, :] / steps


def field_matrix(G, F, E):
    n = G.shape[0]
    M = G.reshape(n, F, E, F, E).sum(dim=(2, 4)).mean(dim=0).abs()
    M.fill_diagonal_(0)
    return M.numpy()


def check_case(d):
    meta = read_meta(d)
    F, E = meta["nfields"], meta["embed_dim"]
    widths = [F * E, meta["h1"], meta["h2"], meta["h3"], meta["nout"]]
    params = np.fromfile(os.path.join(d, "params.f64"), dtype=np.float64)
    codes = np.fromfile(os.path.join(d, "codes.i32"), dtype=np.int32).reshape(-1, F)
    y = torch.as_tensor(np.fromfile(os.path.join(d, "y.i32"), dtype=np.int32),
                        dtype=torch.long)
    code_off = np.fromfile(os.path.join(d, "code_off.i32"), dtype=np.int32)
    Md = np.fromfile(os.path.join(d, "M_double.f64")).reshape(F, F)
    Mf = np.fromfile(os.path.join(d, "M_float.f64")).reshape(F, F)

    model = Dnn(params, meta["ncodes"], E, widths)
    x = model.embed(codes, code_off)
    t0 = time.time()
    Mt = field_matrix(integrated_hessians(model, x, y, meta["steps"]), F, E)
    secs = time.time() - t0
    scale = np.abs(Mt).max()
    rd = np.abs(Md - Mt).max() / scale
    rf = np.abs(Mf - Mt).max() / scale
    print(f"{os.path.basename(d)}: {meta['nclasses']} classes, {F} fields x {E} dims, "
          f"{codes.shape[0]} rows; torch IH {secs:.2f}s; "
          f"max |C64 - torch| / max = {rd:.2e}, max |C32 - torch| / max = {rf:.2e}")
    print("  torch M / max:\n" + np.array2string(Mt / scale, precision=3))
    ok = rd < 1e-9 and rf < 1e-3
    if not ok:
        print("  MISMATCH")
    return ok


def main():
    torch.set_num_threads(1)
    if len(sys.argv) > 1:
        dump = sys.argv[1]
    else:
        subprocess.run(["make", "-s", "-C", UNIT, "test_stage2"], check=True)
        dump = tempfile.mkdtemp(prefix="sl_ih_")
        subprocess.run([os.path.join(UNIT, "test_stage2"), "--dump", dump],
                       check=True)
    ok = all([check_case(os.path.join(dump, c)) for c in ("binary", "multi")])
    print("attribution check:", "PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
