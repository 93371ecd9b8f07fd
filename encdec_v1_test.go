package vaultstore

import (
	"bytes"
	"encoding/base64"
	"errors"
	mathrand "math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// encodeV1ForTest is the inverse of decryptV1, written the way the original
// wrote values, so tests can build legacy values with any content.
func encodeV1ForTest(value []byte, password string, rng *mathrand.Rand) string {
	text := base64.URLEncoding.EncodeToString(value)
	inner := strconv.Itoa(len(text)) + "_" + text
	return wrapV1ForTest([]byte(inner+randomAlnum(rng, v1BlockLen(len(inner))-len(inner))), password)
}

// wrapV1ForTest applies the two outer layers to any inner text.
func wrapV1ForTest(inner []byte, password string) string {
	return xorLayerV1ForTest([]byte(base64.URLEncoding.EncodeToString(inner)), password)
}

// xorLayerV1ForTest applies only the outermost layer to any middle text.
func xorLayerV1ForTest(middle []byte, password string) string {
	key := v1Key(password)
	out := make([]byte, len(middle))
	for i := range middle {
		out[i] = middle[i] ^ key[i%len(key)]
	}
	return base64.URLEncoding.EncodeToString(out)
}

// v1BlockLen is the original writer's padded size: a power of two, at
// least 128.
func v1BlockLen(n int) int {
	b := 128
	for n > b {
		b *= 2
	}
	return b
}

func randomAlnum(rng *mathrand.Rand, n int) string {
	const chars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[rng.IntN(len(chars))]
	}
	return string(b)
}

func testRand() *mathrand.Rand { return mathrand.New(mathrand.NewPCG(1, 2)) }

// unwrapV1ForTest peels the outer two layers with the standard library,
// independently of decryptV1.
func unwrapV1ForTest(t *testing.T, stored, password string) []byte {
	t.Helper()
	outer, err := base64.URLEncoding.DecodeString(stored)
	if err != nil {
		t.Fatal(err)
	}
	key := v1Key(password)
	for i := range outer {
		outer[i] ^= key[i%len(key)]
	}
	inner, err := base64.URLEncoding.DecodeString(string(outer))
	if err != nil {
		t.Fatal(err)
	}
	return inner
}

// TestVectorV1EncoderIsExact shows the test encoder writes exactly what the
// original wrote: re-wrapping each vector's inner text reproduces it byte
// for byte, and the inner text has the original's shape.
func TestVectorV1EncoderIsExact(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.Format != "v1" {
			continue
		}
		inner := unwrapV1ForTest(t, v.StoredValue, v.Password)
		if got := wrapV1ForTest(inner, v.Password); got != v.StoredValue {
			t.Errorf("%s: re-wrapped value differs", v.Label)
		}
		n, rest, ok := strings.Cut(string(inner), "_")
		length, err := strconv.Atoi(n)
		if !ok || err != nil {
			t.Fatalf("%s: inner text has no length", v.Label)
		}
		if len(inner) != v1BlockLen(len(n)+1+length) {
			t.Errorf("%s: inner text is %d bytes, want %d", v.Label, len(inner), v1BlockLen(len(n)+1+length))
		}
		if strings.Trim(rest[length:], "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			t.Errorf("%s: padding is not alphanumeric", v.Label)
		}
	}
}

func TestV1Key(t *testing.T) {
	for _, pw := range []string{"", "pw", "pässwörd-🔑"} {
		k := v1Key(pw)
		if len(k) != v1KeyLen || strings.Trim(k, "0123456789abcdef") != "" {
			t.Errorf("v1Key(%q) is %d chars, not lowercase hex of %d", pw, len(k), v1KeyLen)
		}
	}
	if v1Key("a") == v1Key("b") {
		t.Error("v1Key ignores the password")
	}
}

func TestV1RoundTrip(t *testing.T) {
	rng := testRand()
	big := make([]byte, 70000)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	for name, value := range map[string][]byte{
		"empty": nil,
		// Base64 of these bytes contains '_' and '-', so the value text
		// holds the separator character: only the first '_' may split.
		"underscores in value text": {0xff, 0xff, 0xff, 0xfb, 0xef, 0xbe},
		"binary":                    {0, 1, 2, 0x80, 0xfe},
		"unicode":                   []byte("Grüße, 世界! 🔐"),
		"crosses 128":               bytes.Repeat([]byte("a"), 100),
		"large":                     big,
	} {
		stored := encodeV1ForTest(value, "v1 password", rng)
		for _, s := range []string{stored, ENCRYPTION_PREFIX_V1 + stored} {
			got, err := decryptValueDirect(s, "v1 password", tinyConfig())
			if err != nil || got != string(value) {
				t.Errorf("%s: decryptValue = %d bytes, %v", name, len(got), err)
			}
		}
	}
}

