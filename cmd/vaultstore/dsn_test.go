package main

import (
	"errors"
	"strings"
	"testing"
)

func TestParseDSN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, dialect, driver, dsn, path, password string
	}{
		{in: "sqlite:/var/lib/app/vault.db", dialect: "sqlite", driver: "sqlite", path: "/var/lib/app/vault.db"},
		{in: "vault.db", dialect: "sqlite", driver: "sqlite", path: "vault.db"},
		{in: "./data/vault.db", dialect: "sqlite", driver: "sqlite", path: "./data/vault.db"},
		{in: "postgres://app:pg-secret@db:5432/app?sslmode=disable", dialect: "postgres", driver: "pgx", dsn: "postgres://app:pg-secret@db:5432/app?sslmode=disable", password: "pg-secret"},
		{in: "postgresql://app@db/app", dialect: "postgres", driver: "pgx", dsn: "postgresql://app@db/app"},
		{in: "mysql://app:my%40secret@db:3307/app?charset=utf8mb4", dialect: "mysql", driver: "mysql", dsn: "app:my@secret@tcp(db:3307)/app?charset=utf8mb4&parseTime=true", password: "my@secret"},
		{in: "mysql://app:s@db/app?parseTime=false", dialect: "mysql", driver: "mysql", dsn: "app:s@tcp(db:3306)/app?parseTime=false", password: "s"},
	} {
		got, err := parseDSN(tc.in)
		if err != nil {
			t.Errorf("parseDSN(%q): %v", tc.in, err)
			continue
		}
		want := dbTarget{dialect: tc.dialect, driver: tc.driver, dsn: tc.dsn, path: tc.path, password: tc.password}
		if got != want {
			t.Errorf("parseDSN(%q) = %+v, want %+v", tc.in, got, want)
		}
	}
}

// TestParseDSNRefuses: anything else is a usage error that names the
// accepted forms and never echoes the DSN, which may hold a password.
func TestParseDSNRefuses(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"", "sqlite:", "mssql://sa:dsn-secret-1@db/app", "redis://:dsn-secret-1@cache", "file:dsn-secret-1",
		"mysql://u:dsn-secret-1@db", "mysql://u:dsn-secret-1@db/a/b", "postgres://", "mysql://u:dsn-secret-1@db/app?parseTime=maybe",
	} {
		_, err := parseDSN(in)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("parseDSN(%q) = %v, want a usage error", in, err)
			continue
		}
		if strings.Contains(err.Error(), "dsn-secret-1") {
			t.Errorf("parseDSN(%q) error %q shows the password", in, err)
		}
	}
	_, err := parseDSN("mssql://sa:x@db/app")
	for _, form := range []string{"sqlite:PATH", "postgres://", "postgresql://", "mysql://"} {
		if !strings.Contains(err.Error(), form) {
			t.Errorf("error %q does not name %s", err, form)
		}
	}
}

func TestParseCrypto(t *testing.T) {
	t.Parallel()
	c, err := parseCrypto("t=1,m=8,p=1")
	if err != nil || c.Iterations != 1 || c.Memory != 8 || c.Parallelism != 1 || c.KeyLength != 32 {
		t.Errorf("parseCrypto(t=1,m=8,p=1) = %+v, %v", c, err)
	}
	for _, name := range []string{"default", "lightweight", "high"} {
		if _, err := parseCrypto(name); err != nil {
			t.Errorf("parseCrypto(%s): %v", name, err)
		}
	}
	for _, bad := range []string{"fast", "t=1,m=8", "t=1,m=8,p=1,p=2", "t=0,m=8,p=1", "t=1,m=8,q=1", "t=x,m=8,p=1"} {
		if _, err := parseCrypto(bad); err == nil {
			t.Errorf("parseCrypto(%q) accepted", bad)
		}
	}
}

// TestScrubAll: secrets of minScrubbed characters or more are replaced;
// shorter ones are left, so that a legacy two-letter password does not
// garble every message.
func TestScrubAll(t *testing.T) {
	t.Parallel()
	msg := "token tk_x: pw is wrong for s3cret-Passw0rd and s3cret-Passw0rd"
	got := scrubAll(msg, "pw", "s3cret-Passw0rd", "")
	if want := "token tk_x: pw is wrong for *** and ***"; got != want {
		t.Errorf("scrubAll = %q, want %q", got, want)
	}
}
