package vaultstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaultstore/vaultstore"
	"golang.org/x/crypto/argon2"
)

// seedRows inserts n raw rows straight through SQL, every other one
// expired, and returns the number of expired rows.
func seedRows(tb testing.TB, db *sql.DB, table string, n int) int {
	tb.Helper()
	tx, err := db.Begin()
	if err != nil {
		tb.Fatal(err)
	}
	stmt, err := tx.Prepare("INSERT INTO " + table + " (id, vault_token, vault_value, created_at, updated_at, expires_at, soft_deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
	if err != nil {
		tb.Fatal(err)
	}
	expired := 0
	for i := range n {
		expires := vaultstore.MAX_DATETIME
		if i%2 == 0 {
			expires = "2000-01-01 00:00:00"
			expired++
		}
		if _, err := stmt.Exec(fmt.Sprintf("%032d", i), fmt.Sprintf("tk_seed%012d", i), "v2:AAAA", "2020-01-01 00:00:00", "2020-01-01 00:00:00", expires, vaultstore.MAX_DATETIME); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	return expired
}

// TestTokensExpiredDeleteAllocatesIndependentlyOfRows checks that the
// cleanup is one statement and loads no rows: deleting 10,000 expired rows
// allocates about as much as deleting 100.
func TestTokensExpiredDeleteAllocatesIndependentlyOfRows(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 20,000 rows")
	}
	allocs := func(rows int) uint64 {
		db := openMemorySQLite(t)
		s := newStore(t, db)
		expired := seedRows(t, db, s.GetVaultTableName(), rows)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		n, err := s.TokensExpiredDelete(context.Background())
		runtime.ReadMemStats(&after)
		if err != nil || n != int64(expired) {
			t.Fatalf("deleted %d, %v; want %d", n, err, expired)
		}
		return after.Mallocs - before.Mallocs
	}
	small, large := allocs(200), allocs(20000)
	t.Logf("allocations: %d deleting 100 rows, %d deleting 10,000", small, large)
	if large > small*2 {
		t.Errorf("TokensExpiredDelete allocates in proportion to rows: %d for 100 rows, %d for 10,000", small, large)
	}
}

// BenchmarkTokensExpiredDelete deletes 10,000 expired rows of 20,000 per
// iteration (the seeding is not timed).
func BenchmarkTokensExpiredDelete(b *testing.B) {
	db := openFileSQLite(b)
	s := newStore(b, db)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if _, err := db.Exec("DELETE FROM " + s.GetVaultTableName()); err != nil {
			b.Fatal(err)
		}
		want := seedRows(b, db, s.GetVaultTableName(), 20000)
		b.StartTimer()
		n, err := s.TokensExpiredDelete(ctx)
		if err != nil || n != int64(want) {
			b.Fatalf("deleted %d, %v; want %d", n, err, want)
		}
	}
}

// benchModes are the ways a store can spend key derivations: v3 (the
// default), v2 with the cache, and v2 without it, which does what the
// original VaultStore does (one Argon2id per create and per read).
var benchModes = []struct {
	name   string
	modify func(*vaultstore.NewStoreOptions)
}{
	{"v3", func(*vaultstore.NewStoreOptions) {}},
	{"v2", writeV2},
	{"v2-nocache", func(o *vaultstore.NewStoreOptions) { writeV2(o); o.KeyCacheSize = -1 }},
}

// benchStore is a store on a file-backed SQLite database in WAL mode with
// synchronous=NORMAL (SQLite's recommendation for WAL: no fsync per commit,
// durable across process crashes) and DefaultCryptoConfig: the settings an
// application ships with.
func benchStore(b *testing.B, modify func(*vaultstore.NewStoreOptions)) *vaultstore.Store {
	b.Helper()
	return newStore(b, openFileSQLite(b), func(o *vaultstore.NewStoreOptions) {
		o.CryptoConfig = vaultstore.DefaultCryptoConfig()
		modify(o)
	})
}

