// The v3 value format, written by default and read (docs/encryption.md has the rationale):
//
//	"v3:" base64( header | commitment | ciphertext | tag )
//	header = 3 | 1 | iterations | memory KiB | parallelism | 32 | vault salt | record salt | nonce
//	bytes:   1   1   4 (BE)       4 (BE)       1             1    16           16            12   = 56
//	commitment 32 bytes, tag 16 bytes
//
//	KEK        = Argon2id(password, vault salt, iterations, memory, parallelism, 32)    KDF 1
//	KEK        = HKDF(salt = root, Argon2id(…), "vaultstore v3 root kek")          KDF 2 (mixRoot)
//	PRK        = HKDF-Extract(SHA-256, salt = record salt, ikm = KEK)
//	key        = HKDF-Expand(PRK, "vaultstore v3 enc", 32)
//	commitment = HKDF-Expand(PRK, "vaultstore v3 commit", 32)
//	sealed     = AES-256-GCM-Seal(key, nonce, value, ad = header | token)
//
// The KEK depends only on the password and the vault, so it is derived once
// and cached; the record salt gives every value its own AES key, which keeps
// random nonces safe however many values one KEK seals. The commitment tells
// a wrong password (ErrInvalidPassword) from a damaged value
// (ErrDecryptionFailed), and binds the value to one key (key commitment),
// so no crafted value opens to different plaintexts under two passwords.
// The token in the associated data means a value copied onto another token
// does not open.

package vaultstore

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// v3 layout. The sizes are fixed by the format, not by CryptoConfig.
const (
	v3Version     = 3
	v3KDFArgon2id = 1 // KEK = Argon2id(password, vault salt)
	v3KDFRooted   = 2 // KEK = that, mixed with the vault's KMS root key
	v3KeyLen      = 32
	v3SaltLen     = 16
	v3NonceLen    = 12
	v3TagLen      = 16
	v3CommitLen   = 32
	v3HeaderLen   = 1 + 1 + 4 + 4 + 1 + 1 + v3SaltLen + v3SaltLen + v3NonceLen
	v3MinLen      = v3HeaderLen + v3CommitLen + v3TagLen
)

// mixRoot is the KEK of a KDF-2 value: the Argon2id key of the password
// and the vault's root key, neither of which opens anything alone.
//
//	KEK = HKDF-Expand(HKDF-Extract(SHA-256, salt = root, ikm = Argon2id key), "vaultstore v3 root kek", 32)
func mixRoot(root, argonKey []byte) ([]byte, error) {
	prk, err := hkdf.Extract(sha256.New, argonKey, root)
	if err != nil {
		return nil, fmt.Errorf("vaultstore: HKDF extract: %w", err)
	}
	defer clear(prk)
	kek, err := hkdf.Expand(sha256.New, prk, labelRootKEK, v3KeyLen)
	if err != nil {
		return nil, fmt.Errorf("vaultstore: HKDF expand: %w", err)
	}
	return kek, nil
}

// v3Params are the Argon2id parameters a v3 value is written with: those of
// cfg, with the KEK length the format fixes.
func v3Params(cfg *CryptoConfig) argon2Params {
	p := paramsFromConfig(cfg)
	p.KeyLength = v3KeyLen
	return p
}

// v3Keys expands the per-value encryption key and commitment from the KEK.
func v3Keys(kek, recordSalt []byte) (key, commitment []byte, err error) {
	prk, err := hkdf.Extract(sha256.New, kek, recordSalt)
	if err != nil {
		return nil, nil, fmt.Errorf("vaultstore: HKDF extract: %w", err)
	}
	defer clear(prk)
	key, err = hkdf.Expand(sha256.New, prk, labelV3Encrypt, v3KeyLen)
	if err != nil {
		return nil, nil, fmt.Errorf("vaultstore: HKDF expand: %w", err)
	}
	commitment, err = hkdf.Expand(sha256.New, prk, labelV3Commit, v3CommitLen)
	if err != nil {
		clear(key)
		return nil, nil, fmt.Errorf("vaultstore: HKDF expand: %w", err)
	}
	return key, commitment, nil
}

// v3AD is the associated data: the header, then the token.
func v3AD(header []byte, token string) []byte {
	ad := make([]byte, 0, len(header)+len(token))
	return append(append(ad, header...), token...)
}

