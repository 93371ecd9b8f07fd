package vaultstore_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vaultstore/vaultstore"
	"gocloud.dev/secrets"
	"gocloud.dev/secrets/localsecrets"
)

// newKeeper is a local gocloud.dev Keeper with a random key: the same type
// an application gets for AWS KMS, Google Cloud KMS or Vault Transit.
func newKeeper(t testing.TB) *secrets.Keeper {
	t.Helper()
	key, err := localsecrets.NewRandomKey()
	if err != nil {
		t.Fatal(err)
	}
	k := localsecrets.NewKeeper(key)
	t.Cleanup(func() { k.Close() })
	return k
}

// versionedKMS stands in for a KMS key with versions: it encrypts with the
// newest version and decrypts with whichever opens, counting calls.
type versionedKMS struct {
	versions []*secrets.Keeper // oldest first
	calls    atomic.Int64
}

func (v *versionedKMS) Encrypt(ctx context.Context, plaintext []byte) ([]byte, error) {
	v.calls.Add(1)
	return v.versions[len(v.versions)-1].Encrypt(ctx, plaintext)
}

func (v *versionedKMS) Decrypt(ctx context.Context, ciphertext []byte) ([]byte, error) {
	v.calls.Add(1)
	for i := len(v.versions) - 1; i >= 0; i-- {
		if pt, err := v.versions[i].Decrypt(ctx, ciphertext); err == nil {
			return pt, nil
		}
	}
	return nil, errors.New("no key version opens it")
}

// brokenKMS fails every call, as a KMS that is down or denies access.
type brokenKMS struct{ calls atomic.Int64 }

func (b *brokenKMS) Encrypt(context.Context, []byte) ([]byte, error) {
	b.calls.Add(1)
	return nil, errors.New("kms: access denied")
}

func (b *brokenKMS) Decrypt(context.Context, []byte) ([]byte, error) {
	b.calls.Add(1)
	return nil, errors.New("kms: access denied")
}

func withWrapper(w vaultstore.KeyWrapper) func(*vaultstore.NewStoreOptions) {
	return func(o *vaultstore.NewStoreOptions) { o.KeyWrapper = w }
}

// kdfOf is the KDF byte of a stored v3 value's header.
func kdfOf(t testing.TB, stored string) byte {
	t.Helper()
	raw, err := base64.URLEncoding.DecodeString(strings.TrimPrefix(stored, "v3:"))
	if err != nil || len(raw) < 2 {
		t.Fatalf("not a v3 value: %v", err)
	}
	return raw[1]
}

// TestKeyWrapperBindsValues: with a wrapper, values need the password and
// the root; the same database and password without the wrapper, or with
// another KMS key, cannot read them (ErrKeyUnavailable, not
// ErrInvalidPassword) and cannot write.
func TestKeyWrapperBindsValues(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		kms := newKeeper(t)
		s := newStore(t, db, withWrapper(kms))
		mustCustom(t, s, "tk_rooted_value1", "bound to the root", testPassword)
		if v, err := s.TokenRead(ctx, "tk_rooted_value1", testPassword); err != nil || v != "bound to the root" {
			t.Fatalf("TokenRead = %q, %v", v, err)
		}
		if k := kdfOf(t, storedRows(t, s)["tk_rooted_value1"][vaultstore.COLUMN_VAULT_VALUE]); k != 2 {
			t.Fatalf("KDF byte %d, want 2 (bound to the root)", k)
		}
		if _, err := s.GetVaultSetting(ctx, vaultstore.META_KEY_ROOT_KEY); err != nil {
			t.Fatalf("no wrapped root stored: %v", err)
		}

		for name, opts := range map[string]func(*vaultstore.NewStoreOptions){
			"no wrapper":      func(*vaultstore.NewStoreOptions) {},
			"another KMS key": withWrapper(newKeeper(t)),
		} {
			other := reopen(t, s, vaultstore.NewStoreOptions{DB: db, CryptoConfig: testCrypto()}, opts)
			_, err := other.TokenRead(ctx, "tk_rooted_value1", testPassword)
			if !errors.Is(err, vaultstore.ErrKeyUnavailable) || errors.Is(err, vaultstore.ErrInvalidPassword) {
				t.Errorf("%s: TokenRead = %v, want ErrKeyUnavailable alone", name, err)
			}
			err = other.TokenCreateCustom(ctx, "tk_rooted_nowrite", "x", testPassword)
			if !errors.Is(err, vaultstore.ErrKeyUnavailable) {
				t.Errorf("%s: a write = %v, want ErrKeyUnavailable", name, err)
			}
		}
		if _, ok := storedRows(t, s)["tk_rooted_nowrite"]; ok {
			t.Fatal("a store that could not have the root wrote a value")
		}
		// Retiring the root, explicitly, writes values bound to the
		// password alone.
		retired := reopen(t, s, vaultstore.NewStoreOptions{DB: db, CryptoConfig: testCrypto(), RootKeyRetired: true})
		mustCustom(t, retired, "tk_rooted_retired", "password only", testPassword)
		if k := kdfOf(t, storedRows(t, s)["tk_rooted_retired"][vaultstore.COLUMN_VAULT_VALUE]); k != 1 {
			t.Fatalf("retired root: KDF byte %d, want 1", k)
		}
	})
}

