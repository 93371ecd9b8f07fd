package vaultstore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/vaultstore/vaultstore"
)

// v3VaultSalt returns the vault salt a stored v3 value carries.
func v3VaultSalt(t testing.TB, stored string) []byte {
	t.Helper()
	body, ok := strings.CutPrefix(stored, vaultstore.ENCRYPTION_PREFIX_V3)
	if !ok {
		t.Fatalf("value is not v3: %.20q", stored)
	}
	raw, err := base64.URLEncoding.DecodeString(body)
	if err != nil || len(raw) < 28 {
		t.Fatalf("v3 value does not decode: %v", err)
	}
	return raw[12:28]
}

// reopen opens a second store on the tables of s, as another process
// would, with opts (DB required) changed by modify.
func reopen(t testing.TB, s *vaultstore.Store, opts vaultstore.NewStoreOptions, modify ...func(*vaultstore.NewStoreOptions)) *vaultstore.Store {
	t.Helper()
	opts.VaultTableName = s.GetVaultTableName()
	opts.VaultMetaTableName = s.GetMetaTableName()
	if opts.CryptoConfig == nil {
		opts.CryptoConfig = testCrypto()
	}
	for _, m := range modify {
		m(&opts)
	}
	s2, err := vaultstore.NewStore(opts)
	if err != nil {
		t.Fatalf("NewStore on the same tables: %v", err)
	}
	return s2
}

func TestV3IsTheDefaultAndSharesOneVaultSalt(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		if _, err := s.GetVaultSetting(ctx, vaultstore.META_KEY_VAULT_SALT); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Fatalf("vault salt before the first write: %v, want ErrRecordNotFound", err)
		}
		mustCustom(t, s, "tk_v3default0001", "one", testPassword)
		mustCustom(t, s, "tk_v3default0002", "two", "another long password")
		setting, err := s.GetVaultSetting(ctx, vaultstore.META_KEY_VAULT_SALT)
		if err != nil {
			t.Fatalf("vault salt after a write: %v", err)
		}
		salt, err := base64.URLEncoding.DecodeString(setting)
		if err != nil || len(salt) != 16 {
			t.Fatalf("vault salt setting %q: %v", setting, err)
		}
		for _, tok := range []string{"tk_v3default0001", "tk_v3default0002"} {
			if got := v3VaultSalt(t, rowOf(t, s, tok).GetValue()); !bytes.Equal(got, salt) {
				t.Errorf("%s carries salt %x, the vault's is %x", tok, got, salt)
			}
		}
		if v, err := s.TokenRead(ctx, "tk_v3default0002", "another long password"); err != nil || v != "two" {
			t.Errorf("TokenRead = %q, %v", v, err)
		}
	})
}

func TestV3ErrorsAndTokenBinding(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		mustCustom(t, s, "tk_v3bound00001", "bound value", testPassword)
		_, err := s.TokenRead(ctx, "tk_v3bound00001", "a wrong but long password")
		if !errors.Is(err, vaultstore.ErrInvalidPassword) || errors.Is(err, vaultstore.ErrDecryptionFailed) {
			t.Errorf("wrong password = %v, want ErrInvalidPassword only", err)
		}
		checkNoSecret(t, "wrong password", err, testPassword, "a wrong but long password", "bound value")
		// The same ciphertext under another token does not open.
		mustCreateRecord(t, s, "tk_v3copy000001", rowOf(t, s, "tk_v3bound00001").GetValue())
		_, err = s.TokenRead(ctx, "tk_v3copy000001", testPassword)
		if !errors.Is(err, vaultstore.ErrDecryptionFailed) || errors.Is(err, vaultstore.ErrInvalidPassword) {
			t.Errorf("value copied to another token = %v, want ErrDecryptionFailed only", err)
		}
	})
}

func TestEncryptionVersionV2InteroperatesWithV3(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		v3 := newStore(t, db)
		v2 := reopen(t, v3, vaultstore.NewStoreOptions{DB: db}, writeV2)
		mustCustom(t, v2, "tk_mixedv2value1", "written as v2", testPassword)
		mustCustom(t, v3, "tk_mixedv3value1", "written as v3", testPassword)
		if got := rowOf(t, v2, "tk_mixedv2value1").GetValue(); !strings.HasPrefix(got, "v2:") {
			t.Errorf("EncryptionVersion v2 wrote %.8q", got)
		}
		if got := rowOf(t, v3, "tk_mixedv3value1").GetValue(); !strings.HasPrefix(got, "v3:") {
			t.Errorf("default store wrote %.8q", got)
		}
		for _, s := range []*vaultstore.Store{v2, v3} {
			got, err := s.TokensRead(ctx, []string{"tk_mixedv2value1", "tk_mixedv3value1"}, testPassword)
			if err != nil || got["tk_mixedv2value1"] != "written as v2" || got["tk_mixedv3value1"] != "written as v3" {
				t.Errorf("TokensRead of both formats = %v, %v", got, err)
			}
		}
	})
}

