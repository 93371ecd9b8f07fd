package vaultstore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/crypto/argon2"
)

func TestEncdecV2RoundTrip(t *testing.T) {
	big := make([]byte, 1<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	values := map[string]string{
		"empty":   "",
		"unicode": "Grüße, 世界! 🔐 — ünïcödé ✓",
		"binary":  string(all) + "\xff\xfe\x00invalid utf-8",
		"1MiB":    string(big),
	}
	for _, keyLen := range []int{16, 24, 32} {
		for name, value := range values {
			t.Run(fmt.Sprintf("AES-%d/%s", keyLen*8, name), func(t *testing.T) {
				t.Parallel()
				cfg := tinyConfig()
				cfg.KeyLength = keyLen
				stored, err := encryptV2(value, "round-trip password", cfg, rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				if want := len("v2:") + base64.URLEncoding.EncodedLen(16+12+len(value)+16); len(stored) != want {
					t.Errorf("stored value is %d chars, want %d", len(stored), want)
				}
				if v, err := valueVersion(stored); err != nil || v != "v2" {
					t.Errorf("valueVersion = %q, %v", v, err)
				}
				got, err := decryptValueDirect(stored, "round-trip password", cfg)
				if err != nil {
					t.Fatal(err)
				}
				if got != value {
					t.Error("round trip changed the value")
				}
				again, err := encryptV2(value, "round-trip password", cfg, rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				if again == stored {
					t.Error("two encryptions are identical: salt and nonce are not random")
				}
			})
		}
	}
}

func TestEncdecV2LongerSalt(t *testing.T) {
	cfg := tinyConfig()
	cfg.SaltSize = 32
	stored, err := encryptV2("value", "pw", cfg, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decryptV2(stored, "pw", cfg); err != nil || got != "value" {
		t.Fatalf("decryptV2 = %q, %v", got, err)
	}
	// The other salt size shifts every boundary, so the value cannot open.
	if _, err := decryptV2(stored, "pw", tinyConfig()); !errors.Is(err, ErrDecryptionFailed) {
		t.Errorf("with 16-byte salt: %v", err)
	}
}

// TestV2LayoutIndependent rebuilds a v2 value from its parts with x/crypto
// and the standard library directly.
func TestV2LayoutIndependent(t *testing.T) {
	const password, value = "layout password", "layout value ✓"
	cfg := tinyConfig()
	stored, err := encryptV2(value, password, cfg, &countingReader{})
	if err != nil {
		t.Fatal(err)
	}

	var salt, nonce [16]byte
	for i := range salt {
		salt[i] = byte(i)
	}
	for i := range 12 {
		nonce[i] = byte(16 + i)
	}
	key := argon2.IDKey([]byte(password), salt[:], 1, 8, 1, 32)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	raw = append(raw, salt[:]...)
	raw = append(raw, nonce[:12]...)
	raw = gcm.Seal(raw, nonce[:12], []byte(value), nil)
	if want := "v2:" + base64.URLEncoding.EncodeToString(raw); stored != want {
		t.Fatalf("encryptV2 = %s\nwant       %s", stored, want)
	}

	v, err := parseV2(stored, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v.salt, salt[:]) || !bytes.Equal(v.nonce, nonce[:12]) || !bytes.Equal(v.sealed, raw[28:]) {
		t.Fatal("parseV2 split the value at the wrong places")
	}
	if got, err := v.open(key); err != nil || got != value {
		t.Fatalf("open = %q, %v", got, err)
	}
	if !bytes.Equal(deriveArgon2id(password, salt[:], paramsFromConfig(cfg)), key) {
		t.Fatal("deriveArgon2id differs from argon2.IDKey")
	}
}

func TestV2ParsedValueIsIndependent(t *testing.T) {
	cfg := tinyConfig()
	stored, err := encryptV2("value", "pw", cfg, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := parseV2(stored, cfg)
	if err != nil {
		t.Fatal(err)
	}
	key := deriveArgon2id("pw", v.salt, paramsFromConfig(cfg))
	// Appending to one part must not overwrite the next.
	_ = append(v.salt, 0xAA)
	_ = append(v.nonce, 0xAA)
	if _, err := v.open(bytes.Repeat([]byte{1}, 32)); err != errOpenFailed {
		t.Fatalf("wrong key: %v", err)
	}
	// A failed open leaves the value usable.
	if got, err := v.open(key); err != nil || got != "value" {
		t.Fatalf("open after append and failure = %q, %v", got, err)
	}
}

func TestV2Tamper(t *testing.T) {
	cfg := tinyConfig()
	stored, err := encryptV2("tamper me", "tamper password", cfg, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.URLEncoding.DecodeString(strings.TrimPrefix(stored, "v2:"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		for bit := range 8 {
			b := bytes.Clone(raw)
			b[i] ^= 1 << bit
			_, err := decryptV2("v2:"+base64.URLEncoding.EncodeToString(b), "tamper password", cfg)
			// Every part is authenticated: the salt through the key, the
			// nonce, ciphertext and tag through GCM.
			if err != errOpenFailed {
				t.Fatalf("byte %d bit %d flipped: err = %v, want errOpenFailed", i, bit, err)
			}
		}
	}
	for n := range len(raw) {
		_, err := decryptV2("v2:"+base64.URLEncoding.EncodeToString(raw[:n]), "tamper password", cfg)
		if !errors.Is(err, ErrDecryptionFailed) {
			t.Fatalf("truncated to %d bytes: err = %v", n, err)
		}
	}
	_, err = decryptV2("v2:"+base64.URLEncoding.EncodeToString(append(bytes.Clone(raw), 0)), "tamper password", cfg)
	if err != errOpenFailed {
		t.Fatalf("extended by a byte: err = %v", err)
	}
}

// TestV2Malformed covers values refused before any key is derived: their
// errors match ErrDecryptionFailed and not ErrInvalidPassword, since the
// password played no part.
func TestV2Malformed(t *testing.T) {
	cfg := tinyConfig()
	good, err := encryptV2("value", "pw", cfg, &countingReader{})
	if err != nil {
		t.Fatal(err)
	}
	body := strings.TrimPrefix(good, "v2:")
	short := "v2:" + base64.URLEncoding.EncodeToString(make([]byte, 16+12+15))
	cases := map[string]string{
		"no prefix":            body,
		"empty body":           "v2:",
		"bad character":        "v2:" + body[:8] + "*" + body[9:],
		"standard alphabet":    "v2:" + strings.NewReplacer("-", "+", "_", "/").Replace(body) + "+/+/",
		"unpadded":             "v2:" + strings.TrimRight(body, "="),
		"line break":           "v2:" + body[:8] + "\n" + body[8:],
		"CRLF at end":          good + "\r\n",
		"space":                "v2:" + body[:8] + " " + body[8:],
		"non-canonical bits":   "v2:" + nonCanonical(body),
		"one byte short":       short,
		"too long":             "v2:" + strings.Repeat("A", maxStoredValueLen),
		"prefix in upper case": "V2:" + body,
	}
	for name, stored := range cases {
		for _, fn := range []struct {
			name string
			f    func() error
		}{
			{"decryptV2", func() error { _, err := decryptV2(stored, "pw", cfg); return err }},
			{"decryptValue", func() error { _, err := decryptValueDirect(stored, "pw", cfg); return err }},
		} {
			if name == "no prefix" && fn.name == "decryptValue" {
				continue // read as v1, covered there
			}
			err := fn.f()
			if !errors.Is(err, ErrDecryptionFailed) || errors.Is(err, ErrInvalidPassword) {
				t.Errorf("%s: %s: err = %v, want ErrDecryptionFailed only", name, fn.name, err)
			}
		}
	}
	if _, err := parseV2(good, cfg); err != nil {
		t.Fatalf("the unaltered value does not parse: %v", err)
	}
}

// nonCanonical sets the unused low bits of the last base64 character.
func nonCanonical(body string) string {
	trimmed := strings.TrimRight(body, "=")
	if len(trimmed) == len(body) {
		panic("nonCanonical needs a padded value")
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, trimmed[len(trimmed)-1])
	return trimmed[:len(trimmed)-1] + string(alphabet[last|1]) + body[len(trimmed):]
}

func TestEncdecV2BadArguments(t *testing.T) {
	cfg := tinyConfig()
	broken := tinyConfig()
	broken.Parallelism = 0
	oversize := strings.Repeat("x", MaxValueSize+1)
	for name, call := range map[string]func() error{
		"encrypt nil config":     func() error { _, err := encryptV2("v", "pw", nil, rand.Reader); return err },
		"encrypt broken config":  func() error { _, err := encryptV2("v", "pw", broken, rand.Reader); return err },
		"encrypt nil random":     func() error { _, err := encryptV2("v", "pw", cfg, nil); return err },
		"encrypt oversize value": func() error { _, err := encryptV2(oversize, "pw", cfg, rand.Reader); return err },
		"decrypt nil config":     func() error { _, err := decryptV2("v2:", "pw", nil); return err },
		"decrypt broken config":  func() error { _, err := decryptValueDirect("v2:AAAA", "pw", broken); return err },
		"open with short key": func() error {
			_, err := (v2Value{nonce: make([]byte, 12), sealed: make([]byte, 16)}).open(make([]byte, 7))
			return err
		},
	} {
		if err := call(); !errors.Is(err, ErrValidationFailed) {
			t.Errorf("%s: err = %v, want ErrValidationFailed", name, err)
		}
	}

	// A value not made by parseV2 is refused, not a panic in GCM.
	for name, v := range map[string]v2Value{
		"zero":        {},
		"short nonce": {nonce: make([]byte, 8), sealed: make([]byte, 32)},
		"short tag":   {nonce: make([]byte, 12), sealed: make([]byte, 15)},
	} {
		if _, err := v.open(make([]byte, 32)); !errors.Is(err, ErrDecryptionFailed) {
			t.Errorf("open %s value: err = %v", name, err)
		}
	}

	for name, r := range map[string]io.Reader{
		"failing": iotest.ErrReader(errors.New("entropy exhausted")),
		"short":   bytes.NewReader(make([]byte, 10)),
	} {
		_, err := encryptV2("v", "pw", cfg, r)
		if err == nil || !strings.HasPrefix(err.Error(), "vaultstore: ") {
			t.Errorf("%s random source: err = %v", name, err)
		}
	}
}

func FuzzDecryptV2(f *testing.F) {
	cfg := tinyConfig()
	for _, s := range fuzzSeeds(f, "v2") {
		f.Add(s[0], s[1])
	}
	for _, v := range []string{"", "fuzz value", "Grüße 🔐"} {
		stored, err := encryptV2(v, "fz", cfg, &countingReader{})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(stored, "fz")
	}
	f.Add("v2:", "")
	f.Add("v2:"+strings.Repeat("A", 60), "fz")
	f.Fuzz(func(t *testing.T, stored, password string) {
		got, err := decryptV2(stored, password, cfg)
		checkFuzzError(t, err)
		if err != nil {
			return
		}
		// Anything that opens must be exactly what encryptV2 writes for its
		// salt and nonce: the encoding is canonical and the layout fixed.
		v, perr := parseV2(stored, cfg)
		if perr != nil {
			t.Fatalf("opened but does not parse: %v", perr)
		}
		again, eerr := encryptV2(got, password, cfg, bytes.NewReader(append(bytes.Clone(v.salt), v.nonce...)))
		if eerr != nil || again != stored {
			t.Fatalf("re-encryption differs: %v", eerr)
		}
	})
}

// encryptV2 takes salt and nonce from random so that tests can make values
// reproducible; production passes crypto/rand.Reader. A fresh random salt
// gives every value its own key, which is what makes random 96-bit nonces
// safe (SP 800-38D section 8.3 limits invocations per key).
func encryptV2(plaintext, password string, cfg *CryptoConfig, random io.Reader) (string, error) {
	return encryptV2With(plaintext, password, cfg, random, deriveDirect)
}

// decryptV2 opens a v2 value with a key derived on the spot.
func decryptV2(stored, password string, cfg *CryptoConfig) (string, error) {
	v, err := parseV2(stored, cfg)
	if err != nil {
		return "", err
	}
	key := deriveArgon2id(password, v.salt, paramsFromConfig(cfg))
	defer clear(key)
	return v.open(key)
}