func TestV1Crafted(t *testing.T) {
	const pw = "crafting password"
	// After the XOR: each reaches unwrapV1 intact under the right password,
	// and must fail there with the named reason.
	innerCases := []struct {
		name, inner, reason string
	}{
		{"empty inner text", "", "no length separator"},
		{"no underscore", "20bGVnYWN5IHYxIHZhbHVl", "no length separator"},
		{"empty N", "_QUJD", "length field is empty"},
		{"non-numeric N", "2x_QUJD", "not a decimal number"},
		{"hex N", "0x4_QUJD", "leading zero"},
		{"negative N", "-4_QUJD", "not a decimal number"},
		{"plus sign", "+4_QUJD", "not a decimal number"},
		{"leading zero", "04_QUJD", "leading zero"},
		{"space in N", " 4_QUJD", "not a decimal number"},
		{"N just over remainder", "5_QUJD", "exceeds"},
		{"N far over remainder", "4096_QUJD", "exceeds"},
		{"max int64 N", "9223372036854775807_QUJD", "exceeds"},
		{"N overflows int64", "99999999999999999999999999999999_QUJD", "exceeds"},
		{"N overflows uint64 exactly", "18446744073709551620_QUJD", "exceeds"},
		{"N not a multiple of 4", "3_QUJD", "value text is not valid"},
		{"N cuts padding", "3_QQ==", "value text is not valid"},
		{"unpadded value text", "3_QUI", "value text is not valid"},
		{"bad character in value text", "4_QU*D", "value text is not valid"},
		{"standard alphabet in value text", "4_ab+/", "value text is not valid"},
		{"line break in value text", "4_QU\nJ", "value text is not valid"},
		{"non-canonical value text", "4_QUJ=", "value text is not valid"},
		{"N counts the separator", "5_QUJD_", "value text is not valid"},
	}
	for _, c := range innerCases {
		t.Run(c.name, func(t *testing.T) {
			middle := []byte(base64.URLEncoding.EncodeToString([]byte(c.inner)))
			if _, err := unwrapV1(bytes.Clone(middle)); err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("unwrapV1: err = %v, want reason %q", err, c.reason)
			}
			stored := xorLayerV1ForTest(middle, pw)
			if c.inner == "" {
				// Nothing to XOR: the value is empty before the XOR.
				if _, err := decryptV1(stored, pw); !errors.Is(err, ErrDecryptionFailed) {
					t.Errorf("decryptV1: err = %v", err)
				}
				return
			}
			if _, err := decryptV1(stored, pw); err != errOpenFailed {
				t.Errorf("decryptV1: err = %v, want errOpenFailed", err)
			}
		})
	}

	// The layer between the XOR and the inner text.
	for name, middle := range map[string]string{
		"bad character":      "QUJ*",
		"standard alphabet":  "ab+/",
		"line break":         "QU\nJ",
		"non-canonical bits": "QUJ=",
		"padding in middle":  "QQ==QUJD",
	} {
		t.Run("middle/"+name, func(t *testing.T) {
			if _, err := unwrapV1([]byte(middle)); err == nil || !strings.Contains(err.Error(), "inner layer") {
				t.Errorf("unwrapV1: err = %v", err)
			}
			if _, err := decryptV1(xorLayerV1ForTest([]byte(middle), pw), pw); err != errOpenFailed {
				t.Errorf("decryptV1: err = %v, want errOpenFailed", err)
			}
		})
	}

	// Before the XOR: structural, password-independent, never
	// ErrInvalidPassword.
	good := encodeV1ForTest([]byte("good"), pw, testRand())
	for name, stored := range map[string]string{
		"empty":                 "",
		"prefix only":           "v1:",
		"bad character":         "!!!!",
		"colon":                 "ab:c",
		"standard alphabet":     strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+/+/",
		"unpadded":              strings.TrimRight(good, "="),
		"line break":            good[:8] + "\n" + good[8:],
		"trailing newline":      good + "\n",
		"non-canonical bits":    nonCanonical(good),
		"length not multiple 4": base64.URLEncoding.EncodeToString([]byte{1, 2, 3, 4, 5}),
		"too long":              strings.Repeat("A", maxStoredValueLen+1),
	} {
		t.Run("outer/"+name, func(t *testing.T) {
			for _, s := range []string{stored, ENCRYPTION_PREFIX_V1 + stored} {
				_, err := decryptV1(s, pw)
				if !errors.Is(err, ErrDecryptionFailed) || errors.Is(err, ErrInvalidPassword) {
					t.Errorf("decryptV1: err = %v, want ErrDecryptionFailed only", err)
				}
			}
		})
	}
	if got, err := decryptV1(good, pw); err != nil || got != "good" {
		t.Fatalf("the unaltered value: %q, %v", got, err)
	}
}

func FuzzDecryptV1(f *testing.F) {
	for _, s := range fuzzSeeds(f, "v1") {
		f.Add(s[0], s[1])
	}
	rng := testRand()
	f.Add(encodeV1ForTest([]byte{0xff, 0xfb, 0xef}, "fz", rng), "fz")
	// Its inner text fills a 256-byte block, past the 128-byte minimum.
	f.Add(encodeV1ForTest(bytes.Repeat([]byte("v1"), 75), "fz", rng), "fz")
	f.Add(wrapV1ForTest([]byte("9223372036854775807_QUJD"), "fz"), "fz")
	f.Add(wrapV1ForTest([]byte("-4_QUJD"), "fz"), "fz")
	f.Add(wrapV1ForTest([]byte("8_QUJD"), "fz"), "fz")
	f.Add("", "")
	f.Add("v1:", "x")
	f.Fuzz(func(t *testing.T, stored, password string) {
		got, err := decryptV1(stored, password)
		checkFuzzError(t, err)
		if !strings.HasPrefix(stored, ENCRYPTION_PREFIX_V1) && len(stored)+len(ENCRYPTION_PREFIX_V1) <= maxStoredValueLen {
			// The prefix is optional and changes nothing.
			got2, err2 := decryptV1(ENCRYPTION_PREFIX_V1+stored, password)
			if got2 != got || (err == nil) != (err2 == nil) {
				t.Fatalf("with prefix: %q, %v; without: %q, %v", got2, err2, got, err)
			}
		}
	})
}
