package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Workers returns how many goroutines data-parallel kernels use.
func Workers() int { return runtime.GOMAXPROCS(0) }

// ParallelFor runs fn(w, i) for every i in [0, n), spread over the worker
// goroutines; w in [0, Workers()) identifies the goroutine so that fn can
// use per-worker scratch memory (no two goroutines of one call share a w).
// The set of (i) each call sees is fixed, so any result that is combined
// per i afterwards is deterministic.
//
// The calling goroutine is worker 0. The others come from a team of helper
// goroutines that outlive the call: after a region they poll for the next
// one for spinFor before they sleep, because a training step runs hundreds
// of regions a few tens of microseconds apart, and waking a sleeping
// goroutine on an idle core costs about as long (50-70 µs on a 2-vCPU KVM
// guest, measured 2026-12-03: BENCHMARKS.md). A call made while the team
// is busy (from another goroutine, or from inside fn) starts goroutines of
// its own instead, as every call did before the team existed.
func ParallelFor(n int, fn func(w, i int)) {
	nw := min(Workers(), n)
	if nw <= 1 {
		for i := 0; i < n; i++ {
			fn(0, i)
		}
		return
	}
	if theTeam.mu.TryLock() {
		defer theTeam.mu.Unlock()
		theTeam.run(nw, n, fn)
		return
	}
	spawnFor(nw, n, fn)
}

// spawnFor is ParallelFor on nw-1 goroutines started for this call.
func spawnFor(nw, n int, fn func(w, i int)) {
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

// spinFor is how long an idle helper, or a caller waiting for the helpers'
// last items, polls before it sleeps. Longer keeps a core busy for nothing
// after the last region of a burst; shorter pays the wake-up more often.
const spinFor = 200 * time.Microsecond

// region is one ParallelFor call handed to the team. Helpers that see it
// late find its items taken and touch nothing else, so a region never
// waits for a helper that did not start one of its items.
type region struct {
	fn      func(w, i int)
	n       int64
	workers int          // helpers 1 .. workers-1 take part
	next    atomic.Int64 // the next item to claim
	done    atomic.Int64 // items finished
	waiting atomic.Bool  // the caller sleeps on wake until done == n
	wake    chan struct{}
}

// claim runs the region's items as worker w until none is left, and
// reports whether it finished the last one.
func (r *region) claim(w int) (last bool) {
	for {
		i := r.next.Add(1) - 1
		if i >= r.n {
			return false
		}
		r.fn(w, int(i))
		if r.done.Add(1) == r.n {
			return true
		}
	}
}

// team is the package's pool of helper goroutines; mu is held by the one
// ParallelFor call that uses it.
type team struct {
	mu      sync.Mutex
	helpers []*helper // helper h is worker h+1
	cur     atomic.Pointer[region]
}

// helper is one goroutine of the team; parked says it sleeps on wake.
type helper struct {
	w      int
	parked atomic.Bool
	wake   chan struct{}
}

var theTeam team

func (t *team) run(nw, n int, fn func(w, i int)) {
	for len(t.helpers) < nw-1 { // grows with GOMAXPROCS, never shrinks
		h := &helper{w: len(t.helpers) + 1, wake: make(chan struct{}, 1)}
		t.helpers = append(t.helpers, h)
		go h.loop(t)
	}
	r := &region{fn: fn, n: int64(n), workers: nw, wake: make(chan struct{}, 1)}
	t.cur.Store(r)
	for _, h := range t.helpers[:nw-1] {
		if h.parked.CompareAndSwap(true, false) {
			h.wake <- struct{}{}
		}
	}
	if r.claim(0) {
		return
	}
	// The helpers hold the last items: poll, then sleep until the one that
	// finishes the last item wakes us.
	start := time.Now()
	for spins := 0; r.done.Load() < r.n; spins++ {
		spinPause()
		if spins&63 == 63 && time.Since(start) > spinFor {
			r.waiting.Store(true)
			if r.done.Load() == r.n && r.waiting.CompareAndSwap(true, false) {
				return
			}
			<-r.wake
			return
		}
	}
}

// loop is a helper's life: wait for a region it has not seen, take part
// in it if it is one of the region's workers, repeat.
func (h *helper) loop(t *team) {
	var seen *region
	for {
		r := h.await(t, seen)
		seen = r
		if h.w >= r.workers {
			continue
		}
		if r.claim(h.w) && r.waiting.CompareAndSwap(true, false) {
			r.wake <- struct{}{}
		}
	}
}

// await returns the team's current region once it differs from seen,
// polling for spinFor and then sleeping until a caller wakes the helper.
func (h *helper) await(t *team, seen *region) *region {
	start := time.Now()
	for spins := 0; ; spins++ {
		if r := t.cur.Load(); r != seen {
			return r
		}
		spinPause()
		if spins&63 != 63 || time.Since(start) <= spinFor {
			continue
		}
		h.parked.Store(true)
		if r := t.cur.Load(); r != seen {
			// A caller may have claimed the park already and sent a token:
			// take it, or the next park would return at once.
			if !h.parked.CompareAndSwap(true, false) {
				<-h.wake
			}
			return r
		}
		<-h.wake // the caller cleared parked
		start, spins = time.Now(), 0
	}
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
