package vaultstore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/crypto/argon2"
)

// tinyConfig is the cheapest configuration Argon2 accepts (one pass over
// 8 KiB), so tests and fuzzing can derive thousands of keys.
func tinyConfig() *CryptoConfig {
	return &CryptoConfig{
		Iterations:  1,
		Memory:      8,
		Parallelism: 1,
		KeyLength:   32,
		SaltSize:    V2_SALT_SIZE,
		NonceSize:   V2_NONCE_SIZE,
		TagSize:     V2_TAG_SIZE,
	}
}

// countingReader yields 0, 1, 2, ... so that v2 values are reproducible.
type countingReader struct{ next byte }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.next
		r.next++
	}
	return len(p), nil
}

type vector struct {
	Format          string  `json:"format"`
	CryptoConfig    string  `json:"crypto_config"`
	Label           string  `json:"label"`
	Password        string  `json:"password"`
	StoredValue     string  `json:"stored_value"`
	Plaintext       *string `json:"plaintext"`
	PlaintextBase64 *string `json:"plaintext_base64"`
	PlaintextSHA256 string  `json:"plaintext_sha256"`
	PlaintextLength *int    `json:"plaintext_length_bytes"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		About   string   `json:"about"`
		Vectors []vector `json:"vectors"`
	}
	// Unknown fields would be plaintext forms this test does not check.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, v := range file.Vectors {
		seen[v.Format]++
		forms := 0
		if v.Plaintext != nil {
			forms++
		}
		if v.PlaintextBase64 != nil {
			forms++
		}
		if v.PlaintextSHA256 != "" || v.PlaintextLength != nil {
			if v.PlaintextSHA256 == "" || v.PlaintextLength == nil {
				t.Fatalf("vector %s/%s has half of a digest", v.Format, v.Label)
			}
			forms++
		}
		if forms != 1 {
			t.Fatalf("vector %s/%s states its plaintext %d ways", v.Format, v.Label, forms)
		}
		if v.Format == "v2" && v.CryptoConfig != "Lightweight" {
			t.Fatalf("vector %s/%s uses config %q", v.Format, v.Label, v.CryptoConfig)
		}
	}
	if len(seen) != 2 || seen["v1"] == 0 || seen["v2"] == 0 {
		t.Fatalf("unexpected vector formats %v", seen)
	}
	return file.Vectors
}

// checkPlaintext compares got with whichever form the vector states.
func (v vector) checkPlaintext(t *testing.T, got string) {
	t.Helper()
	switch {
	case v.Plaintext != nil:
		if got != *v.Plaintext {
			t.Errorf("plaintext = %q, want %q", got, *v.Plaintext)
		}
	case v.PlaintextBase64 != nil:
		want, err := base64.StdEncoding.DecodeString(*v.PlaintextBase64)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("plaintext = %x, want %x", got, want)
		}
	default:
		sum := sha256.Sum256([]byte(got))
		if len(got) != *v.PlaintextLength || hex.EncodeToString(sum[:]) != v.PlaintextSHA256 {
			t.Errorf("plaintext is %d bytes with SHA-256 %x, want %d bytes with %s",
				len(got), sum, *v.PlaintextLength, v.PlaintextSHA256)
		}
	}
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Format+"/"+v.Label, func(t *testing.T) {
			t.Parallel()
			cfg := LightweightCryptoConfig()

			if got, err := valueVersion(v.StoredValue); err != nil || got != v.Format {
				t.Fatalf("valueVersion = %q, %v; want %q", got, err, v.Format)
			}
			got, err := decryptValueDirect(v.StoredValue, v.Password, cfg)
			if err != nil {
				t.Fatalf("decryptValue: %v", err)
			}
			v.checkPlaintext(t, got)

			if v.Format == "v1" {
				// The original defined "v1:" for these values; both spellings read.
				got, err := decryptValueDirect(ENCRYPTION_PREFIX_V1+v.StoredValue, v.Password, cfg)
				if err != nil {
					t.Fatalf("with v1: prefix: %v", err)
				}
				v.checkPlaintext(t, got)
			}

			_, err = decryptValueDirect(v.StoredValue, v.Password+"x", cfg)
			if !errors.Is(err, ErrInvalidPassword) || !errors.Is(err, ErrDecryptionFailed) {
				t.Errorf("wrong password: err = %v, want one matching ErrInvalidPassword and ErrDecryptionFailed", err)
			}
		})
	}
}

// TestVectorV2OpensOnlyWithItsConfig documents that v2 records no
// parameters: the default configuration derives another key.
func TestVectorV2OpensOnlyWithItsConfig(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.Format != "v2" || v.Label != "custom-token" {
			continue
		}
		_, err := decryptValueDirect(v.StoredValue, v.Password, DefaultCryptoConfig())
		if err != errOpenFailed {
			t.Errorf("err = %v, want errOpenFailed", err)
		}
		return
	}
	t.Fatal("vector v2/custom-token is missing")
}

// TestVectorV2LayoutIndependent opens a real vector with x/crypto and the
// standard library only, proving the byte layout without this package's
// helpers.
func TestVectorV2LayoutIndependent(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.Format != "v2" || v.Label != "unicode" {
			continue
		}
		raw, err := base64.URLEncoding.DecodeString(strings.TrimPrefix(v.StoredValue, "v2:"))
		if err != nil {
			t.Fatal(err)
		}
		salt, nonce, sealed := raw[:16], raw[16:28], raw[28:]
		key := argon2.IDKey([]byte(v.Password), salt, 2, 32*1024, 2, 32)
		block, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := gcm.Open(nil, nonce, sealed, nil)
		if err != nil {
			t.Fatal(err)
		}
		v.checkPlaintext(t, string(pt))
		return
	}
	t.Fatal("vector v2/unicode is missing")
}

func TestVectorV2Tamper(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.Format != "v2" || v.Label != "custom-token" {
			continue
		}
		raw, err := base64.URLEncoding.DecodeString(strings.TrimPrefix(v.StoredValue, "v2:"))
		if err != nil {
			t.Fatal(err)
		}
		// First salt byte, a nonce byte, a ciphertext byte, the last tag byte.
		for _, pos := range []int{0, 20, 30, len(raw) - 1} {
			t.Run(strconv.Itoa(pos), func(t *testing.T) {
				t.Parallel()
				b := bytes.Clone(raw)
				b[pos] ^= 0x40
				_, err := decryptV2("v2:"+base64.URLEncoding.EncodeToString(b), v.Password, LightweightCryptoConfig())
				if err != errOpenFailed {
					t.Errorf("err = %v, want errOpenFailed", err)
				}
			})
		}
		return
	}
	t.Fatal("vector v2/custom-token is missing")
}

func TestEncdecValueVersion(t *testing.T) {
	for stored, want := range map[string]string{
		"":                "v1",
		"abcd":            "v1",
		"v":               "v1",
		"v:abc":           "v1",
		"v2":              "v1",
		"V2:abc":          "v1",
		"vx:abc":          "v1",
		"v1:abc":          "v1",
		"v2:abc":          "v2",
		"v2:":             "v2",
		"v3:abc":          "v3",
		"v2:v9:":          "v2",
		"dmFsdWUgdjEK==":  "v1",
		"v1MjBfYkdWbllX=": "v1",
	} {
		if got, err := valueVersion(stored); err != nil || got != want {
			t.Errorf("valueVersion(%q) = %q, %v; want %q", stored, got, err, want)
		}
	}
	for _, stored := range []string{"v0:", "v4:abc", "v10:abc", "v01:abc", "v02:abc", "v99999999999999999999:abc"} {
		_, err := valueVersion(stored)
		if !errors.Is(err, ErrDecryptionFailed) || !strings.Contains(err.Error(), "unknown format") {
			t.Errorf("valueVersion(%q): err = %v", stored, err)
		}
		if _, err2 := decryptValueDirect(stored, "pw", tinyConfig()); !errors.Is(err2, ErrDecryptionFailed) || errors.Is(err2, ErrInvalidPassword) {
			t.Errorf("decryptValueDirect(%q): err = %v", stored, err2)
		}
	}
	_, err := decryptValueDirect("v3:AAAA", "pw", tinyConfig())
	if !errors.Is(err, ErrDecryptionFailed) || errors.Is(err, ErrInvalidPassword) {
		t.Errorf("v3: err = %v", err)
	}
}

// TestEncdecSizeLimit checks that maxStoredValueLen admits every value the
// writers can produce for a MaxValueSize plaintext, and nothing is decoded
// beyond it.
func TestEncdecSizeLimit(t *testing.T) {
	b64 := base64.URLEncoding.EncodedLen
	v1Len := func(n int) int {
		text := b64(n)
		inner := len(strconv.Itoa(text)) + 1 + text
		return b64(b64(v1BlockLen(inner)))
	}
	rng := testRand()
	for _, n := range []int{0, 1, 90, 91, 92, 1000, 5000} {
		if got := len(encodeV1ForTest(make([]byte, n), "pw", rng)); got != v1Len(n) {
			t.Fatalf("v1Len(%d) = %d, the encoder wrote %d", n, v1Len(n), got)
		}
	}
	if l := v1Len(MaxValueSize); l > maxStoredValueLen {
		t.Errorf("a v1 value of MaxValueSize is %d chars, over maxStoredValueLen %d", l, maxStoredValueLen)
	}
	if l := len("v2:") + b64(16+12+MaxValueSize+16); l > maxStoredValueLen {
		t.Errorf("a v2 value of MaxValueSize is %d chars, over maxStoredValueLen %d", l, maxStoredValueLen)
	}

	// Invalid from the first byte: only the length check can be what
	// refuses them, and the message says so.
	for name, stored := range map[string]string{
		"v1": strings.Repeat("!", maxStoredValueLen+1),
		"v2": "v2:" + strings.Repeat("!", maxStoredValueLen),
	} {
		_, err := decryptValueDirect(stored, "pw", tinyConfig())
		if !errors.Is(err, ErrDecryptionFailed) || !strings.Contains(err.Error(), "allowed") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := decryptV1(strings.Repeat("!", maxStoredValueLen+1), "pw"); err == nil || !strings.Contains(err.Error(), "allowed") {
		t.Errorf("decryptV1: err = %v", err)
	}
	if _, err := parseV2("v2:"+strings.Repeat("!", maxStoredValueLen), tinyConfig()); err == nil || !strings.Contains(err.Error(), "allowed") {
		t.Errorf("parseV2: err = %v", err)
	}
}

// TestEncdecErrorsDoNotLeak collects the error of every failure path and
// checks none reveals the password, the plaintext or a key.
func TestEncdecErrorsDoNotLeak(t *testing.T) {
	const (
		password  = "PW-secret-7f3a9c-do-not-print"
		plaintext = "PT-secret-2b8e1d-do-not-print"
	)
	cfg := tinyConfig()
	v2, err := encryptV2(plaintext, password, cfg, &countingReader{})
	if err != nil {
		t.Fatal(err)
	}
	v1 := encodeV1ForTest([]byte(plaintext), password, testRand())
	raw, _ := base64.URLEncoding.DecodeString(strings.TrimPrefix(v2, "v2:"))
	flipped := bytes.Clone(raw)
	flipped[len(flipped)-1] ^= 1

	var errs []error
	add := func(_ string, err error) { errs = append(errs, err) }
	for _, pw := range []string{password + "x", "x" + password, ""} {
		add(decryptValueDirect(v2, pw, cfg))
		add(decryptValueDirect(v1, pw, cfg))
	}
	add(decryptValueDirect("v2:"+base64.URLEncoding.EncodeToString(flipped), password, cfg))
	add(decryptValueDirect(v2, password, DefaultCryptoConfig()))
	add(decryptValueDirect(password, password, cfg))
	add(decryptValueDirect(plaintext, password, cfg))
	add(decryptValueDirect("v2:"+password, password, cfg))
	add(decryptValueDirect("v9:"+password, password, cfg))
	add(decryptValueDirect("v1:"+plaintext+"=", password, cfg))
	add(decryptValueDirect(wrapV1ForTest([]byte("99_"+plaintext), password), password, cfg))
	add(decryptValueDirect(wrapV1ForTest([]byte(plaintext), password), password, cfg))
	add(encryptV2(strings.Repeat(plaintext, MaxValueSize/len(plaintext)+1), password, cfg, rand.Reader))
	add(encryptV2(plaintext, password, nil, rand.Reader))
	add(encryptV2(plaintext, password, cfg, iotest.ErrReader(errors.New("no entropy"))))
	// unwrapV1's reasons are dropped by decryptV1, but check them as well.
	add(unwrapV1([]byte(base64.URLEncoding.EncodeToString([]byte("99_" + plaintext)))))
	add(unwrapV1([]byte(base64.URLEncoding.EncodeToString([]byte(plaintext)))))

	v1key := v1Key(password)
	argonKey := hex.EncodeToString(deriveArgon2id(password, raw[:16], paramsFromConfig(cfg)))
	secrets := []string{password, plaintext, v1key, v1key[:40], argonKey, argonKey[:16],
		base64.URLEncoding.EncodeToString([]byte(plaintext))[:16]}
	for i, err := range errs {
		if err == nil {
			t.Fatalf("case %d did not fail", i)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "vaultstore: ") {
			t.Errorf("case %d: %q lacks the package prefix", i, msg)
		}
		for _, s := range secrets {
			if strings.Contains(msg, s) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), s) {
				t.Errorf("case %d: error %q reveals a secret", i, msg)
			}
		}
	}
}

// fuzzSeeds returns the vectors of format ("" for all) as (stored,
// password) pairs. Large ones are left out: the fuzzer minimizes every
// interesting input one byte at a time, and on a 14 KB value that stalls
// the whole run for a minute while finding nothing a small value would not.
func fuzzSeeds(t testing.TB, format string) [][2]string {
	var seeds [][2]string
	for _, v := range loadVectors(t) {
		if (format == "" || v.Format == format) && len(v.StoredValue) <= 1024 {
			seeds = append(seeds, [2]string{v.StoredValue, v.Password})
		}
	}
	return seeds
}

func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, ErrDecryptionFailed) && !errors.Is(err, ErrInvalidPassword) {
		t.Fatalf("error matches no decryption sentinel: %v", err)
	}
	if err != nil && !strings.HasPrefix(err.Error(), "vaultstore: ") {
		t.Fatalf("error lacks the package prefix: %v", err)
	}
}

func FuzzDecryptValue(f *testing.F) {
	cfg := tinyConfig()
	for _, s := range fuzzSeeds(f, "") {
		f.Add(s[0], s[1])
	}
	stored, err := encryptV2("dispatch", "fz", cfg, &countingReader{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(stored, "fz")
	f.Add("v1:"+encodeV1ForTest([]byte("dispatch"), "fz", testRand()), "fz")
	for _, s := range []string{"v3:AAAA", "v9:", "v01:", "v2", "v:", "V2:AAAA"} {
		f.Add(s, "fz")
	}
	f.Fuzz(func(t *testing.T, stored, password string) {
		_, err := decryptValue(stored, password, "tk_fuzz", cfg, anyParams, cheapKeys, cheapKeys)
		checkFuzzError(t, err)
		version, verr := valueVersion(stored)
		switch {
		case verr != nil:
			if err == nil || errors.Is(err, ErrInvalidPassword) {
				t.Fatalf("unknown version %v read as %v", verr, err)
			}
		case version != ENCRYPTION_VERSION_V1 && version != ENCRYPTION_VERSION_V2 && version != ENCRYPTION_VERSION_V3:
			t.Fatalf("valueVersion = %q", version)
		}
	})
}

// decryptValueDirect reads a value with keys derived on the spot and no
// token, as the v1 and v2 vectors need.
func decryptValueDirect(stored, password string, cfg *CryptoConfig) (string, error) {
	return decryptValue(stored, password, "", cfg, anyParams, deriveDirect, deriveDirect)
}

// cheapKeys stands in for Argon2id where a test or fuzz target exercises
// everything around the derivation: a hash of its inputs, as long as asked.
// It refuses lengths no format uses, as a guard against a parser that lets
// one through.
var cheapKeys = keyFunc(func(password string, salt []byte, p argon2Params) ([]byte, error) {
	if p.KeyLength != 16 && p.KeyLength != 24 && p.KeyLength != 32 {
		return nil, fmt.Errorf("cheapKeys: key length %d", p.KeyLength)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d/%d/%d/%q/", p.Iterations, p.MemoryKiB, p.Parallelism, password)
	h.Write(salt)
	return h.Sum(nil)[:p.KeyLength], nil
})

// keyFunc adapts a function to a keySource that caches nothing.
type keyFunc func(password string, salt []byte, p argon2Params) ([]byte, error)

func (f keyFunc) key(password string, salt []byte, p argon2Params) ([]byte, bool, error) {
	k, err := f(password, salt, p)
	return k, true, err
}

func (keyFunc) keep(string, []byte, argon2Params, []byte) {}

// deriveDirect is a keySource without cache or bounds.
var deriveDirect = keyFunc(func(password string, salt []byte, p argon2Params) ([]byte, error) {
	return deriveArgon2id(password, salt, p), nil
})

// anyParams reads every format and accepts any parameters within the
// absolute ceilings: the codec's own checks, without a store's policy.
var anyParams = readPolicy{floor: argon2Params{Iterations: 1, MemoryKiB: 8}, maxMemoryKiB: MaxArgon2Memory}
