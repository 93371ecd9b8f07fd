package vaultstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/vaultstore/vaultstore"
)

func TestVaultSettings(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		if _, err := s.GetVaultSetting(ctx, "missing"); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("missing setting: %v", err)
		}
		for _, v := range []string{"one", "two", "", strings.Repeat("long ", 2000)} {
			if err := s.SetVaultSetting(ctx, "key", v); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetVaultSetting(ctx, "key")
			if err != nil || got != v {
				t.Errorf("after set %.10q: got %.10q, %v", v, got, err)
			}
		}
		if err := s.SetVaultSetting(ctx, "Key", "upper"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetVaultSetting(ctx, "key"); got == "upper" {
			t.Errorf("setting keys compare case-insensitively")
		}
		if err := s.SetVaultSetting(ctx, "", "v"); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("empty key: %v", err)
		}
		if err := s.SetVaultSetting(ctx, strings.Repeat("k", 51), "v"); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("long key: %v", err)
		}
		if _, err := s.GetVaultSetting(ctx, ""); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("get empty key: %v", err)
		}
	})
}

func TestVaultSettingConcurrentUpsert(t *testing.T) {
	run := func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		s := newStore(t, db)
		const writers = 16
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for i := range writers {
			wg.Go(func() {
				if err := s.SetVaultSetting(ctx, "race", fmt.Sprint(i)); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent SetVaultSetting: %v", err)
		}
		if _, err := s.GetVaultSetting(ctx, "race"); err != nil {
			t.Fatal(err)
		}
		n := countRows(t, db, "SELECT COUNT(*) FROM "+s.GetMetaTableName()+" WHERE meta_key = 'race'")
		if n != 1 {
			t.Errorf("%d rows for one setting, want 1", n)
		}
	}
	forEachDatabase(t, func(t *testing.T, b dbBackend) { run(t, b.open(t)) })
}

func TestVaultSettingWithoutMetaTable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		vault, meta := uniqueTables(t, db)
		// Only the vault table, as older releases left it.
		migrated, err := vaultstore.NewStore(vaultstore.NewStoreOptions{VaultTableName: vault, VaultMetaTableName: meta + "_unused", DB: db, AutomigrateEnabled: true, CryptoConfig: testCrypto()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS " + meta + "_unused") })
		_ = migrated
		s, err := vaultstore.NewStore(vaultstore.NewStoreOptions{VaultTableName: vault, VaultMetaTableName: meta, DB: db, CryptoConfig: testCrypto()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetVaultSetting(ctx, "k"); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Fatalf("read without meta table: %v", err)
		}
		if err := s.SetVaultSetting(ctx, "k", "v"); err != nil {
			t.Fatalf("first write creates the meta table: %v", err)
		}
		if v, err := s.GetVaultSetting(ctx, "k"); err != nil || v != "v" {
			t.Errorf("after first write: %q, %v", v, err)
		}
	})
}
