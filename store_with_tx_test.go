package vaultstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"strings"
	"sync"
	"testing"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/vaultstore/vaultstore"
)

func mustBegin(t testing.TB, db *sql.DB) *sql.Tx {
	t.Helper()
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// TestWithTxCommitAndRollback: a bound store's writes (values, identity
// links, settings, the vault salt) commit with the caller's transaction
// and leave no trace when it rolls back; what a rolled-back transaction
// made is not remembered by the store either.
func TestWithTxCommitAndRollback(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db, identities)

		tx := mustBegin(t, db)
		bound := s.WithTx(tx)
		tok, err := bound.TokenCreate(ctx, "rolled back", testPassword, 20)
		if err != nil {
			t.Fatal(err)
		}
		if err := bound.SetVaultSetting(ctx, "app.setting", "rolled back"); err != nil {
			t.Fatal(err)
		}
		if v, err := bound.TokenRead(ctx, tok, testPassword); err != nil || v != "rolled back" {
			t.Fatalf("read inside the transaction = %q, %v", v, err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{s.GetVaultTableName(), s.GetMetaTableName()} {
			if n := countRows(t, db, "SELECT COUNT(*) FROM "+table); n != 0 {
				t.Fatalf("%d rows left in %s after a rollback", n, table)
			}
		}
		if ok, err := s.TokenExists(ctx, tok); err != nil || ok {
			t.Fatalf("TokenExists after rollback = %v, %v", ok, err)
		}

		// The store kept nothing the rollback undid: a new value gets a
		// live identity, and a rotation finds it.
		mustCustom(t, s, "tk_after_rollback", "kept", testPassword)
		tx = mustBegin(t, db)
		bound = s.WithTx(tx)
		mustCustom(t, bound, "tk_committed_01", "committed", testPassword)
		if err := bound.SetVaultSetting(ctx, "app.setting", "committed"); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if v, err := s.GetVaultSetting(ctx, "app.setting"); err != nil || v != "committed" {
			t.Fatalf("setting after commit = %q, %v", v, err)
		}
		if n, err := s.TokensChangePassword(ctx, testPassword, "the next password, long enough"); err != nil || n != 2 {
			t.Fatalf("rotation after the transactions = %d, %v, want both committed values", n, err)
		}
	})
}

// TestWithTxFailures: a store call that fails inside the caller's
// transaction reports its sentinel and leaves the transaction usable where
// the store can tell first (a taken token); a caller's own failure makes
// the store's calls fail, never panic, and the rollback leaves nothing.
func TestWithTxFailures(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db)
		mustCustom(t, s, "tk_taken_outside", "x", testPassword)

		tx := mustBegin(t, db)
		bound := s.WithTx(tx)
		if err := bound.TokenCreateCustom(ctx, "tk_taken_outside", "y", testPassword); !errors.Is(err, vaultstore.ErrTokenAlreadyExists) {
			t.Fatalf("taken token in a transaction = %v", err)
		}
		// A duplicate that only the INSERT finds: on PostgreSQL a failed
		// statement would abort the caller's transaction; the store keeps
		// it to a savepoint and still names the sentinel.
		if err := bound.RecordCreate(ctx, vaultstore.NewRecord().SetToken("tk_taken_outside").SetValue("raw")); !errors.Is(err, vaultstore.ErrTokenAlreadyExists) {
			t.Fatalf("taken token by INSERT in a transaction = %v, want ErrTokenAlreadyExists", err)
		}
		mustCustom(t, bound, "tk_after_failure", "z", testPassword)
		if err := tx.Commit(); err != nil {
			t.Fatalf("the transaction was spoiled by a refused call: %v", err)
		}
		if ok, _ := s.TokenExists(ctx, "tk_after_failure"); !ok {
			t.Fatal("the value written after the refused call was not committed")
		}

		tx = mustBegin(t, db)
		bound = s.WithTx(tx)
		mustCustom(t, bound, "tk_doomed_value1", "doomed", testPassword)
		if _, err := tx.ExecContext(ctx, "SELECT * FROM no_such_table_at_all"); err == nil {
			t.Fatal("the caller's failing statement succeeded")
		}
		// PostgreSQL refuses everything after a failed statement; the others
		// go on. Either way: an error or a result, never a panic.
		_, _ = bound.TokenRead(ctx, "tk_doomed_value1", testPassword)
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.TokenExists(ctx, "tk_doomed_value1"); ok {
			t.Fatal("a rolled-back value is there")
		}
	})
}

// TestWithTxConcurrent: bound stores on separate transactions, in
// parallel, each commit or roll back their own values only.
func TestWithTxConcurrent(t *testing.T) {
	t.Parallel()
	list := backends()[1:]
	if len(list) == 0 {
		t.Skip("needs a database server: SQLite runs one write transaction at a time")
	}
	for _, b := range list {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.open(t)
			s := newStore(t, db, identities)
			mustCustom(t, s, "tk_concurrent_seed", "seed", testPassword)
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					tx, err := db.BeginTx(ctx, nil)
					if err != nil {
						t.Error(err)
						return
					}
					bound := s.WithTx(tx)
					if err := bound.TokenCreateCustom(ctx, fmt.Sprintf("tk_concurrent_%03d", i), fmt.Sprint("value ", i), testPassword); err != nil {
						t.Error(err)
						tx.Rollback()
						return
					}
					if i%2 == 1 {
						err = tx.Rollback()
					} else {
						err = tx.Commit()
					}
					if err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			for i := range 8 {
				v, err := s.TokenRead(ctx, fmt.Sprintf("tk_concurrent_%03d", i), testPassword)
				if i%2 == 0 && (err != nil || v != fmt.Sprint("value ", i)) {
					t.Errorf("committed value %d = %q, %v", i, v, err)
				}
				if i%2 == 1 && !errors.Is(err, vaultstore.ErrRecordNotFound) {
					t.Errorf("rolled-back value %d = %q, %v", i, v, err)
				}
			}
			if n, err := s.TokensChangePassword(ctx, testPassword, "the next password, long enough"); err != nil || n != 5 {
				t.Fatalf("rotation = %d, %v, want the seed and 4 committed values", n, err)
			}
		})
	}
}