// TestKeyWrapperAdoptAndRemove: values written before a wrapper was set
// keep opening; a same-password rotation binds them to the root; with
// RootKeyRetired the reverse rotation unbinds them.
func TestKeyWrapperAdoptAndRemove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openMemorySQLite(t)
	plain := newStore(t, db)
	mustCustom(t, plain, "tk_adopt_before01", "before", testPassword)
	kms := newKeeper(t)
	wrapped := reopen(t, plain, vaultstore.NewStoreOptions{DB: db, CryptoConfig: testCrypto(), KeyWrapper: kms})
	if v, err := wrapped.TokenRead(ctx, "tk_adopt_before01", testPassword); err != nil || v != "before" {
		t.Fatalf("a value from before the wrapper = %q, %v", v, err)
	}
	p, err := wrapped.TokensChangePasswordWithOptions(ctx, testPassword, testPassword, vaultstore.ChangePasswordOptions{})
	if err != nil || p.Changed != 1 || p.FromV3 != 1 {
		t.Fatalf("adoption rotation = %+v, %v", p, err)
	}
	if k := kdfOf(t, storedRows(t, wrapped)["tk_adopt_before01"][vaultstore.COLUMN_VAULT_VALUE]); k != 2 {
		t.Fatalf("after adoption: KDF byte %d, want 2", k)
	}
	if n, err := wrapped.TokensChangePassword(ctx, testPassword, testPassword); err != nil || n != 0 {
		t.Fatalf("second adoption rotation = %d, %v, want 0", n, err)
	}
	retire := reopen(t, plain, vaultstore.NewStoreOptions{DB: db, CryptoConfig: testCrypto(), KeyWrapper: kms, RootKeyRetired: true})
	if n, err := retire.TokensChangePassword(ctx, testPassword, testPassword); err != nil || n != 1 {
		t.Fatalf("removal rotation = %d, %v, want 1", n, err)
	}
	unwrapped := reopen(t, plain, vaultstore.NewStoreOptions{DB: db, CryptoConfig: testCrypto(), RootKeyRetired: true})
	if v, err := unwrapped.TokenRead(ctx, "tk_adopt_before01", testPassword); err != nil || v != "before" {
		t.Fatalf("after removal, without a wrapper = %q, %v", v, err)
	}
}

// TestRewrapRoot: after the KMS key gets a new version, RewrapRoot is the
// whole migration: one KMS call for a store that holds the root, no value
// touched, and afterwards the new version alone opens everything.
func TestRewrapRoot(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		v1, v2 := newKeeper(t), newKeeper(t)
		s := newStore(t, db, withWrapper(&versionedKMS{versions: []*secrets.Keeper{v1}}))
		for i := range 5 {
			mustCustom(t, s, fmt.Sprintf("tk_rewrap%07d", i), fmt.Sprint("value ", i), testPassword)
		}
		before := values(t, s)
		rotated := &versionedKMS{versions: []*secrets.Keeper{v1, v2}}
		r := reopen(t, s, vaultstore.NewStoreOptions{DB: db, CryptoConfig: testCrypto(), KeyWrapper: rotated})
		if _, err := r.TokenRead(ctx, "tk_rewrap0000000", testPassword); err != nil {
			t.Fatal(err)
		}
		rotated.calls.Store(0)
		if err := r.RewrapRoot(ctx); err != nil {
			t.Fatal(err)
		}
		if n := rotated.calls.Load(); n != 1 {
			t.Fatalf("RewrapRoot made %d KMS calls, want 1", n)
		}
		if after := values(t, r); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatal("RewrapRoot changed stored values")
		}
		onlyNew := reopen(t, s, vaultstore.NewStoreOptions{DB: db, CryptoConfig: testCrypto(), KeyWrapper: v2})
		for i := range 5 {
			if v, err := onlyNew.TokenRead(ctx, fmt.Sprintf("tk_rewrap%07d", i), testPassword); err != nil || v != fmt.Sprint("value ", i) {
				t.Fatalf("with the new key version alone: %q, %v", v, err)
			}
		}
		onlyOld := reopen(t, s, vaultstore.NewStoreOptions{DB: db, CryptoConfig: testCrypto(), KeyWrapper: v1})
		if _, err := onlyOld.TokenRead(ctx, "tk_rewrap0000000", testPassword); !errors.Is(err, vaultstore.ErrKeyUnavailable) {
			t.Fatalf("with the old key version alone after the rewrap: %v, want ErrKeyUnavailable", err)
		}
	})
}

