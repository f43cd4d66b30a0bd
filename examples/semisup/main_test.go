package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/org/vat/internal/results"
)

func TestBadFlagsExitWithOneLineError(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-labels", "15"}, "-labels"},
		{[]string{"-labels", "0"}, "-labels"},
		{[]string{"-labels", "60000"}, "fewer than the 60000"},
		{[]string{"-label-seed", "1,x"}, "-label-seed"},
		{[]string{"-label-seed", "2,2"}, "twice"},
		{[]string{"-runs", "vat,bogus"}, "bogus"},
		{[]string{"-probe", "approximate"}, "-probe"},
		{[]string{"-iterations", "0"}, "-iterations"},
		{[]string{"-unlabeled-batch", "0"}, "-unlabeled-batch"},
		{[]string{"-eps", "0"}, "-eps"},
		{[]string{"-entmin", "-1"}, "-entmin"},
		{[]string{"-warm-up", "1"}, "-warm-up"},
		{[]string{"-decay-start", "0"}, "-decay-start"},
		{[]string{"-lr", "NaN"}, "-lr"},
		{[]string{"stray"}, "stray"},
		{[]string{"-network", "resnet"}, "-network"},
		{[]string{"-merge", "a,,b"}, "-merge"},
		{[]string{"-merge", "/nonexistent/folder"}, "-merge"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		msg := stderr.String()
		if i := strings.Index(msg, "error: "); i >= 0 {
			msg = msg[i:]
		}
		if code != exitError || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, tc.want) {
			t.Errorf("%v: exit %d, stderr %q: want one line `error: ...` mentioning %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// A short run of every kind on two splits writes results.json (with the
// split seeds and hashes, the test error per evaluation) and the plot.
func TestSmallRunWritesResults(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"-iterations", "4", "-eval-every", "2", "-batch", "20", "-unlabeled-batch", "30", "-label-seed", "1,2",
		"-test-limit", "100", "-out", out, "-progress=false"}
	if code := run(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	res, err := results.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 6 {
		t.Fatalf("%d runs, want 3 kinds × 2 splits", len(res.Runs))
	}
	hashes := map[uint64]string{}
	for _, r := range res.Runs {
		o := r.Options
		if len(r.Evaluations) != 2 || o.Labels != 100 || o.LabelSeed == nil || len(o.SplitHash) != 16 || o.Iterations != 4 {
			t.Fatalf("run %s: %+v", r.Name, r)
		}
		if h, ok := hashes[*o.LabelSeed]; ok && h != o.SplitHash {
			t.Errorf("split %d has two hashes", *o.LabelSeed)
		}
		hashes[*o.LabelSeed] = o.SplitHash
		if (r.Name[:3] == "vat") != (o.Probe == "finite-difference") { // the default probe
			t.Errorf("run %s: probe %q", r.Name, o.Probe)
		}
	}
	if hashes[1] == hashes[2] {
		t.Error("two seeds gave the same split")
	}
	for _, want := range []string{"vat+entmin", "mean", "std"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, stdout.String())
		}
	}
	if fi, err := os.Stat(filepath.Join(out, "test_error.png")); err != nil || fi.Size() == 0 {
		t.Errorf("test_error.png: %v", err)
	}
}

// Ctrl-C stops the run after the current step, writes what finished and
// exits with 130.
func TestInterruptWritesFinishedRuns(t *testing.T) {
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"-runs", "supervised", "-iterations", "3", "-test-limit", "50", "-out", out}, &stdout, &stderr)
	if code != exitInterrupted || !strings.Contains(stderr.String(), "interrupted") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if _, err := results.Read(out); err != nil {
		t.Fatalf("results.json after the interrupt: %v", err)
	}
}