// TestWithTxRefuses: what cannot join a caller's transaction is
// ErrValidationFailed, and a missing or wrong transaction never panics.
func TestWithTxRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openFileSQLite(t)
	s := newStore(t, db)
	tx := mustBegin(t, db)
	defer tx.Rollback()
	bound := s.WithTx(tx)
	for name, err := range map[string]error{
		"AutoMigrate": bound.AutoMigrate(),
		"TokensChangePassword": func() error {
			_, err := bound.TokensChangePassword(ctx, testPassword, "another long password")
			return err
		}(),
		"DestroyRoot": bound.DestroyRoot(ctx, vaultstore.DestroyRootConfirmation),
	} {
		if !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("%s on a bound store = %v, want ErrValidationFailed", name, err)
		}
	}
	tx.Rollback()

	// No meta table: a bound store does not create one.
	fresh, err := vaultstore.NewStore(vaultstore.NewStoreOptions{VaultTableName: "bare_vault", VaultMetaTableName: "bare_meta", DB: db, CryptoConfig: testCrypto()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE bare_vault (id varchar(40) PRIMARY KEY, vault_token varchar(40) UNIQUE NOT NULL, vault_value text NOT NULL, created_at datetime, updated_at datetime, expires_at datetime, soft_deleted_at datetime)"); err != nil {
		t.Fatal(err)
	}
	tx = mustBegin(t, db)
	if _, err := fresh.WithTx(tx).TokenCreate(ctx, "v", testPassword, 20); !errors.Is(err, vaultstore.ErrValidationFailed) {
		t.Errorf("first write without a meta table, bound = %v, want ErrValidationFailed", err)
	}
	tx.Rollback()

	for name, b := range map[string]*vaultstore.Store{
		"WithTx(nil)":               s.WithTx(nil),
		"WithGormTx(nil)":           s.WithGormTx(nil),
		"WithGormTx(not a tx)":      s.WithGormTx(appGorm(t, s, db, io.Discard)),
		"WithGormTx(other dialect)": s.WithGormTx(otherDialectTx(t)),
	} {
		if _, err := b.TokenCreate(ctx, "v", testPassword, 20); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("%s: TokenCreate = %v, want ErrValidationFailed", name, err)
		}
		if _, err := b.TokenRead(ctx, "tk_anything_at_all", testPassword); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("%s: TokenRead = %v, want ErrValidationFailed", name, err)
		}
	}
}

// appGorm is the application's own GORM handle on db, with a logger that
// writes every statement it runs, values included, to log.
func appGorm(t testing.TB, s *vaultstore.Store, db *sql.DB, log io.Writer) *gorm.DB {
	t.Helper()
	var d gorm.Dialector
	switch s.GetDbDriverName() {
	case "postgres":
		d = postgres.New(postgres.Config{Conn: db})
	case "mysql":
		d = mysql.New(mysql.Config{Conn: db, SkipInitializeWithVersion: true})
	default:
		d = &sqlite.Dialector{Conn: db}
	}
	l := logger.New(stdlog.New(log, "", 0), logger.Config{LogLevel: logger.Info})
	g, err := gorm.Open(d, &gorm.Config{Logger: l})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// otherDialectTx is a transaction on a database of another kind than the
// test store's SQLite.
func otherDialectTx(t testing.TB) *gorm.DB {
	t.Helper()
	g, err := gorm.Open(mysql.New(mysql.Config{DSN: "user:pass@tcp(127.0.0.1:1)/none", SkipInitializeWithVersion: true}), &gorm.Config{DisableAutomaticPing: true})
	if err != nil {
		t.Fatal(err)
	}
	// A statement handle that claims a transaction without reaching the
	// server: only its dialect matters.
	tx := g.Session(&gorm.Session{NewDB: true})
	tx.Statement.ConnPool = fakeTx{}
	return tx
}

type fakeTx struct{ gorm.ConnPool }

func (fakeTx) Commit() error   { return nil }
func (fakeTx) Rollback() error { return nil }

// TestWithGormTx: an application on GORM binds the store to its
// transaction; the store's statements never reach the application's
// logger, and the outcome follows the transaction's.
func TestWithGormTx(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db)
		var appLog bytes.Buffer
		app := appGorm(t, s, db, &appLog)
		var tok string
		err := app.Transaction(func(tx *gorm.DB) error {
			var err error
			tok, err = s.WithGormTx(tx).TokenCreate(ctx, "gorm committed", testPassword, 20)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if v, err := s.TokenRead(ctx, tok, testPassword); err != nil || v != "gorm committed" {
			t.Fatalf("after the GORM transaction = %q, %v", v, err)
		}
		rollback := errors.New("roll back")
		err = app.Transaction(func(tx *gorm.DB) error {
			if _, err := s.WithGormTx(tx).TokenCreate(ctx, "gorm rolled back", testPassword, 20); err != nil {
				return err
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatal(err)
		}
		if n := countRows(t, db, "SELECT COUNT(*) FROM "+s.GetVaultTableName()); n != 1 {
			t.Fatalf("%d values, want only the committed one", n)
		}
		if strings.Contains(appLog.String(), s.GetVaultTableName()) {
			t.Fatalf("the store's statements reached the application's logger:\n%s", appLog.String())
		}
	})
}
