package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vaultstore/vaultstore"
)

// BenchmarkRotate100kCLIvsLibrary rotates 100,000 v3 records
// (DefaultCryptoConfig) in a file SQLite database, alternately with the
// library's own TokensChangePasswordWithOptions in this process and with
// the built command, each from a cold start (a new store; for the command,
// a new process) and on a connection opened the same way (the command's
// --db handling). Each iteration does one of each, in opposite directions,
// and the benchmark reports the medians of both and their ratio. The
// command's stdout is a pipe, so it prints plain progress lines.
//
// Run it without the race detector:
//
//	go test -run '^$' -bench BenchmarkRotate100kCLIvsLibrary -benchtime 3x ./cmd/vaultstore
func BenchmarkRotate100kCLIvsLibrary(b *testing.B) {
	const n = 100000
	path := filepath.Join(b.TempDir(), "vault.db")
	seed := exec.Command(seeder(b), path, fmt.Sprint(n))
	seed.Env = append(os.Environ(), "SEED_PASSWORD="+rotOld, "SEED_CRYPTO=default")
	if out, err := seed.CombinedOutput(); err != nil {
		b.Fatalf("seed: %v\n%s", err, out)
	}
	bin := binary(b)
	dsn := "sqlite:" + path

	library := func(from, to string) time.Duration {
		start := time.Now()
		target, err := parseDSN(dsn)
		if err != nil {
			b.Fatal(err)
		}
		db, err := target.open(false)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		s, err := vaultstore.NewStore(vaultstore.NewStoreOptions{VaultTableName: "vault", VaultMetaTableName: "vault_meta", DB: db})
		if err != nil {
			b.Fatal(err)
		}
		p, err := s.TokensChangePasswordWithOptions(context.Background(), from, to, vaultstore.ChangePasswordOptions{})
		if err != nil || p.Changed != n {
			b.Fatalf("library rotation: %+v, %v", p, err)
		}
		return time.Since(start)
	}
	command := func(from, to string) time.Duration {
		start := time.Now()
		cmd := exec.Command(bin, "rotate", "--db", dsn)
		cmd.Env = append(os.Environ(), "VAULTSTORE_PASSWORD="+from, "VAULTSTORE_NEW_PASSWORD="+to)
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("command rotation: %v", err)
		}
		return time.Since(start)
	}

	var libTimes, cliTimes []time.Duration
	for b.Loop() {
		libTimes = append(libTimes, library(rotOld, rotNew))
		cliTimes = append(cliTimes, command(rotNew, rotOld))
	}
	lib, cli := median(libTimes), median(cliTimes)
	b.ReportMetric(lib.Seconds(), "library-s")
	b.ReportMetric(cli.Seconds(), "command-s")
	b.ReportMetric(cli.Seconds()/lib.Seconds(), "command/library")
	b.Logf("library %v, command %v (runs: library %v, command %v)", lib, cli, libTimes, cliTimes)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkProgressBarUpdate is the cost of one update of the terminal bar
// (rendered into io.Discard), which rotate pays once per batch: a rotation
// of 100,000 records with the default batch of 500 makes 200 of them.
func BenchmarkProgressBarUpdate(b *testing.B) {
	bar := &barProgress{w: io.Discard, verb: "rotate"}
	p := vaultstore.ChangePasswordProgress{Total: 100000}
	for b.Loop() {
		p.Scanned = (p.Scanned + 500) % p.Total
		p.Changed = p.Scanned
		bar.update(p)
	}
}
