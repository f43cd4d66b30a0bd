package backend

import (
	"math/rand/v2"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend/backendtest"
)

// The mirrors upload a buffer only when the host copy is newer, download it
// only when the device copy is, and free everything on Release.
func TestMirrors(t *testing.T) {
	dev := &backendtest.HostDevice{}
	a := New(dev, ModeOff)
	h := []float32{1, 2, 3}
	if _, err := a.in(h); err != nil {
		t.Fatal(err)
	}
	if _, err := a.in(h); err != nil {
		t.Fatal(err)
	}
	if dev.Uploads != 1 {
		t.Fatalf("two reads of an unchanged buffer uploaded %d times, want 1", dev.Uploads)
	}
	a.MarkHost(h)
	m, _ := a.in(h)
	if dev.Uploads != 2 {
		t.Fatalf("a read after a host write uploaded %d times in all, want 2", dev.Uploads)
	}
	backendtest.HM32(m)[1] = 7 // a kernel writes it
	if _, err := a.out(h); err != nil {
		t.Fatal(err)
	}
	if err := a.SyncHost(h); err != nil {
		t.Fatal(err)
	}
	if err := a.SyncHost(h); err != nil {
		t.Fatal(err)
	}
	if dev.Downloads != 1 || h[1] != 7 {
		t.Fatalf("after a device write: %d downloads, h = %v; want 1 and [1 7 3]", dev.Downloads, h)
	}
	if err := a.Release(); err != nil || dev.Live != 0 {
		t.Fatalf("release: %v, %d allocations left", err, dev.Live)
	}
}

// Auto mode measures each layer direction once, keeps the faster path, and
// reuses the choice; on and off use one path only. The host device counts
// its cuDNN-path calls.
func TestDNNDispatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	xs, ws := tensor.Shape{2, 3, 8, 6}, tensor.Shape{4, 3, 3, 3}
	// Random inputs drawn here: gradcheck imports Gorgonia, whose own cuda
	// build would keep scripts/vet-cuda.sh from vetting this package.
	random := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(2*rng.Float64() - 1)
		}
		return s
	}
	x, w, b := random(xs.TotalSize()), random(ws.TotalSize()), random(4)
	y := make([]float32, 2*4*6*4)
	for _, tc := range []struct {
		mode          Mode
		minDNN, maxDN int
		choices       int
	}{{ModeOff, 0, 0, 0}, {ModeOn, 3, 3, 0}, {ModeAuto, 4, 7, 1}} {
		host := &backendtest.HostDevice{}
		a := New(host, tc.mode)
		for i := 0; i < 3; i++ {
			if err := a.Conv2d(y, x, w, b, xs, ws, false); err != nil {
				t.Fatal(err)
			}
		}
		// auto: 4 measured calls, then 0 or 3 more depending on the choice
		if host.DNNCalls < tc.minDNN || host.DNNCalls > tc.maxDN {
			t.Errorf("%v: %d cuDNN-path calls, want %d-%d", tc.mode, host.DNNCalls, tc.minDNN, tc.maxDN)
		}
		if got := a.KernelChoices(); len(got) != tc.choices {
			t.Errorf("%v: choices %q, want %d", tc.mode, got, tc.choices)
		}
	}
	for _, s := range []string{"", "auto", "ON", "off", "0"} {
		if _, err := ParseMode(s); err != nil {
			t.Errorf("VAT_CUDNN=%q: %v", s, err)
		}
	}
	if _, err := ParseMode("fast"); err == nil || !strings.Contains(err.Error(), "VAT_CUDNN") {
		t.Errorf("VAT_CUDNN=fast: error %v, want one naming VAT_CUDNN", err)
	}
}
