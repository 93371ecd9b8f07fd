package vaultstore

import (
	"context"
	"crypto/rand"
	"fmt"
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
