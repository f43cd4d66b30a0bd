package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/org/vat/internal/idxtest"
	"github.com/org/vat/internal/results"
)

func TestBadFlagsExitWithOneLineError(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // part of the message
	}{
		{[]string{"-batch", "0"}, "-batch"},
		{[]string{"-batch", "-5"}, "-batch"},
		{[]string{"-batch", "x"}, "-batch"},
		{[]string{"-eps", "0"}, "-eps"},
		{[]string{"-eps", "-1"}, "-eps"},
		{[]string{"-xi", "0"}, "-xi"},
		{[]string{"-alpha", "-1"}, "-alpha"},
		{[]string{"-ip", "0"}, "-ip"},
		{[]string{"-epochs", "0"}, "-epochs"},
		{[]string{"-runs", "plain,bogus"}, "bogus"},
		{[]string{"-runs", "vat,vat"}, "twice"},
		{[]string{"-train-limit", "-1"}, "-train-limit"},
		{[]string{"-test-limit", "-3"}, "-test-limit"},
		{[]string{"-no-such-flag"}, "no-such-flag"},
		{[]string{"stray"}, "stray"},
		{[]string{"-data", "/nonexistent/mnist"}, "train-images-idx3-ubyte.gz"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		msg := stderr.String()
		if code != exitError {
			t.Errorf("%v: exit %d, want %d", tc.args, code, exitError)
		}
		if !strings.HasPrefix(msg, "error: ") || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, tc.want) {
			t.Errorf("%v: stderr %q, want one line `error: ...` mentioning %q", tc.args, msg, tc.want)
		}
	}
}

// Every broken or hostile data folder (internal/idxtest) ends the program
// with one line `error: ...` naming the file, and exit status 1.
func TestBrokenDataFolder(t *testing.T) {
	for _, c := range idxtest.Hostile() {
		dir := t.TempDir()
		if err := c.Folder(dir); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"-runs", "plain", "-epochs", "1", "-data", dir, "-progress=false"}, &stdout, &stderr)
		msg := stderr.String()
		if i := strings.Index(msg, "error: "); i >= 0 {
			msg = msg[i:] // after the backend line
		}
		if code != exitError || !strings.HasPrefix(msg, "error: ") || strings.Count(msg, "\n") != 1 ||
			!strings.Contains(msg, filepath.Join(dir, strings.TrimSuffix(c.File, ".gz"))) {
			t.Errorf("%s: exit %d, stderr %q: want 1 and one line `error: ...` naming %s", c.Name, code, stderr.String(), c.File)
		}
	}
}

func TestHelpExitsZero(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stderr.String(), "-train-limit") {
		t.Fatalf("usage missing: %q", stderr.String())
	}
}

func readResults(t *testing.T, dir string) results.Results {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r results.Results
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	// Other tools read these keys by name.
	var raw map[string][]map[string]any
	json.Unmarshal(b, &raw)
	for _, run := range raw["runs"] {
		for _, k := range []string{"name", "options", "test_accuracy", "test_loss", "seconds_per_epoch", "epochs"} {
			if _, ok := run[k]; !ok {
				t.Errorf("results.json: run lacks %q", k)
			}
		}
	}
	return r
}

func TestSmallRunWritesResults(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-runs", "plain", "-epochs", "1", "-train-limit", "256", "-test-limit", "100", "-out", out, "-progress=false"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "plain") || !strings.Contains(stdout.String(), "test acc") {
		t.Fatalf("no table on stdout: %q", stdout.String())
	}
	r := readResults(t, out)
	if len(r.Runs) != 1 || len(r.Runs[0].Epochs) != 1 || r.Runs[0].TestAccuracy <= 0 || r.Runs[0].TestAccuracy > 1 {
		t.Fatalf("results: %+v", r)
	}
	if fi, err := os.Stat(filepath.Join(out, "accuracy.png")); err != nil || fi.Size() == 0 {
		t.Fatalf("accuracy.png: %v", err)
	}
}

// Progress on a stderr that is not a terminal (here a buffer; in practice a
// log file): one plain line per epoch after the backend line, no
// carriage-return frames; and only the backend line with -progress=false.
func TestProgressInLogs(t *testing.T) {
	for _, tc := range []struct {
		flag  string
		lines int
	}{{"-progress=true", 2}, {"-progress=false", 0}} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"-runs", "plain", "-epochs", "2", "-train-limit", "256", "-test-limit", "100", "-out", t.TempDir(), tc.flag}, &stdout, &stderr)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", tc.flag, code, stderr.String())
		}
		log := stderr.String()
		if strings.Contains(log, "\r") || strings.Count(log, "\n") != tc.lines+1 || strings.Count(log, "plain        epoch ") != tc.lines {
			t.Errorf("%s: stderr %q, want %d plain epoch lines and no \\r", tc.flag, log, tc.lines)
		}
	}
}

// cancelAfter cancels a context once the text written through it contains
// a marker; it stands in for Ctrl-C at a known point.
type cancelAfter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	cancel context.CancelFunc
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.marker) {
		c.cancel()
	}
	return len(p), nil
}

