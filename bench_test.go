package vaultstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/vaultstore/vaultstore"
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
// DefaultCryptoConfig: the settings an application ships with.
func benchStore(b *testing.B, modify func(*vaultstore.NewStoreOptions)) *vaultstore.Store {
	b.Helper()
	return newStore(b, openFileSQLite(b), func(o *vaultstore.NewStoreOptions) {
		o.CryptoConfig = vaultstore.DefaultCryptoConfig()
		modify(o)
	})
}

func BenchmarkTokenCreate(b *testing.B) {
	for _, m := range benchModes {
		b.Run(m.name, func(b *testing.B) {
			s := benchStore(b, m.modify)
			ctx := context.Background()
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
			for b.Loop() {
				if _, err := s.TokenRead(ctx, tok, testPassword); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTokensRead20 reads 20 tokens in one call; the cache is emptied
// between calls only in the v2-nocache mode, by construction.
func BenchmarkTokensRead20(b *testing.B) {
	for _, m := range benchModes {
		b.Run(m.name, func(b *testing.B) {
			s := benchStore(b, m.modify)
			ctx := context.Background()
			tokens := make([]string, 20)
			for i := range tokens {
				tok, err := s.TokenCreate(ctx, fmt.Sprint("value ", i), testPassword, 24)
				if err != nil {
					b.Fatal(err)
				}
				tokens[i] = tok
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
			tokens := make([]string, 16)
			for i := range tokens {
				tok, err := s.TokenCreate(ctx, fmt.Sprint("value ", i), testPassword, 24)
				if err != nil {
					b.Fatal(err)
				}
				tokens[i] = tok
			}
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
