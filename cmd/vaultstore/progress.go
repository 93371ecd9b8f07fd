package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/vaultstore/vaultstore"
)

// progressReporter shows a rotation's progress.
type progressReporter interface {
	update(p vaultstore.ChangePasswordProgress)
	// done ends the display before the summary is printed.
	done()
}

// newProgress picks a bar when w is a terminal and plain lines otherwise,
// the first at once and then at most one per interval.
func newProgress(w io.Writer, verb string, interval time.Duration) progressReporter {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &barProgress{w: w, verb: verb}
	}
	return &lineProgress{w: w, verb: verb, interval: interval, start: time.Now()}
}

// barProgress draws a progressbar/v3 bar: records scanned of the total,
// rate, elapsed time and ETA, with the changed and skipped counts.
type barProgress struct {
	w    io.Writer
	verb string
	bar  *progressbar.ProgressBar
}

func (b *barProgress) update(p vaultstore.ChangePasswordProgress) {
	if b.bar == nil {
		b.bar = progressbar.NewOptions64(int64(max(p.Total, p.Scanned)),
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("records"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionSetRenderBlankState(true),
		)
	}
	if int64(p.Scanned) > b.bar.GetMax64() {
		// Records added during the rotation.
		b.bar.ChangeMax64(int64(p.Scanned))
	}
	// Describe renders with the old count, Set64 again with both new: the
	// bar is not throttled, so the last render always matches (one batch
	// costs far more than two renders).
	b.bar.Describe(fmt.Sprintf("%s: changed %d, skipped %d", b.verb, p.Changed, p.Skipped))
	_ = b.bar.Set64(int64(p.Scanned))
}

func (b *barProgress) done() {
	if b.bar != nil {
		_ = b.bar.Exit()
		fmt.Fprintln(b.w)
	}
}

// lineProgress prints plain lines, without terminal escape codes.
type lineProgress struct {
	w        io.Writer
	verb     string
	interval time.Duration
	start    time.Time
	last     time.Time
	printed  bool
	final    vaultstore.ChangePasswordProgress
	shown    bool // final was printed
}

func (l *lineProgress) update(p vaultstore.ChangePasswordProgress) {
	l.final, l.shown = p, false
	now := time.Now()
	if l.printed && now.Sub(l.last) < l.interval {
		return
	}
	l.print(p, now)
}

func (l *lineProgress) print(p vaultstore.ChangePasswordProgress, now time.Time) {
	l.printed, l.last, l.shown = true, now, true
	elapsed := now.Sub(l.start)
	line := fmt.Sprintf("%s: scanned %d of %d, changed %d, skipped %d", l.verb, p.Scanned, p.Total, p.Changed, p.Skipped)
	if s := elapsed.Seconds(); s > 0 && p.Scanned > 0 {
		rate := float64(p.Scanned) / s
		line += fmt.Sprintf(", %.0f records/s", rate)
		if left := p.Total - p.Scanned; left > 0 {
			line += ", ETA " + (time.Duration(float64(left)/rate) * time.Second).Round(time.Second).String()
		}
	}
	fmt.Fprintln(l.w, line)
}

func (l *lineProgress) done() {
	if l.printed && !l.shown {
		l.print(l.final, time.Now())
	}
}
