package vaultstore

import (
	"errors"
	"testing"
)

func TestNormalizeDialect(t *testing.T) {
	for in, want := range map[string]string{
		"sqlite": "sqlite", "sqlite3": "sqlite", "SQLITE": "sqlite",
		"postgres": "postgres", "postgresql": "postgres", "pgx": "postgres",
		"mysql": "mysql", "mariadb": "mysql", "MySQL": "mysql",
	} {
		if got, err := normalizeDialect(in); err != nil || got != want {
			t.Errorf("normalizeDialect(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "oracle", "mssql"} {
		if _, err := normalizeDialect(bad); !errors.Is(err, ErrValidationFailed) {
			t.Errorf("normalizeDialect(%q) err = %v", bad, err)
		}
	}
}

func TestValidateCryptoConfigAcceptsPresets(t *testing.T) {
	for _, c := range []*CryptoConfig{DefaultCryptoConfig(), HighSecurityCryptoConfig(), LightweightCryptoConfig()} {
		if err := validateCryptoConfig(c); err != nil {
			t.Errorf("%+v: %v", *c, err)
		}
	}
}

func TestValidateTableName(t *testing.T) {
	for _, ok := range []string{"vault", "Vault_2", "_x"} {
		if err := validateTableName("T", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "2v", "a-b", "a b", "a.b", `a"b`, "a`b", "ä"} {
		if err := validateTableName("T", bad); !errors.Is(err, ErrValidationFailed) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestReadPolicyDefaultsAndBounds: the floor defaults to the weaker of
// Lightweight and the configuration, the budget to four times its memory,
// and settings under which the store could not read its own values are
// refused.
func TestReadPolicyDefaultsAndBounds(t *testing.T) {
	def := DefaultCryptoConfig()
	rp, err := newReadPolicy(NewStoreOptions{}, def, ENCRYPTION_VERSION_V3)
	if err != nil || rp.floor.Iterations != 2 || rp.floor.MemoryKiB != 32<<10 || rp.maxMemoryKiB != 256<<10 || rp.minVersion != "" {
		t.Fatalf("default policy = %+v, %v", rp, err)
	}
	tiny := &CryptoConfig{Iterations: 1, Memory: 8, Parallelism: 1, KeyLength: 32, SaltSize: 16, NonceSize: 12, TagSize: 16}
	if rp, err := newReadPolicy(NewStoreOptions{}, tiny, ENCRYPTION_VERSION_V3); err != nil || rp.floor.Iterations != 1 || rp.floor.MemoryKiB != 8 || rp.maxMemoryKiB != 32 {
		t.Fatalf("tiny policy = %+v, %v", rp, err)
	}
	if rp, err := newReadPolicy(NewStoreOptions{MinArgon2Iterations: 3, MinArgon2Memory: 64 << 10, KDFMemoryBudget: 1 << 20, MinReadVersion: "v3"}, def, ENCRYPTION_VERSION_V3); err != nil ||
		rp.floor.Iterations != 3 || rp.floor.MemoryKiB != 64<<10 || rp.maxMemoryKiB != 1<<20 || rp.minVersion != "v3" {
		t.Fatalf("explicit policy = %+v, %v", rp, err)
	}
	for name, opts := range map[string]NewStoreOptions{
		"floor above the configuration's passes": {MinArgon2Iterations: 4},
		"floor above the configuration's memory": {MinArgon2Memory: 128 << 10},
		"negative floor":                         {MinArgon2Memory: -1},
		"budget below the configuration":         {KDFMemoryBudget: 1024},
		"huge budget":                            {KDFMemoryBudget: 1 << 40},
		"unknown version":                        {MinReadVersion: "v4"},
		"v1 named":                               {MinReadVersion: "v1"},
	} {
		if _, err := newReadPolicy(opts, def, ENCRYPTION_VERSION_V3); !errors.Is(err, ErrValidationFailed) {
			t.Errorf("%s: %v, want ErrValidationFailed", name, err)
		}
	}
	if _, err := newReadPolicy(NewStoreOptions{MinReadVersion: "v3"}, def, ENCRYPTION_VERSION_V2); !errors.Is(err, ErrValidationFailed) {
		t.Errorf("MinReadVersion v3 with v2 writes: %v, want ErrValidationFailed", err)
	}
}
