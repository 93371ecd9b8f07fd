package vaultstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
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
