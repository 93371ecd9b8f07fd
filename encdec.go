// Stored value formats.
//
// A stored value names its format in a "vN:" prefix; a value with no such
// prefix is v1, which the original VaultStore wrote before it had prefixes.
// Base64 below is always the URL alphabet with padding (RFC 4648 section 5),
// decoded strictly: no line breaks, no non-zero trailing bits.
//
// This file holds what the formats share and the one entry point for
// reads, decryptValue; each format has its own file: encdec_v1.go,
// encdec_v2.go, encdec_v3.go.

package vaultstore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// maxStoredValueLen bounds what is decoded at all, so that a crafted row
// cannot make a read allocate without limit. v1 is the larger format: a
// value becomes base64 (4/3), is padded to a power of two, and is base64
// encoded twice more (16/9). For any value up to MaxValueSize the padded
// layer is at most 16 MiB, so the stored text is at most 16 MiB × 16/9,
// about 28.4 MiB, under this bound. v2 and v3 add about a third.
const maxStoredValueLen = 4 * MaxValueSize

// b64 is the only base64 variant either format ever wrote. Strict makes the
// encoding of a byte string unique, so a value cannot be altered in its
// encoding without that showing.
var b64 = base64.URLEncoding.Strict()

// argon2Params are the inputs of one Argon2id derivation, and for a v3
// KEK whether it is mixed with the vault's root key (KDF 2).
type argon2Params struct {
	Iterations  uint32
	MemoryKiB   uint32
	Parallelism uint8
	KeyLength   uint32
	Root        bool
}

// paramsFromConfig expects a configuration that validateCryptoConfig
// accepted; its ranges make every conversion here lossless.
func paramsFromConfig(c *CryptoConfig) argon2Params {
	return argon2Params{
		Iterations:  uint32(c.Iterations),
		MemoryKiB:   uint32(c.Memory),
		Parallelism: uint8(c.Parallelism),
		KeyLength:   uint32(c.KeyLength),
	}
}

// deriveArgon2id panics, as argon2.IDKey does, on zero iterations or
// parallelism; callers pass parameters from a validated configuration.
func deriveArgon2id(password string, salt []byte, p argon2Params) []byte {
	return argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, p.KeyLength)
}

// newGCM builds AES-GCM with the standard 12-byte nonce and 16-byte tag,
// the only sizes the v2 format uses.
func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, validationErrorf("AES key is %d bytes, not 16, 24 or 32", len(key))
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, validationErrorf("AES-GCM is unavailable")
	}
	return gcm, nil
}

// decodeBase64 and decodeBase64Into refuse line breaks, which the standard
// decoder would skip: neither format ever contained one.
func decodeBase64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("line break in base64 text")
	}
	return b64.DecodeString(s)
}

func decodeBase64Into(dst, src []byte) (int, error) {
	if bytes.ContainsAny(src, "\r\n") {
		return 0, fmt.Errorf("line break in base64 text")
	}
	return b64.Decode(dst, src)
}

// valueVersion names the format of stored. A colon never occurs in
// base64url, so "v<digits>:" cannot be the start of a v1 value and an
// unknown version is refused, not misread as v1.
func valueVersion(stored string) (string, error) {
	digits := 0
	if strings.HasPrefix(stored, "v") {
		for digits+1 < len(stored) && stored[digits+1] >= '0' && stored[digits+1] <= '9' {
			digits++
		}
	}
	if digits == 0 || digits+1 >= len(stored) || stored[digits+1] != ':' {
		return ENCRYPTION_VERSION_V1, nil
	}
	switch v := stored[:digits+1]; v {
	case ENCRYPTION_VERSION_V1, ENCRYPTION_VERSION_V2, ENCRYPTION_VERSION_V3:
		return v, nil
	default:
		if digits > 8 {
			return "", decryptionErrorf("unknown format: version prefix of %d digits", digits)
		}
		return "", decryptionErrorf("unknown format %q", v)
	}
}

// HKDF labels, one per thing derived from an Argon2id output, so that no
// derived value can stand in for another: a stored commitment or identity
// verifier is never a key the codec accepts. docs/encryption.md lists them.
const (
	labelV3Encrypt        = "vaultstore v3 enc"
	labelV3Commit         = "vaultstore v3 commit"
	labelIdentityVerifier = "vaultstore identity verifier"
	labelRootKEK          = "vaultstore v3 root kek"
	labelFingerprint      = "vaultstore fingerprint"
)