// createTokens stores "value i" under testPassword with a generated token,
// for i in [0, n), and returns the tokens.
func createTokens(b *testing.B, s *vaultstore.Store, n int) []string {
	b.Helper()
	tokens := make([]string, n)
	for i := range tokens {
		tok, err := s.TokenCreate(context.Background(), fmt.Sprint("value ", i), testPassword, 24)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = tok
	}
	return tokens
}

func BenchmarkTokenCreate(b *testing.B) {
	for _, m := range benchModes {
		b.Run(m.name, func(b *testing.B) {
			s := benchStore(b, m.modify)
			ctx := context.Background()
			// Warm: the first v3 write derives the password's key and makes
			// the vault salt; BenchmarkTokenReadCold measures that cost.
			if _, err := s.TokenCreate(ctx, "warm-up", testPassword, 24); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := s.TokenCreate(ctx, "sk_live_51H8example", testPassword, 24); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkTokenRead(b *testing.B) {
	for _, m := range benchModes {
		b.Run(m.name, func(b *testing.B) {
			s := benchStore(b, m.modify)
			ctx := context.Background()
			tok, err := s.TokenCreate(ctx, "sk_live_51H8example", testPassword, 24)
			if err != nil {
				b.Fatal(err)
			}
			// Warm: the first read of a v2 value derives its key.
			if _, err := s.TokenRead(ctx, tok, testPassword); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := s.TokenRead(ctx, tok, testPassword); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTokensRead20 reads 20 tokens in one call, warm: the v3 key and
// the v2 keys are cached after the first call, except in v2-nocache mode,
// which derives 20 keys per call as the original does.
func BenchmarkTokensRead20(b *testing.B) {
	for _, m := range benchModes {
		b.Run(m.name, func(b *testing.B) {
			s := benchStore(b, m.modify)
			ctx := context.Background()
			tokens := createTokens(b, s, 20)
			if _, err := s.TokensRead(ctx, tokens, testPassword); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if got, err := s.TokensRead(ctx, tokens, testPassword); err != nil || len(got) != 20 {
					b.Fatal(len(got), err)
				}
			}
		})
	}
}

// BenchmarkTokenReadParallel16 reads from 16 goroutines at once and reports
// how much memory the process took from the OS meanwhile (sys-MiB): the
// KDF bound, not the number of readers, must set it.
func BenchmarkTokenReadParallel16(b *testing.B) {
	for _, m := range benchModes {
		b.Run(m.name, func(b *testing.B) {
			s := benchStore(b, m.modify)
			ctx := context.Background()
			tokens := createTokens(b, s, 16)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
			var next atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				tok := tokens[next.Add(1)%16]
				for pb.Next() {
					if _, err := s.TokenRead(ctx, tok, testPassword); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.Sys-before.Sys)/(1<<20), "sys-MiB")
		})
	}
}

// BenchmarkTokensChangePassword10kV3 rotates 10,000 v3 records under
// DefaultCryptoConfig, half of them under the old password, end to end:
// each iteration opens a fresh store (an empty key cache) and rotates the
// half one way, the next iteration back.
func BenchmarkTokensChangePassword10kV3(b *testing.B) {
	db := openFileSQLite(b)
	s := newStore(b, db, func(o *vaultstore.NewStoreOptions) { o.CryptoConfig = vaultstore.DefaultCryptoConfig() })
	const total = 10000
	seedEncrypted(b, s, total/2, pwOld)
	for i := total / 2; i < total; i++ {
		mustCustom(b, s, tokenN(i), "other", pwOther)
	}
	from, to := pwOld, pwNew
	for b.Loop() {
		fresh := reopen(b, s, vaultstore.NewStoreOptions{DB: db, CryptoConfig: vaultstore.DefaultCryptoConfig()})
		n, err := fresh.TokensChangePassword(context.Background(), from, to)
		if err != nil || n != total/2 {
			b.Fatalf("rotation = %d, %v", n, err)
		}
		from, to = to, from
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkTokensChangePasswordV2 rotates 1,000 v2 records under
// LightweightCryptoConfig (one Argon2id each to test the old password; the
// new values are v3) with one KDF worker and with the default pool.
func BenchmarkTokensChangePasswordV2(b *testing.B) {
	for _, workers := range []int{1, 0} {
		name := "workers=1"
		if workers == 0 {
			name = fmt.Sprintf("workers=%d", runtime.GOMAXPROCS(0))
		}
		b.Run(name, func(b *testing.B) {
			db := openFileSQLite(b)
			light := func(o *vaultstore.NewStoreOptions) { o.CryptoConfig = vaultstore.LightweightCryptoConfig() }
			writer := newStore(b, db, light, writeV2)
			const total = 1000
			seedEncrypted(b, writer, total, pwOld)
			first := true
			cpuBusy, cpuOK := 0.0, true
			for b.Loop() {
				b.StopTimer()
				if !first {
					// Put the values back into v2 under the old password.
					if _, err := writer.TokensChangePassword(context.Background(), pwNew, pwOld); err != nil {
						b.Fatal(err)
					}
				}
				first = false
				s := reopen(b, writer, vaultstore.NewStoreOptions{DB: db}, light, func(o *vaultstore.NewStoreOptions) { o.MaxConcurrentKDF = workers })
				cpu0, _ := processCPUSeconds()
				b.StartTimer()
				if n, err := s.TokensChangePassword(context.Background(), pwOld, pwNew); err != nil || n != total {
					b.Fatalf("rotation = %d, %v", n, err)
				}
				b.StopTimer()
				cpu1, ok := processCPUSeconds()
				cpuBusy, cpuOK = cpuBusy+cpu1-cpu0, cpuOK && ok
				b.StartTimer()
			}
			b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			if cpuOK {
				// Cores kept busy on average: with Argon2 parallelism 2,
				// one worker already keeps close to two busy, which bounds
				// what a second worker can add on a two-core machine.
				b.ReportMetric(cpuBusy/b.Elapsed().Seconds(), "cores")
			}
		})
	}
}

// BenchmarkTokensChangePassword100kRSS rotates 100,000 v3 records in a
// child process and reports that process's peak resident set size
// (VmHWM): rotation streams in batches, so it must not grow with the table.
func BenchmarkTokensChangePassword100kRSS(b *testing.B) {
	path := b.TempDir() + "/vault.db"
	db := openSQLiteFile(b, path)
	s := newStore(b, db, func(o *vaultstore.NewStoreOptions) {
		o.VaultTableName, o.VaultMetaTableName = "vault", "vault_meta"
		o.CryptoConfig = vaultstore.DefaultCryptoConfig()
	})
	const total = 100000
	seedEncrypted(b, s, total, pwOld)
	from, to := pwOld, pwNew
	var peak float64
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRotationPeakRSSChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "VAULTSTORE_RSS_CHILD="+path, "VAULTSTORE_RSS_FROM="+from, "VAULTSTORE_RSS_TO="+to)
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		var changed int
		var kib float64
		if _, err := fmt.Sscanf(lastLine(string(out), "changed "), "changed %d peak-kib %f", &changed, &kib); err != nil || changed != total {
			b.Fatalf("child said %q (%v)", out, err)
		}
		peak = max(peak, kib/1024)
		from, to = to, from
	}
	b.ReportMetric(peak, "peak-RSS-MiB")
}

// processCPUSeconds is the user plus system CPU time of this process so
// far, from /proc/self/stat (Linux); ok is false where that is missing.
func processCPUSeconds() (seconds float64, ok bool) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// The command name, field 2, may hold spaces; utime and stime are
	// fields 14 and 15, counted in USER_HZ (100 on Linux) ticks.
	end := strings.LastIndexByte(string(stat), ')')
	fields := strings.Fields(string(stat[end+1:]))
	if end < 0 || len(fields) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (utime + stime) / 100, true
}

// lastLine is the last line of s that starts with prefix, or "".
func lastLine(s, prefix string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], prefix) {
			return lines[i]
		}
	}
	return ""
}

// TestRotationPeakRSSChild is the child of
// BenchmarkTokensChangePassword100kRSS; without its environment it does
// nothing.
func TestRotationPeakRSSChild(t *testing.T) {
	path := os.Getenv("VAULTSTORE_RSS_CHILD")
	if path == "" {
		t.Skip("runs only as the child of BenchmarkTokensChangePassword100kRSS")
	}
	db := openSQLiteFile(t, path)
	s, err := vaultstore.NewStore(vaultstore.NewStoreOptions{VaultTableName: "vault", VaultMetaTableName: "vault_meta", DB: db, CryptoConfig: vaultstore.DefaultCryptoConfig()})
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.TokensChangePassword(context.Background(), os.Getenv("VAULTSTORE_RSS_FROM"), os.Getenv("VAULTSTORE_RSS_TO"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("changed %d peak-kib %s\n", n, peakRSSKiB(t))
}

// peakRSSKiB is this process's peak resident set size in KiB, the VmHWM of
// /proc/self/status ("" without that line); the test is skipped where the
// file is missing.
func peakRSSKiB(t *testing.T) string {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		}
	}
	return ""
}

// BenchmarkTokensRead100 reads 100 v3 tokens under one password in one
// call, with the key cached as it is in a running application.
func BenchmarkTokensRead100(b *testing.B) {
	s := benchStore(b, func(*vaultstore.NewStoreOptions) {})
	ctx := context.Background()
	tokens := createTokens(b, s, 100)
	for b.Loop() {
		if got, err := s.TokensRead(ctx, tokens, testPassword); err != nil || len(got) != 100 {
			b.Fatal(len(got), err)
		}
	}
}

// BenchmarkArgon2idDefault is one raw Argon2id derivation with
// DefaultCryptoConfig: the yardstick for BenchmarkTokenReadCold.
func BenchmarkArgon2idDefault(b *testing.B) {
	c := vaultstore.DefaultCryptoConfig()
	salt := make([]byte, 16)
	for b.Loop() {
		argon2.IDKey([]byte(testPassword), salt, uint32(c.Iterations), uint32(c.Memory), uint8(c.Parallelism), uint32(c.KeyLength))
	}
}

// BenchmarkTokenReadCold is the first read of a process: a new store, an
// empty key cache, one TokenRead of a v3 value.
func BenchmarkTokenReadCold(b *testing.B) {
	db := openFileSQLite(b)
	s := newStore(b, db, func(o *vaultstore.NewStoreOptions) { o.CryptoConfig = vaultstore.DefaultCryptoConfig() })
	ctx := context.Background()
	tok, err := s.TokenCreate(ctx, "sk_live_51H8example", testPassword, 24)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		fresh := reopen(b, s, vaultstore.NewStoreOptions{DB: db, CryptoConfig: vaultstore.DefaultCryptoConfig()})
		if _, err := fresh.TokenRead(ctx, tok, testPassword); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdReaders16x4 starts a process with an empty key cache in
// which 16 goroutines each read 4 v3 tokens under one password, and reports
// the wall time of the reads and the process's peak RSS.
func BenchmarkColdReaders16x4(b *testing.B) {
	path := b.TempDir() + "/vault.db"
	db := openSQLiteFile(b, path)
	s := newStore(b, db, func(o *vaultstore.NewStoreOptions) {
		o.VaultTableName, o.VaultMetaTableName = "vault", "vault_meta"
		o.CryptoConfig = vaultstore.DefaultCryptoConfig()
	})
	seedEncrypted(b, s, 64, testPassword)
	var wall, peak []float64
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestColdReadersChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "VAULTSTORE_COLD_CHILD="+path)
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		var ns, kib float64
		if _, err := fmt.Sscanf(lastLine(string(out), "wall-ns "), "wall-ns %f peak-kib %f", &ns, &kib); err != nil {
			b.Fatalf("child said %q", out)
		}
		wall = append(wall, ns/1e6)
		peak = append(peak, kib/1024)
	}
	b.ReportMetric(slices.Max(wall), "max-wall-ms")
	b.ReportMetric(slices.Max(peak), "peak-RSS-MiB")
}

// TestColdReadersChild is the child of BenchmarkColdReaders16x4; without
// its environment it does nothing.
func TestColdReadersChild(t *testing.T) {
	path := os.Getenv("VAULTSTORE_COLD_CHILD")
	if path == "" {
		t.Skip("runs only as the child of BenchmarkColdReaders16x4")
	}
	db := openSQLiteFile(t, path)
	s, err := vaultstore.NewStore(vaultstore.NewStoreOptions{VaultTableName: "vault", VaultMetaTableName: "vault_meta", DB: db})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 4 {
				if _, err := s.TokenRead(ctx, tokenN(g*4+i), testPassword); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	fmt.Printf("wall-ns %d peak-kib %s\n", wall.Nanoseconds(), peakRSSKiB(t))
}

// ---------------------------------------------------------------------------
// Hot paths beside their raw baselines (issue 14)
//
// Each benchmark below runs on a file SQLite database in WAL mode and on
// every server whose DSN is set, with 5,000 v3 tokens under
// DefaultCryptoConfig and a warm key cache. "ours" is the public method;
// "raw" is what the method cannot avoid: the same statement prepared once
// through database/sql and the same driver, plus the store's own sealing or
// opening of the value (BenchSeal, BenchOpen). Compare the two with
// benchstat; the targets are ours/raw ≤ 1.5 (TokenExists: 1.3).

// hotTokens is the number of tokens in the hot-path benchmarks' table.
const hotTokens = 5000

// hotBench is a seeded store and what its raw baselines need.
type hotBench struct {
	db      *sql.DB
	s       *vaultstore.Store
	dialect string
	table   string
}

// forEachHotDatabase runs fn as a sub-benchmark per database, on a store
// seeded with hotTokens v3 values (tokenN(i) holds "value i").
func forEachHotDatabase(b *testing.B, fn func(b *testing.B, h hotBench)) {
	for _, d := range databaseBackends() {
		b.Run(d.name, func(b *testing.B) {
			db := d.open(b)
			s := newStore(b, db, func(o *vaultstore.NewStoreOptions) { o.CryptoConfig = vaultstore.DefaultCryptoConfig() })
			seedEncrypted(b, s, hotTokens, testPassword)
			fn(b, hotBench{db: db, s: s, dialect: d.dialect, table: s.GetVaultTableName()})
		})
	}
}

// prepare prepares query, written with ? placeholders, in the dialect of h,
// and closes it when the benchmark ends.
func (h hotBench) prepare(b *testing.B, query string) *sql.Stmt {
	b.Helper()
	st, err := h.db.Prepare(placeholders(h.dialect, query))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// rawNow is the raw baselines' clock reading in the stored layout.
func rawNow() string { return time.Now().UTC().Format("2006-01-02 15:04:05") }

func BenchmarkHotTokenRead(b *testing.B) {
	forEachHotDatabase(b, func(b *testing.B, h hotBench) {
		ctx := context.Background()
		b.Run("ours", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := h.s.TokenRead(ctx, tokenN(i%hotTokens), testPassword); err != nil {
					b.Fatal(err)
				}
				i += 7
			}
		})
		raw := func(query string) func(b *testing.B) {
			return func(b *testing.B) {
				st := h.prepare(b, query)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					tok := tokenN(i % hotTokens)
					var stored string
					var expires any
					if err := st.QueryRowContext(ctx, tok, rawNow()).Scan(&stored, &expires); err != nil {
						b.Fatal(err)
					}
					if _, err := vaultstore.BenchOpen(h.s, ctx, stored, testPassword, tok); err != nil {
						b.Fatal(err)
					}
					i += 7
				}
			}
		}
		b.Run("raw", raw("SELECT vault_value, expires_at FROM "+h.table+" WHERE vault_token = ? AND soft_deleted_at > ? LIMIT 1"))
		if h.dialect == "sqlite" {
			// The SQLite driver parses a column declared DATETIME into a
			// time.Time; the store reads expires_at as text through a CAST,
			// and so does this baseline.
			b.Run("raw-text", raw("SELECT vault_value, CAST(expires_at AS TEXT) FROM "+h.table+" WHERE vault_token = ? AND soft_deleted_at > ? LIMIT 1"))
		}
		// Total throughput from 16 goroutines; compare its ns/op with
		// ours' (one goroutine): the target is at least 1.6 times the
		// reads per second. database/sql keeps 2 idle connections unless
		// told otherwise, so 16 readers keep closing and reopening
		// connections, which for SQLite costs more than a read;
		// "-idle16" is the pool an application with 16 readers would set.
		parallel := func(idle int) func(b *testing.B) {
			return func(b *testing.B) {
				if idle > 0 {
					h.db.SetMaxIdleConns(idle)
					b.Cleanup(func() { h.db.SetMaxIdleConns(2) }) // database/sql's default
				}
				b.ReportAllocs()
				b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
				var next atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					i := int(next.Add(1)) * 997
					for pb.Next() {
						if _, err := h.s.TokenRead(ctx, tokenN(i%hotTokens), testPassword); err != nil {
							b.Error(err)
							return
						}
						i += 7
					}
				})
			}
		}
		b.Run("ours-parallel16", parallel(0))
		b.Run("ours-parallel16-idle16", parallel(16))
		// The raw read from 16 goroutines on the same pool: what the
		// driver and database allow, beside which to judge ours.
		b.Run("raw-parallel16-idle16", func(b *testing.B) {
			st := h.prepare(b, "SELECT vault_value, expires_at FROM "+h.table+" WHERE vault_token = ? AND soft_deleted_at > ? LIMIT 1")
			h.db.SetMaxIdleConns(16)
			b.Cleanup(func() { h.db.SetMaxIdleConns(2) })
			b.ReportAllocs()
			b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(1)) * 997
				for pb.Next() {
					tok := tokenN(i % hotTokens)
					var stored string
					var expires any
					if err := st.QueryRowContext(ctx, tok, rawNow()).Scan(&stored, &expires); err != nil {
						b.Error(err)
						return
					}
					if _, err := vaultstore.BenchOpen(h.s, ctx, stored, testPassword, tok); err != nil {
						b.Error(err)
						return
					}
					i += 7
				}
			})
		})
	})
}

