#!/usr/bin/env bash
# cpu-sitting.sh runs one benchmark sitting on the CPU, as BENCHMARKS.md
# records them: this checkout against a base revision, and both against the
# PyTorch peer (unpinned, as users run it, and pinned to OpenBLAS's Haswell
# kernel, for continuity), interleaved round by round so that the machine's
# drift hits every program alike; then, once each, the efficiency figures,
# SGEMM against OpenBLAS on 1 and 2 threads, batch scaling with peak RSS, and
# one core.
#
#	bash scripts/cpu-sitting.sh BASE_REV [ROUNDS]     # default 3 rounds
#
# It needs Go, and for the peer /usr/bin/python3 with torch
# (apt-get install -y python3-torch libopenblas0-pthread). The raw output
# goes to $OUT (default /tmp/sitting): one file per program and round, and
# summary.txt with the medians. Run it on an otherwise idle machine: the
# peer's --max-other 1.0 only reports other load, it does not wait for it.
set -euo pipefail

base=${1:?usage: cpu-sitting.sh BASE_REV [ROUNDS]}
rounds=${2:-3}
out=${OUT:-/tmp/sitting}
root=$(git rev-parse --show-toplevel)
peer=${PEER:-$root/../shared/peer/pytorch_vat.py}
mkdir -p "$out"

{
	date -u +"%Y-%m-%d %H:%M UTC"
	grep -m1 'model name' /proc/cpuinfo
	grep -m1 -o 'cpu family.*' /proc/cpuinfo || true
	grep -m1 -o '^model[[:space:]]*:.*' /proc/cpuinfo || true
	if grep -q -m1 -o avx512f /proc/cpuinfo; then echo "avx512f: yes"; else echo "avx512f: no"; fi
	echo "cores: $(nproc)"
	echo "new: $(git -C "$root" rev-parse --short HEAD)  base: $(git -C "$root" rev-parse --short "$base")"
	go version
} | tee "$out/machine.txt"

wt=$out/base-tree
if [ ! -d "$wt" ]; then
	git -C "$root" worktree add -f --detach "$wt" "$base" >/dev/null
fi
(cd "$wt" && go test -c -o "$out/base.test" .)
(cd "$root" && go test -c -o "$out/new.test" . && go test -c -o "$out/kernels.test" ./internal/kernels)

steps='^BenchmarkTrainStep$/^(plain|vat)$|^BenchmarkSemiStep$|^BenchmarkInference$'
have_peer=false
if [ -f "$peer" ] && /usr/bin/python3 -c 'import torch' 2>/dev/null; then have_peer=true; fi

for r in $(seq 1 "$rounds"); do
	for bin in new base; do
		(cd "$out" && "./$bin.test" -test.run '^$' -test.bench "$steps" -test.benchtime 10x) >"$out/$bin-round$r.txt" 2>&1
	done
	if $have_peer; then
		/usr/bin/python3 "$peer" --bench --threads 2 --steps 20 --infer-batch 128 --max-other 1.0 >"$out/peer-round$r.txt" 2>&1 || true
		/usr/bin/python3 "$peer" --bench --pinned-blas --threads 2 --steps 20 --infer-batch 128 --max-other 1.0 >"$out/pinned-round$r.txt" 2>&1 || true
	fi
done

(cd "$out" && ./new.test -test.run '^$' -test.bench '^BenchmarkEfficiency' -test.benchtime 10x) >"$out/efficiency.txt" 2>&1
# One thread on one core (taskset): torch.set_num_threads(1) alone left
# OpenBLAS on both cores of a Zen 3 (2026-12-03: 176 GFLOP/s, above one
# core's peak).
# Ours and OpenBLAS interleaved, three rounds each; ours reports its mean
# and, like the peer, its best group of nine products (best-GFLOP/s).
for g in 1 2; do
	cpus=0-$((g - 1))
	: >"$out/sgemm-$g.txt"
	: >"$out/peer-sgemm-$g.txt"
	for r in 1 2 3; do
		(cd "$out" && GOMAXPROCS=$g taskset -c "$cpus" ./kernels.test -test.run '^$' -test.bench 'Sgemm1024' -test.benchtime 45x) >>"$out/sgemm-$g.txt" 2>&1
		if $have_peer; then
			OPENBLAS_NUM_THREADS=$g taskset -c "$cpus" /usr/bin/python3 "$peer" --sgemm 1024 --threads "$g" >>"$out/peer-sgemm-$g.txt" 2>&1 || true
		fi
	done
done
for cfg in plain/32 plain/128 plain/512 vat/32 vat/128 vat/512; do
	(cd "$out" && ./new.test -test.run '^$' -test.bench "^BenchmarkTrainStepBatch/$cfg\$" -test.benchtime 5x) >>"$out/batch.txt" 2>&1
done
for bin in new base; do
	(cd "$out" && GOMAXPROCS=1 taskset -c 1 "./$bin.test" -test.run '^$' -test.bench "$steps" -test.benchtime 10x) >"$out/$bin-core1.txt" 2>&1
done
if $have_peer; then
	taskset -c 1 /usr/bin/python3 "$peer" --bench --threads 1 --steps 20 --infer-batch 128 --max-other 1.0 >"$out/peer-core1.txt" 2>&1 || true
fi

# Medians of the rounds: ns/op (or images/s) of every benchmark line, and the
# peer's JSON lines as they are.
{
	cat "$out/machine.txt"
	echo
	for bin in new base; do
		echo "== $bin, 2 threads, $rounds rounds: median"
		cat "$out/$bin"-round*.txt | awk '/^Benchmark/ {
			name = $1; sub(/-[0-9]+$/, "", name)
			for (i = 3; i < NF; i++) if ($(i+1) == "ns/op" || $(i+1) == "images/s") print name, $(i+1), $i
		}' | sort -k1,1 -k2,2 -k3,3g | awk '
			function flush() { if (n) printf "%-45s %s %s (%d runs)\n", key, v[int((n+1)/2)], unit, n; n = 0 }
			{ if ($1 != key || $2 != unit) { flush(); key = $1; unit = $2 } v[++n] = $3 }
			END { flush() }'
	done
	if $have_peer; then
		for kind in peer pinned; do
			echo "== $kind"
			cat "$out/$kind"-round*.txt | grep '"bench"' || true
		done
	fi
	echo "== efficiency"; grep '^Benchmark' "$out/efficiency.txt" || true
	for g in 1 2; do
		echo "== SGEMM 1024, GOMAXPROCS=$g"; grep '^Benchmark' "$out/sgemm-$g.txt" || true
		if $have_peer; then grep -i gflop "$out/peer-sgemm-$g.txt" || true; fi
	done
	echo "== batch scaling"; grep '^Benchmark' "$out/batch.txt" || true
	echo "== one core"; grep -h '^Benchmark' "$out/new-core1.txt" "$out/base-core1.txt" || true
	if $have_peer; then grep '"bench"' "$out/peer-core1.txt" || true; fi
} >"$out/summary.txt"
cat "$out/summary.txt"
