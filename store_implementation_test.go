package vaultstore_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/vaultstore/vaultstore"
)

// captureOutput runs fn with the process's stdout, stderr and the default
// loggers redirected, and returns everything written.
func captureOutput(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr := os.Stdout, os.Stderr
	logOut := log.Writer()
	os.Stdout, os.Stderr = w, w
	log.SetOutput(w)
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	defer func() {
		os.Stdout, os.Stderr = stdout, stderr
		log.SetOutput(logOut)
	}()
	fn()
	w.Close()
	return <-done
}

func TestStorePrintsNothing(t *testing.T) {
	ctx := context.Background()
	out := captureOutput(t, func() {
		s := newTestStore(t)
		token, err := s.TokenCreate(ctx, "value", testPassword, 20)
		if err != nil {
			t.Error(err)
		}
		// Failing operations: GORM's default logger would print some of
		// these (record not found, constraint errors, SQL errors).
		s.TokenRead(ctx, token, "wrong password, long enough")
		s.TokenRead(ctx, "tk_absent00000000", testPassword)
		s.TokenCreateCustom(ctx, token, "v", testPassword)
		s.RecordCreate(ctx, vaultstore.NewRecord().SetToken(token))
		s.RecordFindByID(ctx, "absent")
		s.RecordList(ctx, vaultstore.RecordQuery().SetColumns([]string{"nope"}))
		s.GetVaultSetting(ctx, "absent")
		s.RecordDeleteByID(ctx, "absent")
		s.TokensExpiredDelete(ctx)

		broken, err := vaultstore.NewStore(vaultstore.NewStoreOptions{VaultTableName: "no_such_table", VaultMetaTableName: "no_such_meta", DB: openMemorySQLite(t)})
		if err != nil {
			t.Error(err)
		}
		broken.TokenRead(ctx, "tk_absent00000000", testPassword)
		broken.RecordList(ctx, vaultstore.RecordQuery())
	})
	if out != "" {
		t.Errorf("the store printed:\n%s", out)
	}
}

func TestDebugLogHasNoValues(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	s := newTestStore(t, func(o *vaultstore.NewStoreOptions) {
		o.DebugEnabled = true
		o.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	})
	const plaintext = "PLAINTEXT-never-logged-7d1f"
	const rawValue = "RAW-VALUE-never-logged-91ab"
	const password = "PASSWORD-never-logged-c0de"
	token, err := s.TokenCreate(ctx, plaintext, password, 24)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenRead(ctx, token, password); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenRead(ctx, token, "wrong-"+password); err == nil {
		t.Fatal("wrong password read")
	}
	mustCreateRecord(t, s, "tk_debuglog00001", rawValue)
	rec, _ := s.RecordFindByToken(ctx, token)
	stored := rec.GetValue()

	log := buf.String()
	if !strings.Contains(log, "INSERT") || !strings.Contains(log, "SELECT") {
		t.Fatalf("debug log lacks statements:\n%s", log)
	}
	for _, secret := range []string{plaintext, rawValue, password, stored[3:20]} {
		if strings.Contains(log, secret) {
			t.Errorf("debug log contains %q", secret)
		}
	}

	s.EnableDebug(false)
	buf.Reset()
	if _, err := s.TokenRead(ctx, token, password); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("logged with debug off: %s", buf.String())
	}
}

func TestStoreAccessors(t *testing.T) {
	s := newTestStore(t)
	var iface vaultstore.StoreInterface = s
	if iface.GetDbDriverName() != "sqlite" || !strings.HasPrefix(iface.GetVaultTableName(), "vault_") || !strings.HasPrefix(iface.GetMetaTableName(), "vmeta_") {
		t.Errorf("accessors: %q %q %q", iface.GetDbDriverName(), iface.GetVaultTableName(), iface.GetMetaTableName())
	}
	if err := iface.AutoMigrate(); err != nil {
		t.Errorf("AutoMigrate: %v", err)
	}
}
