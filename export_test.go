package vaultstore

import (
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Test-only access for the black-box tests of package vaultstore_test.

// HookPoint and its values expose hooks.go to the write-safety tests.
type HookPoint = hookPoint

const (
	HookUpdateWrite        = hookUpdateWrite
	HookUpdateLost         = hookUpdateLost
	HookRenewWrite         = hookRenewWrite
	HookCreateCustomInsert = hookCreateCustomInsert
	HookRotationWrite      = hookRotationWrite
	HookRotationChunk      = hookRotationChunk
)

// SetTestHook makes s call h at every hook point. Set it before s is used
// by more than one goroutine.
func SetTestHook(s *Store, h func(p HookPoint, attempt int) error) { s.testHook = h }

// SetNow replaces the package clock and returns a function that restores
// it. The clock is package-wide: only tests that do not run in parallel
// may call it.
func SetNow(now func() time.Time) (restore func()) {
	old := nowFunc
	nowFunc = now
	return func() { nowFunc = old }
}

// RetryableTxError is an error the rotation treats as a transaction the
// database aborted and that may succeed when run again (a PostgreSQL
// serialisation failure).
func RetryableTxError() error {
	return &pgconn.PgError{Severity: "ERROR", Code: "40001", Message: "injected serialisation failure"}
}

// IsRetryableTxError exposes isRetryableTxError.
func IsRetryableTxError(err error) bool { return isRetryableTxError(err) }
