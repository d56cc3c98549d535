#!/bin/sh
# Stage-2 benchmark.
#   1. 10,000 seeds x 30,000 candidates x 12 fields: the C pipeline's time per
#      step, then the DNN's time per epoch and the Integrated-Hessians pass
#      against PyTorch 1.13 CPU (one thread each).
#   2. Scale: 10,000 seeds x 300,000 candidates (the built-in generator at
#      n = 100,000), the default estimator and the paper's; then 3,000,000
#      candidates with the default (S2B_NO_3M=1 skips it: it needs ~2 GB for
#      the candidates themselves), with stage 2's own peak memory.
# S2B_NOVELTY=R sets the novelty guard's ratio (a high one, e.g. 1.3, makes it
# engage on every candidate: its worst-case cost).
# Needs python3-torch (apt-get install -y python3-torch) for the PyTorch part.
# Wall-clock seconds count other processes on a shared machine: the CPU
# seconds are printed beside them.
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
UNIT="$HERE/../test/unit"
DIR=$(mktemp -d /tmp/sl_bench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
# one thread everywhere (the C side links serial OpenBLAS anyway)
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
make -s -C "$UNIT" bench_stage2
echo "== C stage 2 (samplellm), default estimator =="
"$UNIT/bench_stage2" "$DIR"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
	echo "== against PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') CPU =="
	/usr/bin/python3 "$HERE/bench_stage2_torch.py" "$DIR" "${IH_ROWS:-200}"
else
	echo "python3-torch not installed: skipping the PyTorch comparison"
fi
echo "== 300,000 candidates: default estimator =="
"$UNIT/bench_stage2" "$DIR/big" 10000 300000
echo "== 300,000 candidates: resample => 'paper' =="
"$UNIT/bench_stage2" "$DIR/big" 10000 300000 paper
if [ -z "${S2B_NO_3M:-}" ]; then
	echo "== 3,000,000 candidates: default estimator =="
	"$UNIT/bench_stage2" "$DIR/big" 10000 3000000
fi