// TestKeyWrapperConcurrentFirstWriters: four stores writing their first
// value at once end up with one root, and every value opens in every store.
func TestKeyWrapperConcurrentFirstWriters(t *testing.T) {
	t.Parallel()
	for _, b := range append(backends()[1:], backend{name: "file sqlite", open: openFileSQLite}) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.open(t)
			kms := newKeeper(t)
			first := newStore(t, db, withWrapper(kms))
			stores := []*vaultstore.Store{first}
			for range 3 {
				stores = append(stores, reopen(t, first, vaultstore.NewStoreOptions{DB: db, CryptoConfig: testCrypto(), KeyWrapper: kms}))
			}
			var wg sync.WaitGroup
			for i, s := range stores {
				wg.Go(func() {
					if err := s.TokenCreateCustom(ctx, fmt.Sprintf("tk_firstroot%04d", i), fmt.Sprint("from ", i), testPassword); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if n := countRows(t, db, "SELECT COUNT(*) FROM "+first.GetMetaTableName()+" WHERE meta_key = '"+vaultstore.META_KEY_ROOT_KEY+"'"); n != 1 {
				t.Fatalf("%d roots, want 1", n)
			}
			for _, s := range stores {
				for i := range stores {
					if v, err := s.TokenRead(ctx, fmt.Sprintf("tk_firstroot%04d", i), testPassword); err != nil || v != fmt.Sprint("from ", i) {
						t.Fatalf("value %d: %q, %v", i, v, err)
					}
				}
			}
		})
	}
}

// TestKeyWrapperFailureWritesNothing: a wrapper that fails on every call
// never causes a write, to either table.
func TestKeyWrapperFailureWritesNothing(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		kms := &brokenKMS{}
		s := newStore(t, db, withWrapper(kms))
		if _, err := s.TokenCreate(ctx, "v", testPassword, 20); !errors.Is(err, vaultstore.ErrKeyUnavailable) {
			t.Fatalf("TokenCreate with a failing KMS = %v, want ErrKeyUnavailable", err)
		}
		if kms.calls.Load() == 0 {
			t.Fatal("the KMS was never asked")
		}
		for _, table := range []string{s.GetVaultTableName(), s.GetMetaTableName()} {
			if n := countRows(t, db, "SELECT COUNT(*) FROM "+table); n != 0 {
				t.Fatalf("%d rows written to %s", n, table)
			}
		}
		if err := s.RewrapRoot(ctx); !errors.Is(err, vaultstore.ErrKeyUnavailable) {
			t.Fatalf("RewrapRoot of no root = %v, want ErrKeyUnavailable", err)
		}
	})
}

