#!/usr/bin/env bash
# Issue 26's many-core check, prepared for one call of a lent 16-core machine (the device
# tool runs it in the repository root, with $OUT its folder of results):
#
#     bash benchmarks/many_cores.sh          # about 8 minutes on 16 cores
#
# Whole epochs (benchmarks.epoch_throughput) of the 784-400-20 VAE, float32, at batch 128
# and 1024: npvae, JAX and PyTorch at 1, 2, 4, 8 and 16 threads and npvae's own policy,
# quiet, then with one core kept busy.  Without MNIST there (the data sets do not travel)
# the epochs are of random binary images, as each JSON's "data" says: the products and
# the kernels do the same work.  Every step is capped by `timeout`, so a slow part loses
# its own numbers only.
set -u
OUT=${OUT:-/tmp/many-cores}
mkdir -p "$OUT"
export JAX_PLATFORMS=cpu MPLBACKEND=Agg
py=${PYTHON:-python3}
{ lscpu; nproc; "$py" -c "import numpy; numpy.show_runtime()"; } > "$OUT/machine.txt" 2>&1
scaling=npvae:auto
for fw in npvae jax torch; do
  for n in 1 2 4 8 16; do scaling="$scaling,$fw:$n"; done
done
timeout 330 "$py" -m benchmarks.epoch_throughput --batches 128,1024 --examples 30000 \
  --configs "$scaling" --rounds 2 --out "$OUT/quiet.json" > "$OUT/quiet.txt" 2>&1
timeout 150 "$py" -m benchmarks.epoch_throughput --batches 128,1024 --examples 30000 \
  --configs npvae:auto,npvae:1,npvae:16,jax:16,torch:16 --rounds 2 --busy-cores 1 \
  --out "$OUT/busy1.json" > "$OUT/busy1.txt" 2>&1
tail -n 20 "$OUT"/quiet.txt "$OUT"/busy1.txt
