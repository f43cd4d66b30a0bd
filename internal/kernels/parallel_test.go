package kernels

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// checkFor runs ParallelFor(n) and checks that every index ran exactly
// once, that w stayed in [0, min(Workers(), n)), and that no two items of
// the call ran at the same time under one w.
func checkFor(n int, item time.Duration) error {
	nw := min(Workers(), n)
	counts := make([]atomic.Int32, n)
	busy := make([]atomic.Int32, max(nw, 1))
	var bad atomic.Int32
	ParallelFor(n, func(w, i int) {
		if w < 0 || w >= max(nw, 1) {
			bad.Add(1)
			return
		}
		if busy[w].Add(1) != 1 {
			bad.Add(1)
		}
		if item > 0 {
			for start := time.Now(); time.Since(start) < item; {
			}
		}
		counts[i].Add(1)
		busy[w].Add(-1)
	})
	if bad.Load() != 0 {
		return fmt.Errorf("n %d: %d items ran with a worker index out of [0, %d) or shared with a running item", n, bad.Load(), nw)
	}
	for i := range counts {
		if c := counts[i].Load(); c != 1 {
			return fmt.Errorf("n %d: item %d ran %d times", n, i, c)
		}
	}
	return nil
}

func TestParallelForRunsEveryItemOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 3, 8} {
		runtime.GOMAXPROCS(procs)
		for _, tc := range []struct {
			n    int
			item time.Duration
		}{{0, 0}, {1, 0}, {2, 0}, {3, 0}, {7, 0}, {100, 0}, {5, 50 * time.Microsecond}, {40, 10 * time.Microsecond}} {
			if err := checkFor(tc.n, tc.item); err != nil {
				t.Fatalf("GOMAXPROCS %d: %v", procs, err)
			}
		}
		// After the helpers have gone to sleep.
		time.Sleep(3 * spinFor)
		if err := checkFor(9, 0); err != nil {
			t.Fatalf("GOMAXPROCS %d, helpers asleep: %v", procs, err)
		}
	}
}

// TestParallelForConcurrentAndNested calls ParallelFor from many goroutines
// at once and from inside its own items: the calls that find the team busy
// start goroutines of their own, and every call still runs each of its
// items once.
func TestParallelForConcurrentAndNested(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	var wg sync.WaitGroup
	var total atomic.Int64
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rep := 0; rep < 50; rep++ {
				ParallelFor(6, func(_, i int) {
					ParallelFor(5, func(_, j int) { total.Add(1) })
				})
				if err := checkFor(11, 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if want := int64(8 * 50 * 6 * 5); total.Load() != want {
		t.Fatalf("nested items ran %d times, want %d", total.Load(), want)
	}
}

// TestParallelForResultsVisible checks that what the helpers write in
// their items is visible to the caller when ParallelFor returns, whether
// the caller finished the last item, polled for it or slept for it.
func TestParallelForResultsVisible(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	for _, item := range []time.Duration{0, 20 * time.Microsecond, 3 * spinFor} {
		for rep := 0; rep < 20; rep++ {
			out := make([]int, 4)
			ParallelFor(len(out), func(w, i int) {
				if i == len(out)-1 {
					for start := time.Now(); time.Since(start) < item; {
					}
				}
				out[i] = i + 1
			})
			for i, v := range out {
				if v != i+1 {
					t.Fatalf("item %v: out[%d] = %d after ParallelFor, want %d", item, i, v, i+1)
				}
			}
		}
	}
}

// BenchmarkParallelFor times a region of two 50 µs items after a serial
// gap, as a training step's ops follow one another: with the team the
// pair takes one item's time; a goroutine started per call often did not
// start before the caller had finished both.
func BenchmarkParallelFor(b *testing.B) {
	spin := func(d time.Duration) {
		for start := time.Now(); time.Since(start) < d; {
		}
	}
	for _, gap := range []time.Duration{0, 20 * time.Microsecond, 100 * time.Microsecond, time.Millisecond} {
		for _, tc := range []struct {
			name string
			f    func(n int, fn func(w, i int))
		}{{"team", ParallelFor}, {"spawn", func(n int, fn func(w, i int)) { spawnFor(min(Workers(), n), n, fn) }}} {
			b.Run(tc.name+"/gap="+gap.String(), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					tc.f(2, func(_, _ int) { spin(50 * time.Microsecond) })
					spin(gap)
				}
			})
		}
	}
}