// checkArgon2Bounds refuses the cost parameters of a stored value (a v3
// header, a password identity) before anything is derived from them: a
// crafted row must not be able to make a read allocate gigabytes or spin for
// minutes, nor make argon2 panic.
func checkArgon2Bounds(p argon2Params) error {
	switch {
	case p.Iterations < 1 || p.Iterations > MaxArgon2Iterations:
		return decryptionErrorf("stored value asks for %d Argon2 iterations, outside 1..%d", p.Iterations, MaxArgon2Iterations)
	case p.Parallelism < 1 || int(p.Parallelism) > MaxArgon2Parallelism:
		return decryptionErrorf("stored value asks for Argon2 parallelism %d, outside 1..%d", p.Parallelism, MaxArgon2Parallelism)
	case p.MemoryKiB < 8*uint32(p.Parallelism) || p.MemoryKiB > MaxArgon2Memory:
		return decryptionErrorf("stored value asks for %d KiB of Argon2 memory, outside %d..%d", p.MemoryKiB, 8*uint32(p.Parallelism), MaxArgon2Memory)
	}
	return nil
}

// readPolicy is what a store accepts from a stored value before it derives
// anything from it: the database is untrusted, so a value's format and its
// Argon2 parameters are checked against the store's own settings first.
type readPolicy struct {
	// minVersion is the oldest format read ("" reads all).
	minVersion string
	// floor holds the least Iterations and MemoryKiB a stored value or
	// identity may ask for, so that no planted row makes a password guess
	// cheaper than the store's floor.
	floor argon2Params
	// maxMemoryKiB is the most Argon2 memory one derivation may ask for:
	// the store's KDFMemoryBudget.
	maxMemoryKiB uint32
}

// errRefused marks the read policy's refusals (a format below
// MinReadVersion, parameters below the floor or above the budget), which
// the store logs as warnings. They match ErrDecryptionFailed.
var errRefused = errors.New("refused by the store's read policy")

// refusedf is decryptionErrorf for the read policy's refusals.
func refusedf(format string, args ...any) error {
	return fmt.Errorf("%w: %w: "+format, append([]any{ErrDecryptionFailed, errRefused}, args...)...)
}

// allows refuses a format older than minVersion. Format names sort as
// their age ("v1" < "v2" < "v3").
func (rp readPolicy) allows(version string) error {
	if rp.minVersion != "" && version < rp.minVersion {
		return refusedf("value is in format %s, older than the store's MinReadVersion %s", version, rp.minVersion)
	}
	return nil
}

// admit refuses Argon2 parameters read from the database (a v3 header, a
// password identity) that are out of bounds, below the floor or above the
// memory budget, before anything is derived from them.
func (rp readPolicy) admit(p argon2Params) error {
	if err := checkArgon2Bounds(p); err != nil {
		return err
	}
	if p.Iterations < rp.floor.Iterations || p.MemoryKiB < rp.floor.MemoryKiB {
		return refusedf("stored parameters t=%d m=%d KiB are below the store's floor t=%d m=%d KiB", p.Iterations, p.MemoryKiB, rp.floor.Iterations, rp.floor.MemoryKiB)
	}
	if p.MemoryKiB > rp.maxMemoryKiB {
		return refusedf("stored parameters ask for %d KiB of Argon2 memory, more than the store's budget of %d KiB", p.MemoryKiB, rp.maxMemoryKiB)
	}
	return nil
}

// decryptValue is the one entry point for reads; a new format is one more
// case in the switch. token is the token the value is stored under (only v3
// binds it); cfg gives the parameters of v2 values, which do not carry them;
// policy says which formats and parameters the store accepts. v2Keys and
// v3KEKs supply keys for each format, so that a caller can cache v3 KEKs,
// which recur, without filling the cache with v2 keys that do not. A key
// enters a cache only once this value has shown it right.
func decryptValue(stored, password, token string, cfg *CryptoConfig, policy readPolicy, v2Keys, v3KEKs keySource) (string, error) {
	if len(stored) > maxStoredValueLen {
		return "", decryptionErrorf("stored value is %d bytes, more than the %d allowed", len(stored), maxStoredValueLen)
	}
	version, err := valueVersion(stored)
	if err != nil {
		return "", err
	}
	if err := policy.allows(version); err != nil {
		return "", err
	}
	switch version {
	case ENCRYPTION_VERSION_V1:
		return decryptV1(stored, password)
	case ENCRYPTION_VERSION_V2:
		v, err := parseV2(stored, cfg)
		if err != nil {
			return "", err
		}
		p := paramsFromConfig(cfg)
		key, fresh, err := v2Keys.key(password, v.salt, p)
		if err != nil {
			return "", err
		}
		defer clear(key)
		plain, err := v.open(key)
		if err == nil && fresh {
			v2Keys.keep(password, v.salt, p, key)
		}
		return plain, err
	case ENCRYPTION_VERSION_V3:
		v, err := parseV3(stored)
		if err != nil {
			return "", err
		}
		if err := policy.admit(v.params); err != nil {
			return "", err
		}
		kek, fresh, err := v3KEKs.key(password, v.vaultSalt, v.params)
		if err != nil {
			return "", err
		}
		defer clear(kek)
		plain, committed, err := v.open(kek, token)
		if committed && fresh {
			v3KEKs.keep(password, v.vaultSalt, v.params, kek)
		}
		return plain, err
	default:
		return "", decryptionErrorf("unsupported format %q", version)
	}
}