// TestAttackRootWithoutKMS: the attacker holds the wrapped root, the
// password and the whole database, but not the KMS: no value opens, and
// nothing in the meta table is a key.
func TestAttackRootWithoutKMS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openMemorySQLite(t)
	s := newStore(t, db, withWrapper(newKeeper(t)), identities)
	mustCustom(t, s, "tk_attack_rooted", "needs the KMS", testPassword)
	stolen := reopen(t, s, vaultstore.NewStoreOptions{DB: db, CryptoConfig: testCrypto(), KeyWrapper: &brokenKMS{}, PasswordIdentityEnabled: true})
	if v, err := stolen.TokenRead(ctx, "tk_attack_rooted", testPassword); !errors.Is(err, vaultstore.ErrKeyUnavailable) || v != "" {
		t.Fatalf("TokenRead with the password but no KMS = %q, %v", v, err)
	}
	stored := storedRows(t, s)["tk_attack_rooted"][vaultstore.COLUMN_VAULT_VALUE]
	keys, _ := metaBytes(t, s, db)
	c := testCrypto()
	salt, err := base64.URLEncoding.DecodeString(mustSetting(t, s, vaultstore.META_KEY_VAULT_SALT))
	if err != nil {
		t.Fatal(err)
	}
	// Neither the Argon2id key of the password (what the password alone
	// gives) nor anything stored opens the value.
	keys = append(keys, vaultstore.Argon2idKey(testPassword, salt, uint32(c.Iterations), uint32(c.Memory), uint8(c.Parallelism)))
	for _, key := range keys {
		if v, err := vaultstore.OpenV3(stored, "tk_attack_rooted", key); err == nil {
			t.Fatalf("a key from the database or the password alone opens a rooted value: %q", v)
		}
	}
}

// TestDestroyRoot: crypto-shredding makes every value bound to the root
// unreadable (ErrKeyUnavailable), this store's included, and needs its
// confirmation; new writes start a new root.
func TestDestroyRoot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openMemorySQLite(t)
	s := newStore(t, db, withWrapper(newKeeper(t)))
	mustCustom(t, s, "tk_destroy_before", "gone", testPassword)
	if err := s.DestroyRoot(ctx, "yes"); !errors.Is(err, vaultstore.ErrValidationFailed) {
		t.Fatalf("DestroyRoot without the confirmation = %v", err)
	}
	if err := s.DestroyRoot(ctx, vaultstore.DestroyRootConfirmation); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenRead(ctx, "tk_destroy_before", testPassword); !errors.Is(err, vaultstore.ErrKeyUnavailable) {
		t.Fatalf("after DestroyRoot: %v, want ErrKeyUnavailable", err)
	}
	mustCustom(t, s, "tk_destroy_after", "new root", testPassword)
	if v, err := s.TokenRead(ctx, "tk_destroy_after", testPassword); err != nil || v != "new root" {
		t.Fatalf("a value under the new root = %q, %v", v, err)
	}
	if _, err := s.TokenRead(ctx, "tk_destroy_before", testPassword); !errors.Is(err, vaultstore.ErrKeyUnavailable) {
		t.Fatalf("a value of the destroyed root under the new one: %v, want ErrKeyUnavailable", err)
	}
}

