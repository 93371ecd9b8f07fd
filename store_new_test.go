package vaultstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vaultstore/vaultstore"
)

func TestNewStoreRejectsBadOptions(t *testing.T) {
	db := openMemorySQLite(t)
	valid := func() vaultstore.NewStoreOptions {
		return vaultstore.NewStoreOptions{VaultTableName: "vault", VaultMetaTableName: "vault_meta", DB: db}
	}
	crypto := func(f func(c *vaultstore.CryptoConfig)) *vaultstore.CryptoConfig {
		c := vaultstore.DefaultCryptoConfig()
		f(c)
		return c
	}
	cases := map[string]func(o *vaultstore.NewStoreOptions){
		"no vault table":     func(o *vaultstore.NewStoreOptions) { o.VaultTableName = "" },
		"no meta table":      func(o *vaultstore.NewStoreOptions) { o.VaultMetaTableName = "" },
		"same tables":        func(o *vaultstore.NewStoreOptions) { o.VaultMetaTableName = o.VaultTableName },
		"table with sql":     func(o *vaultstore.NewStoreOptions) { o.VaultTableName = "vault; DROP TABLE x" },
		"table with quote":   func(o *vaultstore.NewStoreOptions) { o.VaultMetaTableName = `meta"` },
		"table starts digit": func(o *vaultstore.NewStoreOptions) { o.VaultTableName = "1vault" },
		"table too long":     func(o *vaultstore.NewStoreOptions) { o.VaultTableName = strings.Repeat("v", 41) },
		"no db":              func(o *vaultstore.NewStoreOptions) { o.DB = nil },
		"unknown driver":     func(o *vaultstore.NewStoreOptions) { o.DbDriverName = "oracle" },
		"zero iterations": func(o *vaultstore.NewStoreOptions) {
			o.CryptoConfig = crypto(func(c *vaultstore.CryptoConfig) { c.Iterations = 0 })
		},
		"absurd iterations": func(o *vaultstore.NewStoreOptions) {
			o.CryptoConfig = crypto(func(c *vaultstore.CryptoConfig) { c.Iterations = 1000 })
		},
		"zero memory": func(o *vaultstore.NewStoreOptions) {
			o.CryptoConfig = crypto(func(c *vaultstore.CryptoConfig) { c.Memory = 0 })
		},
		"absurd memory": func(o *vaultstore.NewStoreOptions) {
			o.CryptoConfig = crypto(func(c *vaultstore.CryptoConfig) { c.Memory = 1 << 30 })
		},
		"zero parallelism": func(o *vaultstore.NewStoreOptions) {
			o.CryptoConfig = crypto(func(c *vaultstore.CryptoConfig) { c.Parallelism = 0 })
		},
		"parallelism over 255": func(o *vaultstore.NewStoreOptions) {
			o.CryptoConfig = crypto(func(c *vaultstore.CryptoConfig) { c.Parallelism = 256 })
		},
		"key length 20": func(o *vaultstore.NewStoreOptions) {
			o.CryptoConfig = crypto(func(c *vaultstore.CryptoConfig) { c.KeyLength = 20 })
		},
		"nonce 16": func(o *vaultstore.NewStoreOptions) {
			o.CryptoConfig = crypto(func(c *vaultstore.CryptoConfig) { c.NonceSize = 16 })
		},
		"tag 12": func(o *vaultstore.NewStoreOptions) {
			o.CryptoConfig = crypto(func(c *vaultstore.CryptoConfig) { c.TagSize = 12 })
		},
		"salt 8": func(o *vaultstore.NewStoreOptions) {
			o.CryptoConfig = crypto(func(c *vaultstore.CryptoConfig) { c.SaltSize = 8 })
		},
		"empty crypto":        func(o *vaultstore.NewStoreOptions) { o.CryptoConfig = &vaultstore.CryptoConfig{} },
		"negative threshold":  func(o *vaultstore.NewStoreOptions) { o.ParallelThreshold = -1 },
		"negative min length": func(o *vaultstore.NewStoreOptions) { o.PasswordMinLength = -1 },
	}
	for name, modify := range cases {
		t.Run(name, func(t *testing.T) {
			o := valid()
			modify(&o)
			s, err := vaultstore.NewStore(o)
			if !errors.Is(err, vaultstore.ErrValidationFailed) || s != nil {
				t.Errorf("NewStore = %v, %v; want ErrValidationFailed", s, err)
			}
		})
	}
	if _, err := vaultstore.NewStore(valid()); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

func TestNewStoreDetectsDriver(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := newStore(t, b.open(t))
		if got := s.GetDbDriverName(); got != b.name {
			t.Errorf("detected %q, want %q", got, b.name)
		}
	})
	db := openMemorySQLite(t)
	for name, want := range map[string]string{"sqlite3": "sqlite", "SQLite": "sqlite"} {
		s, err := vaultstore.NewStore(vaultstore.NewStoreOptions{VaultTableName: "v", VaultMetaTableName: "m", DB: db, DbDriverName: name})
		if err != nil || s.GetDbDriverName() != want {
			t.Errorf("DbDriverName %q: %v, %v", name, s, err)
		}
	}
}

func TestNewStoreWithoutMigrationTouchesNoTable(t *testing.T) {
	db := openMemorySQLite(t)
	s, err := vaultstore.NewStore(vaultstore.NewStoreOptions{VaultTableName: "v", VaultMetaTableName: "m", DB: db})
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	if s.GetVaultTableName() != "v" || s.GetMetaTableName() != "m" {
		t.Errorf("table names %q, %q", s.GetVaultTableName(), s.GetMetaTableName())
	}
	if n := countRows(t, db, "SELECT COUNT(*) FROM sqlite_master"); n != 0 {
		t.Errorf("NewStore without AutomigrateEnabled created %d schema objects", n)
	}
}
