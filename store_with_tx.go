package vaultstore

import (
	"context"
	"database/sql"

	"gorm.io/gorm"
)

// WithTx returns a store bound to the caller's transaction, as sqlc's
// generated WithTx does: it shares s's configuration and key cache, and
// every record, token and settings method it has runs inside tx, so that a
// token created for a new customer commits or rolls back with the
// customer's row. Rollback leaves no trace: no value, identity link,
// metadata or setting. Where the store needs a transaction of its own (a
// value and its identity link), it uses a savepoint inside tx.
//
// What a bound store sees may still be rolled back, so it adds nothing to
// what s keeps in memory (the vault salt, the KMS root, password
// identities); a bound store used before s has written anything reads them
// in the transaction each time.
//
// A few operations cannot run inside a caller's transaction and are
// ErrValidationFailed on a bound store, with a message saying to call them
// on s: AutoMigrate and creating the meta table (DDL, which MySQL commits
// implicitly), TokensChangePassword and TokensChangePasswordWithOptions
// (they commit batch by batch so that a crash loses nothing), DestroyRoot,
// and the first write of a vault with a KeyWrapper, which makes its root.
//
// tx must belong to s's database. A bound store is as safe for concurrent
// use as tx is; database/sql transactions serialise their statements. A
// nil tx gives a store whose every call fails with ErrValidationFailed.
func (s *Store) WithTx(tx *sql.Tx) *Store {
	if tx == nil {
		return s.bindFailed("WithTx was given a nil *sql.Tx")
	}
	return s.bindTo(tx)
}

// WithGormTx is WithTx for applications on GORM: tx is a transaction begun
// with (*gorm.DB).Begin or inside (*gorm.DB).Transaction, on s's database.
// The store uses tx's connection only, with its own settings: tx's logger,
// hooks and naming strategy never see the store's statements.
func (s *Store) WithGormTx(tx *gorm.DB) *Store {
	if tx == nil || tx.Statement == nil || tx.Statement.ConnPool == nil {
		return s.bindFailed("WithGormTx was given no transaction")
	}
	if _, ok := tx.Statement.ConnPool.(gorm.TxCommitter); !ok {
		return s.bindFailed("WithGormTx was given a *gorm.DB that is not in a transaction; use Begin or Transaction")
	}
	if tx.Dialector != nil {
		if d, err := normalizeDialect(tx.Dialector.Name()); err != nil || d != s.dialect {
			return s.bindFailed("WithGormTx was given a transaction on another kind of database")
		}
	}
	return s.bindTo(tx.Statement.ConnPool)
}

// bindTo is a shallow copy of s whose statements go to pool.
func (s *Store) bindTo(pool gorm.ConnPool) *Store {
	b := *s
	// A new statement, as gorm's Begin makes, so that the connection
	// set here is the bound store's alone.
	b.db = s.db.Session(&gorm.Session{NewDB: true, Context: context.Background()})
	b.db.Statement.ConnPool = pool
	b.bound = true
	return &b
}

// bindFailed is a bound store whose every statement fails with the reason.
// The error is set on its gorm handle, which skips every statement, and its
// connection refuses everything too, savepoints included.
func (s *Store) bindFailed(reason string) *Store {
	err := validationErrorf("%s", reason)
	b := s.bindTo(failedPool{err})
	b.db.Error = err
	return b
}

// failedPool is the connection of a store whose binding failed.
type failedPool struct{ err error }

var (
	_ gorm.ConnPool    = failedPool{}
	_ gorm.TxCommitter = failedPool{}
)

func (p failedPool) PrepareContext(context.Context, string) (*sql.Stmt, error) { return nil, p.err }
func (p failedPool) ExecContext(context.Context, string, ...any) (sql.Result, error) {
	return nil, p.err
}
func (p failedPool) QueryContext(context.Context, string, ...any) (*sql.Rows, error) {
	return nil, p.err
}

// QueryRowContext is never reached: gorm runs no statement on a handle
// whose Error is set, and a *sql.Row carrying an error cannot be made
// outside database/sql.
func (p failedPool) QueryRowContext(context.Context, string, ...any) *sql.Row { return nil }
func (p failedPool) Commit() error                                            { return p.err }
func (p failedPool) Rollback() error                                          { return p.err }

// refuseBound refuses an operation that cannot join a caller's transaction.
func (s *Store) refuseBound(op string) error {
	if s.bound {
		return validationErrorf("%s cannot run inside the caller's transaction; call it on the store WithTx was called on", op)
	}
	return nil
}
