// Stored value formats.
//
// A stored value names its format in a "vN:" prefix; a value with no such
// prefix is v1, which the original VaultStore wrote before it had prefixes.
// Base64 below is always the URL alphabet with padding (RFC 4648 section 5),
// decoded strictly: no line breaks, no non-zero trailing bits.
//
// v2, written and read:
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
//
// v1, read only (legacy; XOR with a password-derived pad, no integrity):
//
//	stored = ["v1:"] base64( middle XOR v1Key(password) )  pad repeats every 200 bytes
//	middle = base64( inner )
//	inner  = decimal(N) "_" base64(value) random-padding
//	                        \__ N chars __/
//
// The original writer pads inner with random alphanumerics to a power of two
// of at least 128 bytes; the reader needs only N.
//
// v3, written by default and read (docs/encryption.md has the rationale):
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
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
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

// v1KeyLen is the length of the hex pad v1Key produces.
const v1KeyLen = 40 + 64 + 64 + 32

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

// checkV2Config refuses a configuration that would make Argon2 or GCM panic
// or produce values no other reader understands.
func checkV2Config(cfg *CryptoConfig) error {
	if cfg == nil {
		return validationErrorf("no CryptoConfig")
	}
	return validateCryptoConfig(cfg)
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

// v1Key reproduces the original "strongified" password: a fixed chain of
// MD5, SHA-1 and SHA-256 hex digests. It is no KDF (no salt, no cost) and is
// kept only to read old values.
func v1Key(password string) string {
	m := md5Hex(password)
	p1 := sha256Hex(m + m + m + m)
	p2 := strings.Repeat(sha1Hex(p1), 3)
	p3 := sha1Hex(p2) + md5Hex(p2) + sha1Hex(p2)
	p4 := sha256Hex(p3)
	return sha1Hex(p4) + sha256Hex(md5Hex(p4)) + sha256Hex(sha1Hex(p4)) + md5Hex(p4)
}

func md5Hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func sha1Hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// decryptV1 reads a legacy value, with or without its "v1:" prefix. Only
// the outer layer can be checked before the XOR; everything after it is
// garbage under a wrong password, so any failure there is errOpenFailed,
// whatever the cause.
func decryptV1(stored, password string) (string, error) {
	if len(stored) > maxStoredValueLen {
		return "", decryptionErrorf("stored value is %d bytes, more than the %d allowed", len(stored), maxStoredValueLen)
	}
	body := strings.TrimPrefix(stored, ENCRYPTION_PREFIX_V1)
	if body == "" {
		return "", decryptionErrorf("v1 value is empty")
	}
	middle, err := decodeBase64(body)
	if err != nil {
		return "", decryptionErrorf("v1 value is not valid base64url: %v", err)
	}
	// The XOR keeps the length, and the middle layer is padded base64, so
	// its length is a non-zero multiple of four whatever the password.
	if len(middle)%4 != 0 {
		return "", decryptionErrorf("v1 value decodes to %d bytes, not a multiple of 4", len(middle))
	}
	xorV1(middle, v1Key(password))
	value, err := unwrapV1(middle)
	if err != nil {
		return "", errOpenFailed
	}
	return value, nil
}

// xorV1 applies the repeating pad in place.
func xorV1(b []byte, key string) {
	k := []byte(key)
	for off := 0; off < len(b); off += len(k) {
		subtle.XORBytes(b[off:], b[off:], k)
	}
}

// unwrapV1 undoes the two layers under the XOR. Its reasons exist for
// tests; decryptV1 replaces them with errOpenFailed, since after a wrong
// password every one of them is as likely as any other.
func unwrapV1(middle []byte) (string, error) {
	inner := make([]byte, b64.DecodedLen(len(middle)))
	n, err := decodeBase64Into(inner, middle)
	if err != nil {
		return "", decryptionErrorf("v1 inner layer is not valid base64url")
	}
	inner = inner[:n]

	sep := bytes.IndexByte(inner, '_')
	if sep < 0 {
		return "", decryptionErrorf("v1 inner layer has no length separator")
	}
	rest := inner[sep+1:]
	length, err := parseV1Length(inner[:sep], len(rest))
	if err != nil {
		return "", err
	}
	value := make([]byte, b64.DecodedLen(length))
	n, err = decodeBase64Into(value, rest[:length])
	if err != nil {
		return "", decryptionErrorf("v1 value text is not valid base64url")
	}
	defer clear(value)
	return string(value[:n]), nil
}

// parseV1Length reads the decimal length the original wrote with
// strconv.Itoa: digits only, no sign, no leading zero. It stops as soon as
// the number exceeds limit, so no length of digits can overflow.
func parseV1Length(digits []byte, limit int) (int, error) {
	if len(digits) == 0 {
		return 0, decryptionErrorf("v1 length field is empty")
	}
	if len(digits) > 1 && digits[0] == '0' {
		return 0, decryptionErrorf("v1 length field has a leading zero")
	}
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, decryptionErrorf("v1 length field is not a decimal number")
		}
		n = n*10 + int(c-'0')
		if n > limit {
			return 0, decryptionErrorf("v1 length field exceeds the %d bytes that follow it", limit)
		}
	}
	return n, nil
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

// allows refuses a format older than minVersion. Format names sort as
// their age ("v1" < "v2" < "v3").
func (rp readPolicy) allows(version string) error {
	if rp.minVersion != "" && version < rp.minVersion {
		return decryptionErrorf("value is in format %s, older than the store's MinReadVersion %s", version, rp.minVersion)
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
		return decryptionErrorf("stored parameters t=%d m=%d KiB are below the store's floor t=%d m=%d KiB", p.Iterations, p.MemoryKiB, rp.floor.Iterations, rp.floor.MemoryKiB)
	}
	if p.MemoryKiB > rp.maxMemoryKiB {
		return decryptionErrorf("stored parameters ask for %d KiB of Argon2 memory, more than the store's budget of %d KiB", p.MemoryKiB, rp.maxMemoryKiB)
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
