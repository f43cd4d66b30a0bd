package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Workers returns how many goroutines data-parallel kernels use.
func Workers() int { return runtime.GOMAXPROCS(0) }

// ParallelFor runs fn(w, i) for every i in [0, n), spread over the worker
// goroutines; w in [0, Workers()) identifies the goroutine so that fn can
// use per-worker scratch memory. The set of (i) each call sees is fixed, so
// any result that is combined per i afterwards is deterministic.
func ParallelFor(n int, fn func(w, i int)) {
	nw := Workers()
	if nw > n {
		nw = n
	}
	if nw <= 1 {
		for i := 0; i < n; i++ {
			fn(0, i)
		}
		return
	}
	var next atomic.Int64
	work := func(w int) {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			fn(w, i)
		}
	}
	// The caller is worker 0: it starts at once, while the others wait to
	// be scheduled on the other cores.
	var wg sync.WaitGroup
	wg.Add(nw - 1)
	for w := 1; w < nw; w++ {
		go func(w int) {
			defer wg.Done()
			work(w)
		}(w)
	}
	work(0)
	wg.Wait()
}

// parallelChunk is the size of ParallelChunks' pieces: large enough that
// scheduling costs little, small enough that two cores share the work.
const parallelChunk = 1 << 15

// ParallelChunks runs fn(lo, hi) on consecutive pieces [lo, hi) of [0, n)
// on the worker goroutines: for elementwise loops, whose results do not
// depend on how they are split.
func ParallelChunks(n int, fn func(lo, hi int)) {
	pieces := (n + parallelChunk - 1) / parallelChunk
	if pieces <= 1 {
		fn(0, n)
		return
	}
	ParallelFor(pieces, func(_, i int) { fn(i*parallelChunk, min(n, (i+1)*parallelChunk)) })
}

// ParallelSlices runs fn(i, lo, hi) over pieces [lo, hi) of slices of the
// given lengths (slice i covers [0, lens[i])), at most parallelChunk long,
// on the worker goroutines: for elementwise updates of many tensors of very
// different sizes (an optimizer's step), which one task per tensor would
// leave to one core while the largest finishes.
func ParallelSlices(lens []int, fn func(i, lo, hi int)) {
	type piece struct{ i, lo, hi int }
	var pieces []piece
	for i, n := range lens {
		for lo := 0; lo < n; lo += parallelChunk {
			pieces = append(pieces, piece{i, lo, min(n, lo+parallelChunk)})
		}
	}
	ParallelFor(len(pieces), func(_, k int) { fn(pieces[k].i, pieces[k].lo, pieces[k].hi) })
}

// Zero sets s to zeros.
func Zero(s []float32) {
	for i := range s {
		s[i] = 0
	}
}