func BenchmarkHotTokenCreate(b *testing.B) {
	forEachHotDatabase(b, func(b *testing.B, h hotBench) {
		ctx := context.Background()
		const value = "sk_live_51H8example"
		b.Run("ours", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.s.TokenCreate(ctx, value, testPassword, 24); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("raw", func(b *testing.B) {
			st := h.prepare(b, "INSERT INTO "+h.table+" (id, vault_token, vault_value, created_at, updated_at, expires_at, soft_deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
			// Random tokens of TokenCreate's length, and ids of the
			// store's shape (a time, then random digits), so that the
			// indexes take the same random inserts as ours.
			b.ReportAllocs()
			for b.Loop() {
				tok := "tk_" + rand.Text()[:21]
				stored, err := vaultstore.BenchSeal(h.s, ctx, value, testPassword, tok)
				if err != nil {
					b.Fatal(err)
				}
				now := time.Now().UTC()
				id := now.Format("20060102150405") + strings.ToLower(rand.Text()[:18])
				ts := now.Format("2006-01-02 15:04:05")
				if _, err := st.ExecContext(ctx, id, tok, stored, ts, ts, vaultstore.MAX_DATETIME, vaultstore.MAX_DATETIME); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

func BenchmarkHotTokensRead100(b *testing.B) {
	forEachHotDatabase(b, func(b *testing.B, h hotBench) {
		ctx := context.Background()
		tokens := make([]string, 100)
		for i := range tokens {
			tokens[i] = tokenN(i * 41 % hotTokens)
		}
		b.Run("ours", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if got, err := h.s.TokensRead(ctx, tokens, testPassword); err != nil || len(got) != len(tokens) {
					b.Fatal(len(got), err)
				}
			}
		})
		b.Run("raw", func(b *testing.B) {
			st := h.prepare(b, "SELECT vault_token, vault_value, expires_at FROM "+h.table+" WHERE soft_deleted_at > ? AND vault_token IN (?"+strings.Repeat(", ?", len(tokens)-1)+")")
			args := make([]any, 1+len(tokens))
			for i, t := range tokens {
				args[1+i] = t
			}
			b.ReportAllocs()
			for b.Loop() {
				args[0] = rawNow()
				rows, err := st.QueryContext(ctx, args...)
				if err != nil {
					b.Fatal(err)
				}
				out := make(map[string]string, len(tokens))
				for rows.Next() {
					var tok, stored string
					var expires any
					if err := rows.Scan(&tok, &stored, &expires); err != nil {
						b.Fatal(err)
					}
					v, err := vaultstore.BenchOpen(h.s, ctx, stored, testPassword, tok)
					if err != nil {
						b.Fatal(err)
					}
					out[tok] = v
				}
				if err := rows.Close(); err != nil || len(out) != len(tokens) {
					b.Fatal(len(out), err)
				}
			}
		})
	})
}

func BenchmarkHotTokenExists(b *testing.B) {
	forEachHotDatabase(b, func(b *testing.B, h hotBench) {
		ctx := context.Background()
		b.Run("ours", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if ok, err := h.s.TokenExists(ctx, tokenN(i%hotTokens)); err != nil || !ok {
					b.Fatal(ok, err)
				}
				i += 7
			}
		})
		b.Run("raw", func(b *testing.B) {
			st := h.prepare(b, "SELECT 1 FROM "+h.table+" WHERE vault_token = ? AND soft_deleted_at > ? LIMIT 1")
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				var one int
				if err := st.QueryRowContext(ctx, tokenN(i%hotTokens), rawNow()).Scan(&one); err != nil {
					b.Fatal(err)
				}
				i += 7
			}
		})
	})
}

// listRecords is the table size of the RecordList benchmarks.
const listRecords = 20000

// listStore is a store on a file SQLite database in WAL mode holding
// listRecords live records with 120-byte values (about a sealed short
// secret), inserted in id order as an application's would be.
func listStore(b *testing.B) *vaultstore.Store {
	b.Helper()
	db := openFileSQLite(b)
	s := newStore(b, db)
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := tx.Prepare("INSERT INTO " + s.GetVaultTableName() + " (id, vault_token, vault_value, created_at, updated_at, expires_at, soft_deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
	if err != nil {
		b.Fatal(err)
	}
	value := "v3:" + strings.Repeat("A", 117)
	for i := range listRecords {
		if _, err := stmt.Exec(fmt.Sprintf("2026%028d", i), fmt.Sprintf("tk_list%012d", i), value, "2026-01-01 00:00:00", "2026-01-01 00:00:00", vaultstore.MAX_DATETIME, vaultstore.MAX_DATETIME); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return s
}

// reportCPU reports the process's CPU time per unit while the benchmark
// ran (from /proc/self/stat, 10 ms ticks): on a machine shared with other
// work it tells the cost of single-threaded work better than wall time.
func reportCPU(b *testing.B, cpu0 float64, ok0 bool, units int, unit string) {
	cpu1, ok1 := processCPUSeconds()
	if ok0 && ok1 {
		b.ReportMetric((cpu1-cpu0)*1e3/float64(b.N)/float64(units), "cpu-ms/"+unit)
	}
}

// BenchmarkRecordListPages walks listRecords records in pages of 100 with
// SetLimit(100).SetOffset(k), as an admin screen pages through a vault;
// ms/page is the mean over the 200 pages.
func BenchmarkRecordListPages(b *testing.B) {
	s := listStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	cpu0, ok0 := processCPUSeconds()
	for b.Loop() {
		n := 0
		for off := 0; off < listRecords; off += 100 {
			page, err := s.RecordList(ctx, vaultstore.RecordQuery().SetLimit(100).SetOffset(off))
			if err != nil || len(page) != 100 {
				b.Fatal(len(page), err)
			}
			n += len(page)
		}
		if n != listRecords {
			b.Fatal(n)
		}
	}
	reportCPU(b, cpu0, ok0, listRecords/100, "page")
	b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N)/float64(listRecords/100), "ms/page")
}

// BenchmarkRecordListAll lists listRecords records with one RecordList.
func BenchmarkRecordListAll(b *testing.B) {
	s := listStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	cpu0, ok0 := processCPUSeconds()
	for b.Loop() {
		list, err := s.RecordList(ctx, vaultstore.RecordQuery())
		if err != nil || len(list) != listRecords {
			b.Fatal(len(list), err)
		}
	}
	reportCPU(b, cpu0, ok0, 1, "op")
}
