package backend

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/org/vat/internal/backend/backendtest"
	"github.com/org/vat/internal/device"
)

// TestOpenSaysWhy: a build with a GPU backend that cannot open one says
// why on stderr, once, and keeps the reason for Backend(); VAT_DEVICE=cpu
// opts out silently; VAT_DEVICE=gpu:N opens GPU N; a bad VAT_DEVICE or
// VAT_CUDNN is said too.
func TestOpenSaysWhy(t *testing.T) {
	failing := func(int) (device.GPU, error) { return nil, errors.New("cuda: cuInit: CUDA_ERROR_NO_DEVICE") }
	var opened []int
	working := func(i int) (device.GPU, error) { opened = append(opened, i); return &backendtest.NullDevice{}, nil }
	for _, tc := range []struct {
		name     string
		opener   func(int) (device.GPU, error)
		env      map[string]string
		gpu      bool
		note     string // in the reason
		stderr   bool   // said on stderr
		openedAt int
	}{
		{"no GPU", failing, nil, false, "CUDA_ERROR_NO_DEVICE", true, -1},
		{"opt-out", failing, map[string]string{"VAT_DEVICE": "cpu"}, false, "VAT_DEVICE=cpu", false, -1},
		{"bad device", working, map[string]string{"VAT_DEVICE": "gpu:x"}, false, `VAT_DEVICE="gpu:x"`, true, -1},
		{"bad cudnn", working, map[string]string{"VAT_CUDNN": "maybe"}, false, "VAT_CUDNN", true, -1},
		{"GPU 2", working, map[string]string{"VAT_DEVICE": "gpu:2"}, true, "", false, 2},
		{"default GPU", working, nil, true, "", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opened = nil
			var stderr bytes.Buffer
			a, note := open(tc.opener, func(k string) string { return tc.env[k] }, &stderr)
			if (a != nil) != tc.gpu || !strings.Contains(note, tc.note) {
				t.Fatalf("accelerator %v, note %q; want GPU %v, a note containing %q", a != nil, note, tc.gpu, tc.note)
			}
			said := stderr.String()
			if tc.stderr != (said != "") || (tc.stderr && (strings.Count(said, "\n") != 1 || !strings.Contains(said, tc.note) || !strings.Contains(said, "CPU"))) {
				t.Errorf("stderr %q: want one line saying why (%v)", said, tc.stderr)
			}
			if tc.openedAt >= 0 && (len(opened) != 1 || opened[0] != tc.openedAt) {
				t.Errorf("opened GPUs %v, want %d", opened, tc.openedAt)
			}
		})
	}
	if a, note := open(nil, func(string) string { return "" }, &bytes.Buffer{}); a != nil || note != "" {
		t.Errorf("no GPU backend compiled in: %v %q", a, note)
	}
}
