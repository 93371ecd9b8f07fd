package vaultstore

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPHCRoundTrip(t *testing.T) {
	p := argon2Params{Iterations: 3, MemoryKiB: 65536, Parallelism: 4, KeyLength: 32}
	salt := bytes.Repeat([]byte{1}, 16)
	hash := bytes.Repeat([]byte{2}, 32)
	s := formatPHC(p, salt, hash)
	if !strings.HasPrefix(s, "$argon2id$v=19$m=65536,t=3,p=4$") {
		t.Fatalf("PHC string %q", s)
	}
	h, err := parsePHC(s)
	if err != nil || h.params != p || !bytes.Equal(h.salt, salt) || !bytes.Equal(h.hash, hash) {
		t.Fatalf("parsePHC = %+v, %v", h, err)
	}
}

// TestPHCRejects: the meta table is as untrusted as the vault table, so a
// crafted identity must not make verification allocate gigabytes.
func TestPHCRejects(t *testing.T) {
	good := formatPHC(argon2Params{Iterations: 1, MemoryKiB: 8, Parallelism: 1, KeyLength: 32}, make([]byte, 16), make([]byte, 32))
	for _, s := range []string{
		"",
		"$argon2i$v=19$m=8,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		strings.Replace(good, "m=8", "m=4194304", 1),
		strings.Replace(good, "t=1", "t=1000", 1),
		strings.Replace(good, "p=1", "p=300", 1),
		strings.Replace(good, "p=1", "p=0", 1),
		strings.Replace(good, "m=8", "m=x", 1),
		strings.Replace(good, "m=8", "q=8", 1),
		strings.Replace(good, "v=19", "v=16", 1),
		good[:len(good)-30],
		good + "$extra",
	} {
		if _, err := parsePHC(s); !errors.Is(err, ErrDecryptionFailed) {
			t.Errorf("parsePHC(%q) = %v, want ErrDecryptionFailed", s, err)
		}
	}
}

func FuzzParsePHC(f *testing.F) {
	f.Add(formatPHC(argon2Params{Iterations: 1, MemoryKiB: 8, Parallelism: 1, KeyLength: 32}, make([]byte, 16), make([]byte, 32)))
	f.Add("$argon2id$v=19$m=,t=,p=$$")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parsePHC(s)
		if err != nil {
			return
		}
		if checkArgon2Bounds(h.params) != nil {
			t.Fatalf("parsePHC accepted out-of-bounds parameters %+v", h.params)
		}
	})
}

// TestIdentityInsertOfTakenToken: with identities on, the insert runs in a
// transaction. An insert that hits a taken token (as when another client
// stores it after TokenCreateCustom's check) is ErrTokenAlreadyExists, and
// on a database with a single connection its classification does not wait
// for the transaction's own connection.
func TestIdentityInsertOfTakenToken(t *testing.T) {
	s := newMemoryStore(t, NewStoreOptions{CryptoConfig: tinyConfig(), PasswordIdentityEnabled: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const pw = "a password long enough"
	if err := s.createToken(ctx, "tk_taken00000001", "first", pw, MAX_DATETIME); err != nil {
		t.Fatal(err)
	}
	if err := s.createToken(ctx, "tk_taken00000001", "second", pw, MAX_DATETIME); !errors.Is(err, ErrTokenAlreadyExists) {
		t.Fatalf("second insert of a token = %v, want ErrTokenAlreadyExists", err)
	}
}
