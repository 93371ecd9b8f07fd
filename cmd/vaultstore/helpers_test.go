package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/vaultstore/vaultstore"
)

// The environment variables of the library's tests that name real servers,
// as Go driver DSNs.
const (
	envPostgresDSN = "VAULTSTORE_POSTGRES_DSN"
	envMySQLDSN    = "VAULTSTORE_MYSQL_DSN"
)

// built is a program the tests build once per run.
type built struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

var (
	buildDir   string
	buildDirMu sync.Mutex
	cli, seedb built
)

// binary builds the command once per test run, as a release is built
// (CGO_ENABLED=0, no race detector), and returns its path.
func binary(t testing.TB) string { return cli.get(t, ".", "vaultstore") }

// seeder builds testdata/seed, which fills SQLite files for the tests.
func seeder(t testing.TB) string { return seedb.get(t, "./testdata/seed", "seed") }

func (b *built) get(t testing.TB, pkg, name string) string {
	t.Helper()
	b.once.Do(func() {
		buildDirMu.Lock()
		if buildDir == "" {
			buildDir, b.err = os.MkdirTemp("", "vaultstore-cli-")
		}
		dir := buildDir
		buildDirMu.Unlock()
		if b.err != nil {
			return
		}
		b.path = filepath.Join(dir, name)
		cmd := exec.Command(goTool(), "build", "-o", b.path, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		b.out, b.err = cmd.CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, b.err, b.out)
	}
	return b.path
}

// goTool is the go command: on PATH, or where .ci/run finds it.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// TestMain removes the built binary.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// cliBackend is a database the command's tests run against: the --db value
// the command gets, and how the test itself opens it.
type cliBackend struct {
	name string
	// dsn returns the --db value for a test; SQLite gets a fresh file in dir.
	dsn func(dir string) string
}

// cliBackends is a file SQLite database and every server whose DSN is set.
func cliBackends(t testing.TB) []cliBackend {
	list := []cliBackend{{name: "sqlite", dsn: func(dir string) string { return "sqlite:" + filepath.Join(dir, "vault.db") }}}
	if dsn := os.Getenv(envPostgresDSN); dsn != "" {
		list = append(list, cliBackend{name: "postgres", dsn: func(string) string { return dsn }})
	}
	if dsn := os.Getenv(envMySQLDSN); dsn != "" {
		u, err := mysqlURL(dsn)
		if err != nil {
			t.Fatalf("%s: %v", envMySQLDSN, err)
		}
		list = append(list, cliBackend{name: "mysql", dsn: func(string) string { return u }})
	}
	return list
}

// mysqlURL turns a go-sql-driver DSN (user:pass@tcp(host:port)/db?params)
// into the command's mysql://user:pass@host:port/db?params form.
func mysqlURL(dsn string) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", err
	}
	u := url.URL{Scheme: "mysql", User: url.UserPassword(cfg.User, cfg.Passwd), Host: cfg.Addr, Path: "/" + cfg.DBName}
	if _, q, ok := strings.Cut(dsn, "?"); ok {
		u.RawQuery = q
	}
	return u.String(), nil
}

// uniqueTables returns fresh table names.
func uniqueTables() (vault, meta string) {
	suffix := strings.ToLower(rand.Text()[:10])
	return "cli_" + suffix, "climeta_" + suffix
}

// openTestStore opens the store the command sees at dsn, for seeding and
// checking from the test; crypto is as --crypto takes it.
func openTestStore(t testing.TB, dsn, vault, meta, crypto string, modify ...func(*vaultstore.NewStoreOptions)) (*vaultstore.Store, *sql.DB) {
	t.Helper()
	target, err := parseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db, err := target.open(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cc, err := parseCrypto(crypto)
	if err != nil {
		t.Fatal(err)
	}
	opts := vaultstore.NewStoreOptions{
		VaultTableName: vault, VaultMetaTableName: meta, DB: db, DbDriverName: target.dialect,
		CryptoConfig: cc, AutomigrateEnabled: true,
	}
	for _, m := range modify {
		m(&opts)
	}
	s, err := vaultstore.NewStore(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

// dropTables removes a test's tables from a server database.
func dropTables(db *sql.DB, tables ...string) {
	for _, table := range tables {
		db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+table)
	}
}
