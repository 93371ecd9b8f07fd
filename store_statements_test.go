package vaultstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/vaultstore/vaultstore"
)

// TestHeldStatementsSeeOtherStoresAtOnce: the held statements cache
// statements, never values or rows. Two stores on one SQLite file, each
// with its own connection pool as two processes would have, see each
// other's creates, updates and deletes on the next call.
func TestHeldStatementsSeeOtherStoresAtOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vault.db")
	a := newStore(t, openSQLiteFile(t, path), func(o *vaultstore.NewStoreOptions) {
		o.VaultTableName, o.VaultMetaTableName = "vault", "vault_meta"
	})
	b := newStore(t, openSQLiteFile(t, path), func(o *vaultstore.NewStoreOptions) {
		o.VaultTableName, o.VaultMetaTableName = "vault", "vault_meta"
	})
	const tok = "tk_shared0000001"
	if err := a.TokenCreateCustom(ctx, tok, "first", testPassword); err != nil {
		t.Fatal(err)
	}
	read := func(s *vaultstore.Store) string {
		t.Helper()
		v, err := s.TokenRead(ctx, tok, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		many, err := s.TokensRead(ctx, []string{tok}, testPassword)
		if err != nil || many[tok] != v {
			t.Fatalf("TokensRead = %v, %v; TokenRead = %q", many, err, v)
		}
		return v
	}
	if v := read(b); v != "first" {
		t.Fatalf("b reads %q", v)
	}
	for i := range 3 {
		want := fmt.Sprint("update ", i)
		if err := a.TokenUpdate(ctx, tok, want, testPassword); err != nil {
			t.Fatal(err)
		}
		if v := read(b); v != want {
			t.Fatalf("after a's update b reads %q, want %q", v, want)
		}
		if err := b.TokenUpdate(ctx, tok, want+"b", testPassword); err != nil {
			t.Fatal(err)
		}
		if v := read(a); v != want+"b" {
			t.Fatalf("after b's update a reads %q, want %q", v, want+"b")
		}
	}
	if err := a.TokenSoftDelete(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TokenExists(ctx, tok); err != nil || ok {
		t.Fatalf("b: TokenExists after a's soft delete = %v, %v", ok, err)
	}
	if _, err := b.TokenRead(ctx, tok, testPassword); !errors.Is(err, vaultstore.ErrRecordNotFound) {
		t.Fatalf("b: TokenRead after a's soft delete = %v", err)
	}
	if err := b.TokenCreateCustom(ctx, "tk_shared0000002", "second", testPassword); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.TokenExists(ctx, "tk_shared0000002"); err != nil || !ok {
		t.Fatalf("a: TokenExists of b's new token = %v, %v", ok, err)
	}
}

// TestTokensReadListSizes reads lists of every IN size class and across
// them, with repeats, on every database: a list is padded to its class by
// repeating a token, which must neither add nor lose a value.
func TestTokensReadListSizes(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 1,100 tokens per database")
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		const n = 1100
		seedEncrypted(t, s, n, testPassword)
		for _, size := range []int{1, 2, 3, 4, 5, 63, 64, 65, 511, 512, 513, 999, 1000, 1001, n} {
			tokens := make([]string, size)
			for i := range tokens {
				tokens[i] = tokenN((i * 7) % n)
			}
			got, err := s.TokensRead(ctx, append(tokens, tokens[0]), testPassword)
			if err != nil {
				t.Fatalf("%d tokens: %v", size, err)
			}
			want := map[string]bool{}
			for _, tok := range tokens {
				want[tok] = true
			}
			if len(got) != len(want) {
				t.Fatalf("%d tokens: got %d values, want %d", size, len(got), len(want))
			}
			for tok := range want {
				var i int
				fmt.Sscanf(tok, "tk_test%08d", &i)
				if got[tok] != fmt.Sprint("value ", i) {
					t.Fatalf("%d tokens: %s = %q", size, tok, got[tok])
				}
			}
		}
	})
}
