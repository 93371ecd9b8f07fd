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