// encryptV3 seals plaintext for token under kek, the key derived from the
// password and vaultSalt with p. Record salt and nonce come from random.
func encryptV3(plaintext, token string, kek []byte, p argon2Params, vaultSalt []byte, random io.Reader) (string, error) {
	if len(plaintext) > MaxValueSize {
		return "", validationErrorf("value is %d bytes, more than the %d allowed", len(plaintext), MaxValueSize)
	}
	if len(kek) != v3KeyLen || len(vaultSalt) != v3SaltLen {
		return "", validationErrorf("v3 needs a %d-byte key and a %d-byte vault salt", v3KeyLen, v3SaltLen)
	}
	if err := checkArgon2Bounds(p); err != nil {
		return "", validationErrorf("CryptoConfig cannot write v3 values: %v", err)
	}
	if random == nil {
		return "", validationErrorf("no source of randomness")
	}
	buf := make([]byte, v3HeaderLen+v3CommitLen, v3HeaderLen+v3CommitLen+len(plaintext)+v3TagLen)
	buf[0] = v3Version
	buf[1] = v3KDFArgon2id
	if p.Root {
		buf[1] = v3KDFRooted
	}
	binary.BigEndian.PutUint32(buf[2:], p.Iterations)
	binary.BigEndian.PutUint32(buf[6:], p.MemoryKiB)
	buf[10] = p.Parallelism
	buf[11] = v3KeyLen
	copy(buf[12:28], vaultSalt)
	if _, err := io.ReadFull(random, buf[28:v3HeaderLen]); err != nil {
		return "", fmt.Errorf("vaultstore: cannot read random salt and nonce: %w", err)
	}
	header := buf[:v3HeaderLen]
	recordSalt, nonce := buf[28:44], buf[44:v3HeaderLen]

	key, commitment, err := v3Keys(kek, recordSalt)
	if err != nil {
		return "", err
	}
	defer clear(key)
	copy(buf[v3HeaderLen:], commitment)
	gcm, err := newGCM(key)
	if err != nil {
		return "", err
	}
	out := gcm.Seal(buf, nonce, []byte(plaintext), v3AD(header, token))
	return ENCRYPTION_PREFIX_V3 + b64.EncodeToString(out), nil
}

// v3Value is a parsed v3 value; its slices alias the decoded bytes.
type v3Value struct {
	params     argon2Params
	header     []byte
	vaultSalt  []byte
	recordSalt []byte
	nonce      []byte
	commitment []byte
	sealed     []byte // ciphertext‖tag
}

// parseV3 checks the structure and parameters of a v3 value without
// deriving anything.
func parseV3(stored string) (v3Value, error) {
	if len(stored) > maxStoredValueLen {
		return v3Value{}, decryptionErrorf("stored value is %d bytes, more than the %d allowed", len(stored), maxStoredValueLen)
	}
	body, ok := strings.CutPrefix(stored, ENCRYPTION_PREFIX_V3)
	if !ok {
		return v3Value{}, decryptionErrorf("value is not in the v3 format")
	}
	raw, err := decodeBase64(body)
	if err != nil {
		return v3Value{}, decryptionErrorf("v3 value is not valid base64url: %v", err)
	}
	if len(raw) < v3MinLen {
		return v3Value{}, decryptionErrorf("v3 value is %d bytes, shorter than the %d of header, commitment and tag", len(raw), v3MinLen)
	}
	if raw[0] != v3Version {
		return v3Value{}, decryptionErrorf("v3 value has version byte %d", raw[0])
	}
	if raw[1] != v3KDFArgon2id && raw[1] != v3KDFRooted {
		return v3Value{}, decryptionErrorf("v3 value names unknown KDF %d", raw[1])
	}
	p := argon2Params{
		Iterations:  binary.BigEndian.Uint32(raw[2:]),
		MemoryKiB:   binary.BigEndian.Uint32(raw[6:]),
		Parallelism: raw[10],
		KeyLength:   uint32(raw[11]),
		Root:        raw[1] == v3KDFRooted,
	}
	if err := checkArgon2Bounds(p); err != nil {
		return v3Value{}, err
	}
	if p.KeyLength != v3KeyLen {
		return v3Value{}, decryptionErrorf("v3 value asks for a %d-byte key, not %d", p.KeyLength, v3KeyLen)
	}
	return v3Value{
		params:     p,
		header:     raw[:v3HeaderLen:v3HeaderLen],
		vaultSalt:  raw[12:28:28],
		recordSalt: raw[28:44:44],
		nonce:      raw[44:v3HeaderLen:v3HeaderLen],
		commitment: raw[v3HeaderLen : v3HeaderLen+v3CommitLen : v3HeaderLen+v3CommitLen],
		sealed:     raw[v3HeaderLen+v3CommitLen:],
	}, nil
}

// open checks the commitment, then authenticates and decrypts for token.
// committed reports that the commitment matched, which shows kek right for
// this value's password and vault salt even if the rest fails.
func (v v3Value) open(kek []byte, token string) (plain string, committed bool, err error) {
	key, commitment, err := v3Keys(kek, v.recordSalt)
	if err != nil {
		return "", false, err
	}
	defer clear(key)
	if subtle.ConstantTimeCompare(commitment, v.commitment) != 1 {
		return "", false, errPasswordMismatch
	}
	gcm, err := newGCM(key)
	if err != nil {
		return "", true, err
	}
	pt, err := gcm.Open(nil, v.nonce, v.sealed, v3AD(v.header, token))
	if err != nil {
		return "", true, decryptionErrorf("v3 value fails authentication: it was changed or belongs to another token")
	}
	defer clear(pt)
	return string(pt), true, nil
}