// Ctrl-C during the second run: the first run is kept, results.json is
// written, the status is 130.
func TestInterruptWritesFinishedRuns(t *testing.T) {
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &cancelAfter{marker: "plain        epoch 1/1:", cancel: cancel}
	var stdout bytes.Buffer
	code := run(ctx, []string{"-runs", "plain,vat", "-epochs", "1", "-train-limit", "256", "-test-limit", "100", "-out", out}, &stdout, stderr)
	if code != exitInterrupted {
		t.Fatalf("exit %d, want %d; stderr %q", code, exitInterrupted, stderr.buf.String())
	}
	r := readResults(t, out)
	if len(r.Runs) != 1 || r.Runs[0].Name != "plain" {
		t.Fatalf("results after interrupt: %+v", r.Runs)
	}
}

// stepsCtx reports cancellation once Err has been asked more than n
// times: the trainer asks before every step, so this is Ctrl-C after
// about n steps, at the same point on every machine.
type stepsCtx struct {
	context.Context
	n atomic.Int64
}

func (c *stepsCtx) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// Ctrl-C in the middle of an epoch writes a checkpoint; -resume continues
// the run, and the weights it saves are byte for byte those of a run never
// interrupted. The run has dropout and VAT, so every random stream counts.
func TestResumeMatchesUninterrupted(t *testing.T) {
	args := []string{"-runs", "dropout+vat", "-epochs", "2", "-train-limit", "300", "-test-limit", "100", "-save", "-progress=false"}
	whole := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), append(args, "-out", whole), &stdout, &stderr); code != exitOK {
		t.Fatalf("uninterrupted run: exit %d: %s", code, stderr.String())
	}
	parts := t.TempDir()
	ctx := &stepsCtx{Context: context.Background()}
	ctx.n.Store(4) // 3 steps per epoch: stop inside the second epoch
	stderr.Reset()
	if code := run(ctx, append(args, "-out", parts), &stdout, &stderr); code != exitInterrupted {
		t.Fatalf("interrupted run: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "-resume "+filepath.Join(parts, "dropout+vat.last.ckpt")) {
		t.Errorf("no resume hint: %q", stderr.String())
	}
	stderr.Reset()
	resume := []string{"-resume", filepath.Join(parts, "dropout+vat.last.ckpt"), "-train-limit", "300", "-test-limit", "100", "-save", "-progress=false", "-out", parts}
	if code := run(context.Background(), resume, &stdout, &stderr); code != exitOK {
		t.Fatalf("resumed run: exit %d: %s", code, stderr.String())
	}
	a, err1 := os.ReadFile(filepath.Join(whole, "dropout+vat.safetensors"))
	b, err2 := os.ReadFile(filepath.Join(parts, "dropout+vat.safetensors"))
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
		t.Fatalf("resumed weights differ from the uninterrupted run's (%v, %v)", err1, err2)
	}
	if r := readResults(t, parts); len(r.Runs) != 1 || len(r.Runs[0].Epochs) != 2 || r.Runs[0].Interrupted {
		t.Fatalf("results after resume: %+v", r.Runs)
	}
	for _, f := range []string{"dropout+vat.last.ckpt", "dropout+vat.best.ckpt"} {
		if _, err := os.Stat(filepath.Join(whole, f)); err != nil {
			t.Errorf("checkpoint: %v", err)
		}
	}

	// -load evaluates the saved file without training, and -robustness
	// reports on it.
	stdout.Reset()
	stderr.Reset()
	load := []string{"-load", filepath.Join(whole, "dropout+vat.safetensors"), "-test-limit", "50", "-robustness", "-out", t.TempDir()}
	if code := run(context.Background(), load, &stdout, &stderr); code != exitOK {
		t.Fatalf("-load: exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"dropout+vat.safetensors", "test acc", "virtual-adversarial perturbations", "(50 test images)"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("-load -robustness output lacks %q: %s", want, stdout.String())
		}
	}
}

func TestResumeAndLoadFlags(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.ckpt")
	os.WriteFile(junk, []byte("not a checkpoint"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-resume", "x.ckpt", "-seed", "3"}, "-seed"},
		{[]string{"-resume", "x.ckpt", "-runs", "vat"}, "-runs"},
		{[]string{"-resume", "x.ckpt", "-load", "y"}, "choose one"},
		{[]string{"-load", "y", "-epochs", "2"}, "-epochs"},
		{[]string{"-load", "a,,b"}, "empty file name"},
		{[]string{"-digits-eps", "0"}, "-digits-eps"},
		{[]string{"-resume", junk, "-test-limit", "10", "-train-limit", "10"}, junk},
		{[]string{"-load", junk, "-test-limit", "10"}, junk},
		{[]string{"-load", filepath.Join(dir, "missing.safetensors"), "-test-limit", "10"}, "missing.safetensors"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append(tc.args, "-out", dir), &stdout, &stderr)
		msg := stderr.String()
		if i := strings.Index(msg, "error: "); i >= 0 {
			msg = msg[i:]
		}
		if code != exitError || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, tc.want) {
			t.Errorf("%v: exit %d, stderr %q: want one error line mentioning %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
