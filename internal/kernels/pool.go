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
	var wg sync.WaitGroup
	wg.Add(nw)
	for w := 0; w < nw; w++ {
		go func(w int) {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(w, i)
			}
		}(w)
	}
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

// Scratch is per-worker temporary memory.
type Scratch struct{ bufs [][]float32 }

// Get returns worker w's buffer of n floats (contents undefined).
func (s *Scratch) Get(w, n int) []float32 {
	for len(s.bufs) <= w {
		s.bufs = append(s.bufs, nil)
	}
	if cap(s.bufs[w]) < n {
		s.bufs[w] = make([]float32, n)
	}
	return s.bufs[w][:n]
}

// Ensure grows the per-worker slots before a parallel section, so that
// the goroutines only ever touch their own slot.
func (s *Scratch) Ensure(nw, n int) {
	for w := 0; w < nw; w++ {
		s.Get(w, n)
	}
}

// Zero sets s to zeros.
func Zero(s []float32) {
	for i := range s {
		s[i] = 0
	}
}
