package vaultstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestIdentityRoundTrip(t *testing.T) {
	p := argon2Params{Iterations: 3, MemoryKiB: 65536, Parallelism: 4, KeyLength: 32}
	salt := bytes.Repeat([]byte{1}, 16)
	verifier := bytes.Repeat([]byte{2}, 32)
	s := formatIdentity(p, salt, verifier)
	if !strings.HasPrefix(s, "$vaultstore-identity$v=2$m=65536,t=3,p=4$") {
		t.Fatalf("identity %q", s)
	}
	id, err := parseIdentity(s)
	if err != nil || id.legacy || id.params != p || !bytes.Equal(id.salt, salt) || !bytes.Equal(id.hash, verifier) {
		t.Fatalf("parseIdentity = %+v, %v", id, err)
	}
	// The form written by releases before the verifier.
	legacy := "$argon2id$v=19$m=64,t=1,p=1$" + phcB64.EncodeToString(salt) + "$" + phcB64.EncodeToString(verifier)
	id, err = parseIdentity(legacy)
	if err != nil || !id.legacy || id.params != (argon2Params{Iterations: 1, MemoryKiB: 64, Parallelism: 1, KeyLength: 32}) {
		t.Fatalf("parseIdentity(legacy) = %+v, %v", id, err)
	}
}

// TestIdentityVerifierIsNoKey: the verifier is a one-way function of K
// under its own label, unequal to K and to the v3 key and commitment that
// K would give.
func TestIdentityVerifierIsNoKey(t *testing.T) {
	k := bytes.Repeat([]byte{7}, 32)
	v, err := identityVerifier(k)
	if err != nil || len(v) != identityVerifierLen || bytes.Equal(v, k) {
		t.Fatalf("identityVerifier = %x, %v", v, err)
	}
	key, commitment, err := v3Keys(k, make([]byte, 16))
	if err != nil || bytes.Equal(v, key) || bytes.Equal(v, commitment) {
		t.Fatal("the verifier equals a v3 key or commitment")
	}
}

// TestIdentityRejects: the meta table is as untrusted as the vault table, so
// a crafted identity must not make verification allocate gigabytes.
func TestIdentityRejects(t *testing.T) {
	for _, good := range []string{
		formatIdentity(argon2Params{Iterations: 1, MemoryKiB: 8, Parallelism: 1}, make([]byte, 16), make([]byte, 32)),
		"$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	} {
		if _, err := parseIdentity(good); err != nil {
			t.Fatalf("parseIdentity(%q) = %v", good, err)
		}
		for _, s := range []string{
			"",
			strings.Replace(good, "$v=", "$w=", 1),
			strings.Replace(good, "m=8", "m=4194304", 1),
			strings.Replace(good, "t=1", "t=1000", 1),
			strings.Replace(good, "p=1", "p=300", 1),
			strings.Replace(good, "p=1", "p=0", 1),
			strings.Replace(good, "m=8", "m=x", 1),
			strings.Replace(good, "m=8", "q=8", 1),
			strings.Replace(good, "m=8", "m=08", 1),
			strings.Replace(good, "t=1", "m=8", 1),
			strings.Replace(good, ",p=1", "", 1),
			good[:len(good)-30],
			good + "$extra",
		} {
			if _, err := parseIdentity(s); !errors.Is(err, ErrDecryptionFailed) {
				t.Errorf("parseIdentity(%q) = %v, want ErrDecryptionFailed", s, err)
			}
		}
	}
	short := formatIdentity(argon2Params{Iterations: 1, MemoryKiB: 8, Parallelism: 1}, make([]byte, 16), make([]byte, 31))
	if _, err := parseIdentity(short); !errors.Is(err, ErrDecryptionFailed) {
		t.Errorf("a 31-byte verifier = %v, want ErrDecryptionFailed", err)
	}
}

func FuzzParseIdentity(f *testing.F) {
	f.Add(formatIdentity(argon2Params{Iterations: 1, MemoryKiB: 8, Parallelism: 1}, make([]byte, 16), make([]byte, 32)))
	f.Add("$argon2id$v=19$m=64,t=1,p=1$gKEUIcT14fRUeTCSaTwPuw$9BVlmRn42AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=,t=,p=$$")
	f.Add("$vaultstore-identity$v=2$m=8,t=1,p=1,m=8$$")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseIdentity(s)
		if err != nil {
			if !errors.Is(err, ErrDecryptionFailed) {
				t.Fatalf("parseIdentity error %v does not match ErrDecryptionFailed", err)
			}
			return
		}
		if checkArgon2Bounds(id.params) != nil {
			t.Fatalf("parseIdentity accepted out-of-bounds parameters %+v", id.params)
		}
		if !id.legacy {
			if len(id.hash) != identityVerifierLen || id.params.KeyLength != v3KeyLen {
				t.Fatalf("parseIdentity accepted a %d-byte verifier", len(id.hash))
			}
			again, err := parseIdentity(formatIdentity(id.params, id.salt, id.hash))
			if err != nil || again.params != id.params || !bytes.Equal(again.salt, id.salt) || !bytes.Equal(again.hash, id.hash) {
				t.Fatalf("parse, format, parse changed the identity: %v", err)
			}
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

// BenchmarkIdentityLookup100 finds one password's identity among 100 in a
// process that has not seen the password yet (the identity cache is
// emptied each time, the key cache too): it reports the Argon2id
// derivations per lookup, which must stay at one however many identities
// there are.
func BenchmarkIdentityLookup100(b *testing.B) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	b.Cleanup(func() { db.Close() })
	s, err := NewStore(NewStoreOptions{VaultTableName: "v", VaultMetaTableName: "m", DB: db, AutomigrateEnabled: true,
		CryptoConfig: &CryptoConfig{Iterations: 1, Memory: 1 << 10, Parallelism: 1, KeyLength: 32, SaltSize: 16, NonceSize: 12, TagSize: 16}, PasswordIdentityEnabled: true})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		if _, err := s.TokenCreate(ctx, "v", fmt.Sprintf("password number %03d, long", i), 20); err != nil {
			b.Fatal(err)
		}
	}
	before := s.keys.derivations.Load()
	for b.Loop() {
		s.shared.identityIDs.purge()
		s.keys.cache.purge()
		if _, err := s.identityFor(ctx, "password number 057, long"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.keys.derivations.Load()-before)/float64(b.N), "derivations/op")
}