func TestBadEncryptionOptions(t *testing.T) {
	t.Parallel()
	for name, modify := range map[string]func(*vaultstore.NewStoreOptions){
		"EncryptionVersion v1": func(o *vaultstore.NewStoreOptions) { o.EncryptionVersion = "v1" },
		"EncryptionVersion V3": func(o *vaultstore.NewStoreOptions) { o.EncryptionVersion = "V3" },
		"EncryptionVersion v4": func(o *vaultstore.NewStoreOptions) { o.EncryptionVersion = "v4" },
		"MaxConcurrentKDF -1":  func(o *vaultstore.NewStoreOptions) { o.MaxConcurrentKDF = -1 },
	} {
		db := openMemorySQLite(t)
		opts := vaultstore.NewStoreOptions{VaultTableName: "v", VaultMetaTableName: "m", DB: db}
		modify(&opts)
		if _, err := vaultstore.NewStore(opts); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("%s: NewStore = %v, want ErrValidationFailed", name, err)
		}
	}
	// The cache can be turned off, and a single KDF slot works.
	s := newTestStore(t, func(o *vaultstore.NewStoreOptions) { o.KeyCacheSize = -1; o.MaxConcurrentKDF = 1 })
	tok, err := s.TokenCreate(context.Background(), "uncached", testPassword, 20)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.TokenRead(context.Background(), tok, testPassword); err != nil || v != "uncached" {
		t.Errorf("TokenRead without a cache = %q, %v", v, err)
	}
}

// TestVaultSaltConcurrentFirstWriters: several stores (as several
// processes would) writing their first v3 values at once end up with one
// vault salt, and every value carries it.
func TestVaultSaltConcurrentFirstWriters(t *testing.T) {
	t.Parallel()
	forEachDatabase(t, func(t *testing.T, b dbBackend) {
		ctx := context.Background()
		db := b.open(t)
		first := newStore(t, db)
		stores := []*vaultstore.Store{first}
		for range 3 {
			stores = append(stores, reopen(t, first, vaultstore.NewStoreOptions{DB: db}))
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, s := range stores {
			for j := range 4 {
				wg.Go(func() {
					<-start
					if err := s.TokenCreateCustom(ctx, fmt.Sprintf("tk_saltrace%02d%02d", i, j), "v", testPassword); err != nil {
						t.Errorf("TokenCreateCustom: %v", err)
					}
				})
			}
		}
		close(start)
		wg.Wait()
		metas, err := first.RecordList(ctx, vaultstore.RecordQuery())
		if err != nil || len(metas) != 16 {
			t.Fatalf("RecordList = %d, %v", len(metas), err)
		}
		salt := v3VaultSalt(t, metas[0].GetValue())
		for _, r := range metas {
			if got := v3VaultSalt(t, r.GetValue()); !bytes.Equal(got, salt) {
				t.Errorf("%s carries salt %x, %s carries %x", r.GetToken(), got, metas[0].GetToken(), salt)
			}
		}
		setting, err := first.GetVaultSetting(ctx, vaultstore.META_KEY_VAULT_SALT)
		if err != nil || setting != base64.URLEncoding.EncodeToString(salt) {
			t.Errorf("vault salt setting %q, %v; values carry %x", setting, err, salt)
		}
	})
}

// TestCryptoConfigChangeKeepsValuesReadable: v3 values carry their
// parameters, so a store with another CryptoConfig still reads them.
func TestCryptoConfigChangeKeepsValuesReadable(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		before := newStore(t, db)
		mustCustom(t, before, "tk_cfgchange0001", "written before", testPassword)
		stronger := testCrypto()
		stronger.Iterations, stronger.Memory = 2, 64
		// The floor defaults to the weaker of Lightweight and the new
		// configuration; values written with less need it lowered.
		after := reopen(t, before, vaultstore.NewStoreOptions{DB: db, CryptoConfig: stronger, MinArgon2Iterations: 1, MinArgon2Memory: 8})
		mustCustom(t, after, "tk_cfgchange0002", "written after", testPassword)
		got, err := after.TokensRead(ctx, []string{"tk_cfgchange0001", "tk_cfgchange0002"}, testPassword)
		if err != nil || got["tk_cfgchange0001"] != "written before" || got["tk_cfgchange0002"] != "written after" {
			t.Errorf("after a CryptoConfig change: %v, %v", got, err)
		}
	})
}

// TestV3ReadsNeedNoMetaTable: the salt travels in the value, so a reader
// on a database without the meta table opens v3 values and creates
// nothing.
func TestV3ReadsNeedNoMetaTable(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		writer := newStore(t, db)
		mustCustom(t, writer, "tk_nometa0000001", "no meta needed", testPassword)
		if _, err := db.Exec("DROP TABLE " + writer.GetMetaTableName()); err != nil {
			t.Fatal(err)
		}
		reader := reopen(t, writer, vaultstore.NewStoreOptions{DB: db})
		if v, err := reader.TokenRead(ctx, "tk_nometa0000001", testPassword); err != nil || v != "no meta needed" {
			t.Errorf("TokenRead without a meta table = %q, %v", v, err)
		}
		if _, err := db.Exec("SELECT 1 FROM " + writer.GetMetaTableName()); err == nil {
			t.Error("a read created the meta table")
		}
	})
}

// TestCorruptVaultSaltIsRefused: a damaged salt setting stops v3 writes
// with an error instead of silently starting a second salt.
func TestCorruptVaultSaltIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStore(t)
	if err := s.SetVaultSetting(ctx, vaultstore.META_KEY_VAULT_SALT, "not base64!"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenCreate(ctx, "v", testPassword, 20); err == nil {
		t.Fatal("TokenCreate under a corrupt vault salt succeeded")
	}
	if n, err := s.RecordCount(ctx, vaultstore.RecordQuery()); err != nil || n != 0 {
		t.Errorf("%d records written, %v", n, err)
	}
}
