// Package cli holds what the example programs share on the command line:
// the progress report on stderr.
package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Progress reports a long computation on a writer (stderr): on a terminal,
// a one-line bar with an ETA redrawn in place, at most five times a
// second; elsewhere (a log file, a pipe) no bar, so that a background
// run's log holds only the plain lines written with Line.
type Progress struct {
	w       io.Writer
	name    string
	on, tty bool
	start   time.Time
	last    time.Time
	base    float64 // work done before this process's first update, -1 until then
}

// NewProgress returns a report labelled name; on false silences it.
func NewProgress(w io.Writer, name string, on bool) *Progress {
	return &Progress{w: w, name: name, on: on, tty: IsTerminal(w), start: time.Now(), base: -1}
}

// IsTerminal says whether w is a terminal (a character device).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Update redraws the bar for done of total units, with status (e.g. the
// epoch and the loss) before it. The ETA extrapolates from this process's
// own progress, so a resumed run's first steps do not skew it.
func (p *Progress) Update(done, total float64, status string) {
	if !p.on || !p.tty || (time.Since(p.last) < 200*time.Millisecond && done < total) {
		return
	}
	p.last = time.Now()
	if p.base < 0 {
		p.base, p.start = done-1, time.Now()
	}
	eta := time.Duration(float64(time.Since(p.start)) * (total - done) / (done - p.base))
	const width = 30
	filled := min(width, max(0, int(width*done/total)))
	fmt.Fprintf(p.w, "\r%-12s %s [%s%s] %3.0f%%  ETA %v   ", p.name, status,
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), 100*done/total, eta.Round(time.Second))
}

// Line writes one line, prefixed by the report's name, replacing the bar
// on a terminal.
func (p *Progress) Line(format string, a ...any) {
	if !p.on {
		return
	}
	start, pad := "", ""
	if p.tty {
		start, pad = "\r", strings.Repeat(" ", 20)
	}
	fmt.Fprintf(p.w, "%s%-12s %s%s\n", start, p.name, fmt.Sprintf(format, a...), pad)
}

// Done clears the bar.
func (p *Progress) Done() {
	if p.on && p.tty {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", 110)+"\r")
	}
}
