package vaultstore

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Hooks for the black-box tests of package vaultstore_test. An attacker who
// writes the database can build any value the format allows, so the
// attacker's tests (attack_test.go) build theirs with the codec itself.

// SealV3 seals plaintext for token under kek as a v3 value whose header
// names vaultSalt and the Argon2id parameters t, m (KiB) and p.
func SealV3(plaintext, token string, kek []byte, t, m uint32, p uint8, vaultSalt []byte) (string, error) {
	return encryptV3(plaintext, token, kek, argon2Params{Iterations: t, MemoryKiB: m, Parallelism: p, KeyLength: v3KeyLen}, vaultSalt, rand.Reader)
}

// Argon2idKey is the 32-byte Argon2id output, as a v3 KEK.
func Argon2idKey(password string, salt []byte, t, m uint32, p uint8) []byte {
	return deriveArgon2id(password, salt, argon2Params{Iterations: t, MemoryKiB: m, Parallelism: p, KeyLength: v3KeyLen})
}

// Derivations is how many Argon2id derivations the store has run.
func (s *Store) Derivations() int64 { return s.keys.derivations.Load() }

// CachedKeys is how many keys the store's cache holds.
func (s *Store) CachedKeys() int { return s.keys.cache.len() }

// CachedKeyOf reports whether the cache holds a key of password.
func (s *Store) CachedKeyOf(password string) bool {
	fp := s.keys.fingerprint(password)
	found := false
	s.keys.cache.removeIf(func(k keyCacheKey) bool {
		found = found || k.password == fp
		return false
	})
	return found
}

// RememberedIdentities is how many password-to-identity answers the store
// keeps, and the most it keeps.
func (s *Store) RememberedIdentities() (n, capacity int) {
	return s.shared.identityIDs.len(), s.shared.identityIDs.capacity
}

// IdentityOf finds or makes the identity of password, as a write does.
func (s *Store) IdentityOf(ctx context.Context, password string) (string, error) {
	return s.identityFor(ctx, password)
}

// OpenV3 opens a v3 value for token with kek taken as the KEK, as someone
// holding a candidate key would try.
func OpenV3(stored, token string, kek []byte) (string, error) {
	v, err := parseV3(stored)
	if err != nil {
		return "", err
	}
	plain, _, err := v.open(kek, token)
	return plain, err
}

// IdentityValue is the stored form of password's identity under salt and
// t, m (KiB), p: the legacy form (the Argon2id output itself) or the
// current one (its verifier).
func IdentityValue(password string, salt []byte, t, m uint32, p uint8, legacy bool) string {
	params := argon2Params{Iterations: t, MemoryKiB: m, Parallelism: p, KeyLength: v3KeyLen}
	k := deriveArgon2id(password, salt, params)
	if legacy {
		return fmt.Sprintf("%sm=%d,t=%d,p=%d$%s$%s", identityPrefixLegacy, m, t, p, phcB64.EncodeToString(salt), phcB64.EncodeToString(k))
	}
	v, err := identityVerifier(k)
	if err != nil {
		panic(err)
	}
	return formatIdentity(params, salt, v)
}

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
