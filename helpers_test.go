package vaultstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/glebarez/sqlite" // registers "sqlite"
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"

	"github.com/vaultstore/vaultstore"
)

// Environment variables naming real database servers for the suite. Unset,
// the suite runs on SQLite alone.
const (
	envPostgresDSN = "VAULTSTORE_POSTGRES_DSN"
	envMySQLDSN    = "VAULTSTORE_MYSQL_DSN"
)

// backend is one database the store tests run against.
type backend struct {
	name string
	// open returns a database for one test; the test's tables are its own.
	open func(t testing.TB) *sql.DB
}

var (
	sharedMu  sync.Mutex
	sharedDBs = map[string]*sql.DB{}
)

// sharedDB opens one pool per server for the whole run: tests isolate by
// table name, not by connection.
func sharedDB(t testing.TB, driver, dsn string) *sql.DB {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if db, ok := sharedDBs[driver]; ok {
		return db
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatalf("open %s: %v", driver, err)
	}
	if err := db.Ping(); err != nil {
		t.Fatalf("ping %s (%s is set): %v", driver, driver, err)
	}
	db.SetMaxOpenConns(20)
	sharedDBs[driver] = db
	return db
}

// backends lists SQLite and every server whose DSN is set.
func backends() []backend {
	list := []backend{{name: "sqlite", open: openMemorySQLite}}
	if dsn := os.Getenv(envPostgresDSN); dsn != "" {
		list = append(list, backend{name: "postgres", open: func(t testing.TB) *sql.DB { return sharedDB(t, "pgx", dsn) }})
	}
	if dsn := os.Getenv(envMySQLDSN); dsn != "" {
		list = append(list, backend{name: "mysql", open: func(t testing.TB) *sql.DB { return sharedDB(t, "mysql", dsn) }})
	}
	return list
}

// openMemorySQLite gives each test a private in-memory database. One
// connection, because every connection to ":memory:" is a different
// database.
func openMemorySQLite(t testing.TB) *sql.DB {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// openFileSQLite gives a test a fresh file-backed database (openSQLiteFile),
// for tests that need real concurrent connections.
func openFileSQLite(t testing.TB) *sql.DB {
	return openSQLiteFile(t, filepath.Join(t.TempDir(), "vault.db"))
}

// forEachBackend runs fn as a subtest per backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// testCrypto is the cheapest configuration Argon2id accepts, so tests spend
// their time on the store and not on key derivation.
func testCrypto() *vaultstore.CryptoConfig {
	return &vaultstore.CryptoConfig{Iterations: 1, Memory: 8, Parallelism: 1, KeyLength: 32, SaltSize: 16, NonceSize: 12, TagSize: 16}
}

// testPassword meets the default policy.
const testPassword = "correct horse battery staple"

// uniqueTables returns fresh vault and meta table names and drops the
// tables when the test ends.
func uniqueTables(t testing.TB, db *sql.DB) (vault, meta string) {
	t.Helper()
	suffix := strings.ToLower(rand.Text()[:10])
	vault, meta = "vault_"+suffix, "vmeta_"+suffix
	t.Cleanup(func() {
		for _, table := range []string{vault, meta} {
			db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+table)
		}
	})
	return vault, meta
}

// newStore opens a migrated store on fresh tables of db. modify may change
// the options before NewStore.
func newStore(t testing.TB, db *sql.DB, modify ...func(*vaultstore.NewStoreOptions)) *vaultstore.Store {
	t.Helper()
	vault, meta := uniqueTables(t, db)
	opts := vaultstore.NewStoreOptions{
		VaultTableName:     vault,
		VaultMetaTableName: meta,
		DB:                 db,
		AutomigrateEnabled: true,
		CryptoConfig:       testCrypto(),
	}
	for _, m := range modify {
		m(&opts)
	}
	s, err := vaultstore.NewStore(opts)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return s
}

// newTestStore is a store on a private in-memory SQLite database.
func newTestStore(t testing.TB, modify ...func(*vaultstore.NewStoreOptions)) *vaultstore.Store {
	return newStore(t, openMemorySQLite(t), modify...)
}

// mustCreateRecord stores a raw record with the given token and value.
func mustCreateRecord(t testing.TB, s *vaultstore.Store, token, value string) vaultstore.RecordInterface {
	t.Helper()
	r := vaultstore.NewRecord().SetToken(token).SetValue(value)
	if err := s.RecordCreate(context.Background(), r); err != nil {
		t.Fatalf("RecordCreate(%s): %v", token, err)
	}
	return r
}

func tokenN(i int) string { return fmt.Sprintf("tk_test%08d", i) }

// countRows runs a COUNT query written by the test.
func countRows(t testing.TB, db *sql.DB, query string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// timeIn returns a time the given number of hours from now.
func timeIn(hours int) time.Time { return time.Now().Add(time.Duration(hours) * time.Hour) }

// writeV2 makes a store write the v2 format, which binds no token, for
// tests that copy ciphertexts between rows.
func writeV2(o *vaultstore.NewStoreOptions) { o.EncryptionVersion = vaultstore.ENCRYPTION_VERSION_V2 }

// openSQLiteFileRaw opens the SQLite file at path in WAL mode. synchronous
// NORMAL is durable across process crashes (it gives up only durability
// across power loss), which is what the crash tests need, and it makes the
// thousands of single-row commits of a seed fast.
func openSQLiteFileRaw(path string) *sql.DB {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		panic(err)
	}
	return db
}

// openSQLiteFile is openSQLiteFileRaw for a test, closed at its end.
func openSQLiteFile(t testing.TB, path string) *sql.DB {
	db := openSQLiteFileRaw(path)
	t.Cleanup(func() { db.Close() })
	return db
}

// dbParallel runs fn(i) for i in [0, n) on workers goroutines and returns
// the first error.
func dbParallel(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// seedEncrypted stores n values under password with tokens tokenN(0..n-1),
// through the public API and from a few goroutines.
func seedEncrypted(t testing.TB, s *vaultstore.Store, n int, password string) {
	t.Helper()
	err := dbParallel(n, 4, func(i int) error {
		return s.TokenCreateCustom(context.Background(), tokenN(i), fmt.Sprint("value ", i), password)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// changedOf keeps the count of records a rotation changed, as
// TokensChangePassword returns it.
func changedOf(p vaultstore.ChangePasswordProgress, err error) (int, error) {
	return p.Changed, err
}

// placeholders turns the ? placeholders of q into PostgreSQL's $1, $2, …
// when dialect is "postgres", for tests that write SQL of their own.
func placeholders(dialect, q string) string {
	if dialect != "postgres" {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
