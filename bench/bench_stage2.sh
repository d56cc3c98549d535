#!/bin/sh
# Stage-2 benchmark: 10,000 seeds x 30,000 candidates x 12 fields.
# Prints the C pipeline's time per step, then the DNN's time per epoch and
# the Integrated-Hessians pass against PyTorch 1.13 CPU (one thread each).
# Needs python3-torch (apt-get install -y python3-torch) for the second half.
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
UNIT="$HERE/../test/unit"
DIR=$(mktemp -d /tmp/sl_bench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
# one thread everywhere (the C side links serial OpenBLAS anyway)
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
make -s -C "$UNIT" bench_stage2
echo "== C stage 2 (samplellm) =="
"$UNIT/bench_stage2" "$DIR"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
	echo "== against PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') CPU =="
	/usr/bin/python3 "$HERE/bench_stage2_torch.py" "$DIR" "${IH_ROWS:-200}"
else
	echo "python3-torch not installed: skipping the PyTorch comparison"
fi
