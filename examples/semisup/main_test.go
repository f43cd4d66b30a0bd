package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/org/vat"
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
		{[]string{"-eps", "-1"}, "-eps"},
		{[]string{"-eps", "1", "-eps-scale", "0.1"}, "want one of them"},
		{[]string{"-entmin", "-1"}, "-entmin"},
		{[]string{"-warm-up", "1"}, "-warm-up"},
		{[]string{"-entmin-warm-up", "-0.1"}, "-entmin-warm-up"},
		{[]string{"-decay-start", "0"}, "-decay-start"},
		{[]string{"-lr", "NaN"}, "-lr"},
		{[]string{"stray"}, "stray"},
		{[]string{"-network", "resnet"}, "-network"},
		{[]string{"-preset", "paper"}, "-preset"},
		{[]string{"-schedule", "cosine"}, "-schedule"},
		{[]string{"-schedule", "step", "-step-factor", "1.5"}, "-step-factor"},
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
		if (r.Name[:3] == "vat") != (o.Probe == "finite-difference") { // the default probe on the MLP with batch norm
			t.Errorf("run %s: probe %q", r.Name, o.Probe)
		}
		if r.Name[:3] == "vat" && (o.Eps == nil || *o.Eps != 5 || o.Xi == nil || *o.Xi != 1e-3) { // the flags' defaults
			t.Errorf("run %s: ε %v, ξ %v, want 5 and 1e-3", r.Name, o.Eps, o.Xi)
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
	// Every finished run's model, which classifies as the run reported.
	test, err := vat.LoadMNISTTest("")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Runs {
		m, err := vat.LoadModel(filepath.Join(out, "models", strings.ReplaceAll(r.Name, "/", "-")+".safetensors"))
		if err != nil {
			t.Fatalf("run %s: %v", r.Name, err)
		}
		ev, err := m.Evaluate(test.Head(100))
		if err != nil || ev.Accuracy != r.TestAccuracy {
			t.Errorf("run %s: the saved model's accuracy %v (%v), the run's %v", r.Name, ev.Accuracy, err, r.TestAccuracy)
		}
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

// TestResumeAfterInterrupt stops a run at whatever step the interrupt
// lands on, resumes it with -resume, and gets the evaluations of a run
// never stopped; a run that finished is kept, not trained again.
func TestResumeAfterInterrupt(t *testing.T) {
	args := func(out string) []string {
		return []string{"-runs", "supervised,vat", "-iterations", "24", "-eval-every", "6", "-batch", "20", "-unlabeled-batch", "40",
			"-test-limit", "100", "-checkpoint-every", "2", "-out", out, "-progress=false"}
	}
	whole := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args(whole), &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want, err := results.Read(whole)
	if err != nil {
		t.Fatal(err)
	}

	out := t.TempDir()
	ckpt := filepath.Join(out, "checkpoints", "vat-1.ckpt")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // interrupt once the vat run has written a checkpoint
		for ctx.Err() == nil {
			if _, err := os.Stat(ckpt); err == nil {
				cancel()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	stderr.Reset()
	code := run(ctx, args(out), &stdout, &stderr)
	cancel()
	if code != exitInterrupted || !strings.Contains(stderr.String(), "checkpoint at iteration") {
		t.Fatalf("interrupted run: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run(context.Background(), append(args(out), "-resume"), &stdout, &stderr); code != exitOK {
		t.Fatalf("resumed run: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "1 finished run(s)") || !strings.Contains(stderr.String(), "resuming from") {
		t.Errorf("resumed run's stderr %q: want the finished supervised run kept and the vat run resumed", stderr.String())
	}
	got, err := results.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Runs) != len(want.Runs) {
		t.Fatalf("%d runs, want %d", len(got.Runs), len(want.Runs))
	}
	for i, w := range want.Runs {
		g := got.Runs[i]
		if g.Name != w.Name || len(g.Evaluations) != len(w.Evaluations) {
			t.Fatalf("run %d: %s with %d evaluations, want %s with %d", i, g.Name, len(g.Evaluations), w.Name, len(w.Evaluations))
		}
		for k := range w.Evaluations {
			ge, we := g.Evaluations[k], w.Evaluations[k]
			if ge.TrainLoss != we.TrainLoss || ge.TestLoss != we.TestLoss || ge.TestAccuracy != we.TestAccuracy {
				t.Errorf("%s, evaluation %d: %+v, want %+v", g.Name, k, ge, we)
			}
		}
	}
	if _, err := os.Stat(ckpt); !os.IsNotExist(err) {
		t.Errorf("the finished run's checkpoint is still there: %v", err)
	}
	// A checkpoint made with other settings is refused.
	stderr.Reset()
	cancelAt := t.TempDir()
	ctx2, cancel2 := context.WithCancel(context.Background())
	ck2 := filepath.Join(cancelAt, "checkpoints", "supervised-1.ckpt")
	go func() {
		for ctx2.Err() == nil {
			if _, err := os.Stat(ck2); err == nil {
				cancel2()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	run(ctx2, args(cancelAt), &stdout, &stderr)
	cancel2()
	stderr.Reset()
	if code := run(context.Background(), append(args(cancelAt), "-resume", "-lr", "0.01"), &stdout, &stderr); code != exitError || !strings.Contains(stderr.String(), "not the flags'") {
		t.Errorf("resuming with another -lr: exit %d, stderr %q", code, stderr.String())
	}
}

// TestPresets: -preset sets a recipe's options, and flags given
// explicitly win.
func TestPresets(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseFlags([]string{"-preset", "official-2015", "-iterations", "7"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if o.network != "official" || o.iterations != 7 || o.eps != 0.3 || o.probe != vat.Exact || o.schedule != "step" ||
		o.stepEvery != 500 || o.stepFactor != 0.9 || o.bnStats != vat.PopulationBNStats || o.lr != 0.002 {
		t.Errorf("official-2015 with -iterations 7: %+v", o)
	}
	o, err = parseFlags([]string{"-preset", "tpami-2018"}, &stderr)
	if err != nil || o.network != "tpami" || o.eps != 5 || o.iterations != 50000 {
		t.Errorf("tpami-2018: %+v, %v", o, err)
	}
}

// TestVATFlagDefaults: the flags default to MNIST-100's best measured
// setting; -eps 0 or -eps-scale alone switch to the library's
// data-relative defaults, except what is given too.
func TestVATFlagDefaults(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		eps, xi float64
		scale   float64
		probe   vat.Probe
	}{
		{nil, 5, 1e-3, 0, vat.FiniteDifference},
		{[]string{"-eps", "2"}, 2, 1e-3, 0, vat.FiniteDifference},
		{[]string{"-eps", "0"}, 0, 0, 0, vat.ProbeAuto},
		{[]string{"-eps-scale", "0.1"}, 0, 0, 0.1, vat.ProbeAuto},
		{[]string{"-eps-scale", "0.1", "-xi", "0.01", "-probe", "exact"}, 0, 0.01, 0.1, vat.Exact},
		{[]string{"-preset", "tpami-2018"}, 5, 1e-3, 0, vat.Exact},
	} {
		var stderr bytes.Buffer
		o, err := parseFlags(tc.args, &stderr)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if o.eps != tc.eps || o.xi != tc.xi || o.epsScale != tc.scale || o.probe != tc.probe {
			t.Errorf("%v: ε %v, ξ %v, scale %v, probe %v; want %v, %v, %v, %v", tc.args, o.eps, o.xi, o.epsScale, o.probe, tc.eps, tc.xi, tc.scale, tc.probe)
		}
	}
}
