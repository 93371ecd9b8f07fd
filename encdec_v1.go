// The v1 value format, read only (legacy; XOR with a password-derived pad, no integrity):
//
//	stored = ["v1:"] base64( middle XOR v1Key(password) )  pad repeats every 200 bytes
//	middle = base64( inner )
//	inner  = decimal(N) "_" base64(value) random-padding
//	                        \__ N chars __/
//
// The original writer pads inner with random alphanumerics to a power of two
// of at least 128 bytes; the reader needs only N.

package vaultstore

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

// v1KeyLen is the length of the hex pad v1Key produces.
const v1KeyLen = 40 + 64 + 64 + 32

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