func mustSetting(t testing.TB, s *vaultstore.Store, key string) string {
	t.Helper()
	v, err := s.GetVaultSetting(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// BenchmarkTokenReadWrapped and BenchmarkTokenCreateWrapped are the warm
// operations with and without a KeyWrapper: the root is unwrapped once,
// so the two must cost the same.
func BenchmarkTokenReadWrapped(b *testing.B) {
	for _, wrapped := range []bool{false, true} {
		b.Run(fmt.Sprint("wrapper=", wrapped), func(b *testing.B) {
			s := benchStore(b, func(o *vaultstore.NewStoreOptions) {
				if wrapped {
					o.KeyWrapper = newKeeper(b)
				}
			})
			ctx := context.Background()
			tokens := createTokens(b, s, 1000)
			i := 0
			for b.Loop() {
				if _, err := s.TokenRead(ctx, tokens[i%len(tokens)], testPassword); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkTokenCreateWrapped(b *testing.B) {
	for _, wrapped := range []bool{false, true} {
		b.Run(fmt.Sprint("wrapper=", wrapped), func(b *testing.B) {
			s := benchStore(b, func(o *vaultstore.NewStoreOptions) {
				if wrapped {
					o.KeyWrapper = newKeeper(b)
				}
			})
			ctx := context.Background()
			createTokens(b, s, 1)
			for b.Loop() {
				if _, err := s.TokenCreate(ctx, "benchmark value", testPassword, 32); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestKeyWrapperColdReadCost: a new process's first read of a value bound
// to the root costs one Argon2id and one KMS call; later reads cost
// neither.
func TestKeyWrapperColdReadCost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openMemorySQLite(t)
	kms := &versionedKMS{versions: []*secrets.Keeper{newKeeper(t)}}
	s := newStore(t, db, withWrapper(kms))
	for i := range 10 {
		mustCustom(t, s, fmt.Sprintf("tk_coldroot%05d", i), "v", testPassword)
	}
	kms.calls.Store(0)
	fresh := reopen(t, s, vaultstore.NewStoreOptions{DB: db, CryptoConfig: testCrypto(), KeyWrapper: kms})
	for i := range 10 {
		if _, err := fresh.TokenRead(ctx, fmt.Sprintf("tk_coldroot%05d", i), testPassword); err != nil {
			t.Fatal(err)
		}
	}
	if d, c := fresh.Derivations(), kms.calls.Load(); d != 1 || c != 1 {
		t.Fatalf("10 reads in a new process: %d derivations and %d KMS calls, want 1 and 1", d, c)
	}
}

// TestKeyWrapperWithIdentities: identities are bound to the root too (the
// meta table then offers no offline test of a password guess without the
// KMS), and a rotation finds them.
func TestKeyWrapperWithIdentities(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openMemorySQLite(t)
	kms := newKeeper(t)
	s := newStore(t, db, withWrapper(kms), identities)
	mustCustom(t, s, "tk_rootid_000001", "v", testPassword)
	if n := countRows(t, db, "SELECT COUNT(*) FROM "+s.GetMetaTableName()+" WHERE meta_value LIKE '%,k=2$%'"); n != 1 {
		t.Fatalf("%d identities bound to the root, want 1", n)
	}
	fresh := reopen(t, s, vaultstore.NewStoreOptions{DB: db, CryptoConfig: testCrypto(), KeyWrapper: kms, PasswordIdentityEnabled: true})
	if n, err := fresh.TokensChangePassword(ctx, testPassword, "the next password, long enough"); err != nil || n != 1 {
		t.Fatalf("rotation = %d, %v, want 1", n, err)
	}
}

// TestKeyWrapperAdoptionBindsIdentities: after a wrapper is adopted, the
// same-password rotation binds the password's identity to the root too,
// in place, so that no identity remains an offline test of the password
// without the KMS; the values' links stay valid.
func TestKeyWrapperAdoptionBindsIdentities(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openMemorySQLite(t)
	plain := newStore(t, db, identities)
	mustCustom(t, plain, "tk_adopt_ident01", "v", testPassword)
	wrapped := reopen(t, plain, vaultstore.NewStoreOptions{DB: db, CryptoConfig: testCrypto(), KeyWrapper: newKeeper(t), PasswordIdentityEnabled: true})
	if n, err := wrapped.TokensChangePassword(ctx, testPassword, testPassword); err != nil || n != 1 {
		t.Fatalf("adoption rotation = %d, %v", n, err)
	}
	all := countRows(t, db, "SELECT COUNT(*) FROM "+plain.GetMetaTableName()+" WHERE object_type = 'password_identity'")
	bound := countRows(t, db, "SELECT COUNT(*) FROM "+plain.GetMetaTableName()+" WHERE object_type = 'password_identity' AND meta_value LIKE '%,k=2$%'")
	if all != 1 || bound != 1 {
		t.Fatalf("%d identities, %d bound to the root; want the one, bound", all, bound)
	}
	if n, err := wrapped.TokensChangePassword(ctx, testPassword, "the next password, long enough"); err != nil || n != 1 {
		t.Fatalf("rotation through the rebound identity = %d, %v", n, err)
	}
	st, err := wrapped.Stats(ctx)
	if err != nil || st.V3 != 1 || st.Unknown != 0 || len(st.V3Params) != 1 || !st.V3Params[0].RootBound {
		t.Fatalf("Stats of a root-bound vault = %+v, %v", st, err)
	}
}

// TestDestroyRootWithIdentities: after DestroyRoot, new records get an
// identity under the new root, and a rotation finds them.
func TestDestroyRootWithIdentities(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openMemorySQLite(t)
	s := newStore(t, db, withWrapper(newKeeper(t)), identities)
	mustCustom(t, s, "tk_destroyid_old1", "gone", testPassword)
	if err := s.DestroyRoot(ctx, vaultstore.DestroyRootConfirmation); err != nil {
		t.Fatal(err)
	}
	mustCustom(t, s, "tk_destroyid_new1", "kept", testPassword)
	if n, err := s.TokensChangePassword(ctx, testPassword, "the next password, long enough"); err != nil || n != 1 {
		t.Fatalf("rotation after DestroyRoot = %d, %v, want the new record", n, err)
	}
	if v, err := s.TokenRead(ctx, "tk_destroyid_new1", "the next password, long enough"); err != nil || v != "kept" {
		t.Fatalf("new record after the rotation = %q, %v", v, err)
	}
}
