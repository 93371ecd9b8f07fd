// The v2 value format, written and read:
//
//	"v2:" base64( salt | nonce | ciphertext | tag )
//	              16     12      len(value)   16     bytes, from CryptoConfig
//
//	key    = Argon2id(password, salt, Iterations, Memory KiB, Parallelism, KeyLength)
//	sealed = AES-GCM-Seal(key, nonce, value), no associated data
//
// Argon2id is RFC 9106; the default parameters are discussed next to
// DefaultCryptoConfig. AES-GCM is NIST SP 800-38D with the 96-bit nonce of
// section 8.2.2 (random) and the full 128-bit tag (section 5.2.1.2). Nothing
// in the value records the Argon2 parameters, so a v2 value opens only with
// the CryptoConfig that wrote it.

package vaultstore

import (
	"fmt"
	"io"
	"strings"
)

// checkV2Config refuses a configuration that would make Argon2 or GCM panic
// or produce values no other reader understands.
func checkV2Config(cfg *CryptoConfig) error {
	if cfg == nil {
		return validationErrorf("no CryptoConfig")
	}
	return validateCryptoConfig(cfg)
}

// encryptV2With seals plaintext as a v2 value. Salt and nonce come from
// random; a fresh random salt gives every value its own key, which is what
// makes random 96-bit nonces safe (SP 800-38D section 8.3 limits
// invocations per key). keys derives the key, so that the store can bound
// how many derivations run at once.
func encryptV2With(plaintext, password string, cfg *CryptoConfig, random io.Reader, keys keySource) (string, error) {
	if err := checkV2Config(cfg); err != nil {
		return "", err
	}
	// Larger values would encode to more than maxStoredValueLen and could
	// never be read back.
	if len(plaintext) > MaxValueSize {
		return "", validationErrorf("value is %d bytes, more than the %d allowed", len(plaintext), MaxValueSize)
	}
	if random == nil {
		return "", validationErrorf("no source of randomness")
	}
	head := cfg.SaltSize + cfg.NonceSize
	buf := make([]byte, head, head+len(plaintext)+cfg.TagSize)
	if _, err := io.ReadFull(random, buf); err != nil {
		return "", fmt.Errorf("vaultstore: cannot read random salt and nonce: %w", err)
	}
	salt, nonce := buf[:cfg.SaltSize], buf[cfg.SaltSize:head]

	key, _, err := keys.key(password, salt, paramsFromConfig(cfg))
	if err != nil {
		return "", err
	}
	defer clear(key)
	gcm, err := newGCM(key)
	if err != nil {
		return "", err
	}
	// Seal appends within buf's capacity, after the nonce it reads from.
	out := gcm.Seal(buf, nonce, []byte(plaintext), nil)
	return ENCRYPTION_PREFIX_V2 + b64.EncodeToString(out), nil
}

// v2Value is a parsed v2 value. Its slices do not share memory with each
// other's spare capacity, so a caller appending to one cannot damage another.
type v2Value struct{ salt, nonce, sealed []byte } // sealed = ciphertext‖tag

// parseV2 separates a v2 value into its parts without deriving a key, so
// that malformed values are refused before the expensive step.
func parseV2(stored string, cfg *CryptoConfig) (v2Value, error) {
	if err := checkV2Config(cfg); err != nil {
		return v2Value{}, err
	}
	if len(stored) > maxStoredValueLen {
		return v2Value{}, decryptionErrorf("stored value is %d bytes, more than the %d allowed", len(stored), maxStoredValueLen)
	}
	body, ok := strings.CutPrefix(stored, ENCRYPTION_PREFIX_V2)
	if !ok {
		return v2Value{}, decryptionErrorf("value is not in the v2 format")
	}
	raw, err := decodeBase64(body)
	if err != nil {
		return v2Value{}, decryptionErrorf("v2 value is not valid base64url: %v", err)
	}
	s, n := cfg.SaltSize, cfg.NonceSize
	if len(raw) < s+n+cfg.TagSize {
		return v2Value{}, decryptionErrorf("v2 value is %d bytes, shorter than salt, nonce and tag", len(raw))
	}
	return v2Value{salt: raw[:s:s], nonce: raw[s : s+n : s+n], sealed: raw[s+n:]}, nil
}

// open authenticates and decrypts. GCM cannot tell a wrong key from a
// changed byte, and the key comes from the password, so both are
// errOpenFailed.
func (v v2Value) open(key []byte) (string, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return "", err
	}
	// A v2Value not made by parseV2 would make gcm.Open panic.
	if len(v.nonce) != gcm.NonceSize() || len(v.sealed) < gcm.Overhead() {
		return "", decryptionErrorf("v2 value has a %d-byte nonce and %d sealed bytes", len(v.nonce), len(v.sealed))
	}
	// A fresh buffer, not sealed[:0]: on failure Open zeroes its output, and
	// a caller may still want to try another key on the same value.
	pt, err := gcm.Open(nil, v.nonce, v.sealed, nil)
	if err != nil {
		return "", errOpenFailed
	}
	defer clear(pt)
	return string(pt), nil
}
