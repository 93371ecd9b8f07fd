package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vaultstore/vaultstore"
)

// rotationFlags are the flags rotate and upgrade share.
type rotationFlags struct {
	dryRun    bool
	batchSize int
	interval  time.Duration
}

func (f *rotationFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "count what would change and write nothing")
	cmd.Flags().IntVar(&f.batchSize, "batch-size", 0, "records per batch and transaction, 1..10000 (0: the library's 500)")
	cmd.Flags().DurationVar(&f.interval, "progress-interval", time.Second, "time between plain progress lines when stdout is not a terminal")
}

type rotationResult struct {
	Command     string  `json:"command"`
	DryRun      bool    `json:"dry_run"`
	Complete    bool    `json:"complete"`
	Interrupted bool    `json:"interrupted"`
	Total       int     `json:"total"`
	Scanned     int     `json:"scanned"`
	Changed     int     `json:"changed"`
	FromV1      int     `json:"from_v1"`
	FromV2      int     `json:"from_v2"`
	FromV3      int     `json:"from_v3"`
	Skipped     int     `json:"skipped"`
	Seconds     float64 `json:"seconds"`
}

func (a *app) rotateCommand() *cobra.Command {
	var f rotationFlags
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Re-encrypt every value under the password with the new password",
		Long: `rotate re-encrypts, with the new password, every value (live, expired and
soft-deleted) that opens with the password, in batches, each batch in one
transaction (TokensChangePasswordWithOptions). Values under other passwords
are left alone.

Progress: a bar with rate and ETA when stdout is a terminal, otherwise a plain
line at once and then every --progress-interval (on stderr with --json).

Ctrl-C (SIGINT) or SIGTERM stops after the batch in progress is committed and
prints the exact counts so far; every value then opens with the old or the new
password, and running the same command again finishes the work. A second
signal stops at once.`,
		Example: `  export VAULTSTORE_DB=sqlite:vault.db
  VAULTSTORE_PASSWORD=old VAULTSTORE_NEW_PASSWORD=new vaultstore rotate
  vaultstore rotate --password-file old.txt --new-password-file new.txt --dry-run --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, db, err := a.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer db.Close()
			oldPw, err := a.password()
			if err != nil {
				return err
			}
			newPw, err := a.newPassword()
			if err != nil {
				return err
			}
			return a.runRotation(cmd.Context(), s, "rotate", oldPw, newPw, f)
		},
	}
	f.add(cmd)
	return cmd
}

// runRotation runs TokensChangePasswordWithOptions with progress and
// signal handling, and prints the result.
func (a *app) runRotation(ctx context.Context, s *vaultstore.Store, verb, oldPw, newPw string, f rotationFlags) error {
	if f.batchSize < 0 {
		return usagef("--batch-size must not be negative")
	}
	if f.interval <= 0 {
		return usagef("--progress-interval must be positive")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The first signal asks for a stop at the next batch boundary: the
	// Progress callback, which runs after each committed batch, cancels
	// the context, and the library returns before reading the next page.
	// A second signal cancels at once.
	var stop atomic.Bool
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		for range sigs {
			if stop.Swap(true) {
				cancel()
				return
			}
			fmt.Fprintf(a.stderr, "\n%s: stopping after the current batch (signal again to stop at once)\n", verb)
		}
	}()

	progressOut := a.stdout
	if a.json {
		progressOut = a.stderr
	}
	bar := newProgress(progressOut, verb, f.interval)
	start := time.Now()
	p, err := s.TokensChangePasswordWithOptions(ctx, oldPw, newPw, vaultstore.ChangePasswordOptions{
		DryRun:    f.dryRun,
		BatchSize: f.batchSize,
		Progress: func(p vaultstore.ChangePasswordProgress) {
			bar.update(p)
			if stop.Load() {
				cancel()
			}
		},
	})
	bar.done()
	interrupted := stop.Load() && errors.Is(err, context.Canceled)
	if err != nil && !interrupted {
		return fmt.Errorf("%s failed after changing %d records (run it again to finish): %w", verb, p.Changed, err)
	}
	r := rotationResult{
		Command: verb, DryRun: f.dryRun, Complete: !interrupted, Interrupted: interrupted,
		Total: p.Total, Scanned: p.Scanned, Changed: p.Changed,
		FromV1: p.FromV1, FromV2: p.FromV2, FromV3: p.FromV3, Skipped: p.Skipped,
		Seconds: time.Since(start).Seconds(),
	}
	if a.json {
		a.printJSON(r)
	} else {
		state := "done"
		switch {
		case interrupted:
			state = "interrupted; run the same command again to finish"
		case f.dryRun:
			state = "dry run, nothing written"
		}
		changed := "changed"
		if f.dryRun {
			changed = "would change"
		}
		a.printf("%s: %s\n", verb, state)
		a.printf("  total:    %d\n", r.Total)
		a.printf("  scanned:  %d\n", r.Scanned)
		a.printf("  %s: %d (from v1 %d, v2 %d, v3 %d)\n", changed, r.Changed, r.FromV1, r.FromV2, r.FromV3)
		a.printf("  skipped:  %d\n", r.Skipped)
		a.printf("  time:     %s\n", time.Duration(r.Seconds*float64(time.Second)).Round(time.Millisecond))
	}
	if interrupted {
		return failure{fmt.Sprintf("%s interrupted after changing %d records", verb, p.Changed)}
	}
	return nil
}
