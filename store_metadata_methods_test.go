package vaultstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vaultstore/vaultstore"
)

// recordMetaRows counts the meta rows of the record that holds token, by
// direct SQL, whatever kind they are.
func recordMetaRows(t testing.TB, db *sql.DB, s *vaultstore.Store, id string) int64 {
	t.Helper()
	return countRows(t, db, sprintf("SELECT COUNT(*) FROM %s WHERE object_type = 'record' AND object_id = '%s'", s.GetMetaTableName(), vaultstore.RECORD_META_ID_PREFIX+id))
}

func mustMetadata(t testing.TB, s *vaultstore.Store, token string) map[string]string {
	t.Helper()
	md, err := s.TokenMetadata(context.Background(), token)
	if err != nil {
		t.Fatalf("TokenMetadata(%s): %v", token, err)
	}
	return md
}

func TestTokenMetadataCreateReadSet(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		labels := map[string]string{"tenant": "acme", "purpose": "billing", "source.system-1_a": "crm", "dropped": ""}
		tok, err := s.TokenCreate(ctx, "4111 1111 1111 1111", testPassword, 24, vaultstore.TokenCreateOptions{Metadata: labels})
		if err != nil {
			t.Fatalf("TokenCreate with metadata: %v", err)
		}
		want := map[string]string{"tenant": "acme", "purpose": "billing", "source.system-1_a": "crm"}
		if got := mustMetadata(t, s, tok); !maps.Equal(got, want) {
			t.Errorf("metadata = %v, want %v", got, want)
		}
		mustCustom(t, s, "tk_metacustom0001", "v", testPassword, vaultstore.TokenCreateOptions{Metadata: map[string]string{"tenant": "globex"}})
		if got := mustMetadata(t, s, "tk_metacustom0001"); !maps.Equal(got, map[string]string{"tenant": "globex"}) {
			t.Errorf("custom token metadata = %v", got)
		}
		mustCustom(t, s, "tk_metanone000001", "v", testPassword)
		if got := mustMetadata(t, s, "tk_metanone000001"); got == nil || len(got) != 0 {
			t.Errorf("metadata of a token without = %#v, want an empty map", got)
		}

		// Set: changes one, adds one, removes one, leaves the rest.
		if err := s.TokenMetadataSet(ctx, tok, map[string]string{"tenant": "initech", "region": "eu", "purpose": ""}); err != nil {
			t.Fatalf("TokenMetadataSet: %v", err)
		}
		want = map[string]string{"tenant": "initech", "region": "eu", "source.system-1_a": "crm"}
		if got := mustMetadata(t, s, tok); !maps.Equal(got, want) {
			t.Errorf("metadata after set = %v, want %v", got, want)
		}
		// Removing a key that is not there is no error.
		if err := s.TokenMetadataSet(ctx, tok, map[string]string{"never-set": ""}); err != nil {
			t.Errorf("removing an absent key: %v", err)
		}
		// Values are stored as given: Unicode and the full size.
		big := strings.Repeat("é", vaultstore.MaxMetadataValueSize/2)
		if err := s.TokenMetadataSet(ctx, tok, map[string]string{"big": big}); err != nil {
			t.Fatalf("set a %d-byte value: %v", len(big), err)
		}
		if got := mustMetadata(t, s, tok)["big"]; got != big {
			t.Errorf("big value did not round-trip (%d bytes back)", len(got))
		}
		// The value is readable and unchanged.
		if v, err := s.TokenRead(ctx, tok, testPassword); err != nil || v != "4111 1111 1111 1111" {
			t.Errorf("TokenRead = %q, %v", v, err)
		}

		for _, missing := range []string{"tk_metamissing001"} {
			if _, err := s.TokenMetadata(ctx, missing); !errors.Is(err, vaultstore.ErrRecordNotFound) {
				t.Errorf("TokenMetadata(absent) = %v, want ErrRecordNotFound", err)
			}
			if err := s.TokenMetadataSet(ctx, missing, map[string]string{"a": "b"}); !errors.Is(err, vaultstore.ErrRecordNotFound) {
				t.Errorf("TokenMetadataSet(absent) = %v, want ErrRecordNotFound", err)
			}
		}
		if err := s.TokenSoftDelete(ctx, "tk_metacustom0001"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TokenMetadata(ctx, "tk_metacustom0001"); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("TokenMetadata(soft-deleted) = %v, want ErrRecordNotFound", err)
		}
		if err := s.TokenMetadataSet(ctx, "tk_metacustom0001", map[string]string{"a": "b"}); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("TokenMetadataSet(soft-deleted) = %v, want ErrRecordNotFound", err)
		}
	})
}

func TestTokenMetadataValidation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db)
		const secretish = "value-that-must-not-leak"
		many := func(n int) map[string]string {
			m := map[string]string{}
			for i := range n {
				m[fmt.Sprintf("k%02d", i)] = "v"
			}
			return m
		}
		cases := []struct {
			name string
			md   map[string]string
			rule string // a part of the message that names the rule
		}{
			{"empty key", map[string]string{"": "v"}, "1 to 64 characters"},
			{"65-char key", map[string]string{strings.Repeat("k", 65): "v"}, "1 to 64 characters"},
			{"upper case", map[string]string{"Tenant": "v"}, "a-z, 0-9"},
			{"space", map[string]string{"a b": "v"}, "a-z, 0-9"},
			{"colon", map[string]string{"a:b": "v"}, "a-z, 0-9"},
			{"non-ASCII key", map[string]string{"é": "v"}, "a-z, 0-9"},
			{"1025-byte value", map[string]string{"k": strings.Repeat("x", 1025) + secretish}, "more than 1024"},
			{"invalid UTF-8", map[string]string{"k": secretish + "\xff"}, "not valid UTF-8"},
			{"NUL", map[string]string{"k": secretish + "\x00"}, "NUL"},
			{"33 pairs", many(33), "more than 32"},
		}
		for _, c := range cases {
			_, err := s.TokenCreate(ctx, "v", testPassword, 20, vaultstore.TokenCreateOptions{Metadata: c.md})
			if !errors.Is(err, vaultstore.ErrValidationFailed) || !strings.Contains(err.Error(), c.rule) {
				t.Errorf("%s: TokenCreate = %v, want ErrValidationFailed naming %q", c.name, err, c.rule)
			}
			checkNoSecret(t, c.name, err, secretish)
		}
		if n := countRows(t, db, "SELECT COUNT(*) FROM "+s.GetVaultTableName()); n != 0 {
			t.Errorf("%d tokens stored by refused creates", n)
		}
		// Exactly at the bounds is fine.
		edge := many(31)
		edge[strings.Repeat("k", 64)] = strings.Repeat("x", 1024)
		tok, err := s.TokenCreate(ctx, "v", testPassword, 20, vaultstore.TokenCreateOptions{Metadata: edge})
		if err != nil {
			t.Fatalf("32 pairs, a 64-char key and a 1024-byte value: %v", err)
		}
		if got := mustMetadata(t, s, tok); !maps.Equal(got, edge) {
			t.Errorf("metadata at the bounds did not round-trip: %d keys", len(got))
		}
		// Set: the same rules, and the bound counts what is stored.
		for _, c := range cases[:len(cases)-1] {
			err := s.TokenMetadataSet(ctx, tok, c.md)
			if !errors.Is(err, vaultstore.ErrValidationFailed) || !strings.Contains(err.Error(), c.rule) {
				t.Errorf("%s: TokenMetadataSet = %v, want ErrValidationFailed naming %q", c.name, err, c.rule)
			}
			checkNoSecret(t, c.name, err, secretish)
		}
		err = s.TokenMetadataSet(ctx, tok, map[string]string{"one-more": "v"})
		if !errors.Is(err, vaultstore.ErrValidationFailed) || !strings.Contains(err.Error(), "more than 32") {
			t.Errorf("33rd key: %v, want ErrValidationFailed naming the bound of 32", err)
		}
		if got := mustMetadata(t, s, tok); !maps.Equal(got, edge) {
			t.Errorf("a refused set changed the metadata: %d keys", len(got))
		}
		// Replacing a key, or removing one and adding another, stays at 32.
		if err := s.TokenMetadataSet(ctx, tok, map[string]string{"k00": "", "one-more": "v"}); err != nil {
			t.Errorf("remove one and add one at the bound: %v", err)
		}
		// Searches validate too.
		for _, bad := range []struct {
			key, value string
			opts       []vaultstore.FindOptions
		}{
			{"Bad", "v", nil},
			{"k", "", nil},
			{"k", strings.Repeat("x", 1025), nil},
			{"k", "v", []vaultstore.FindOptions{{Limit: -1}}},
			{"k", "v", []vaultstore.FindOptions{{Limit: vaultstore.MaxFindLimit + 1}}},
			{"k", "v", []vaultstore.FindOptions{{After: "tk with space"}}},
			{"k", "v", []vaultstore.FindOptions{{}, {}}},
		} {
			if _, err := s.TokensFindByMetadata(ctx, bad.key, bad.value, bad.opts...); !errors.Is(err, vaultstore.ErrValidationFailed) {
				t.Errorf("TokensFindByMetadata(%q, %d bytes, %v) = %v, want ErrValidationFailed", bad.key, len(bad.value), bad.opts, err)
			}
		}
	})
}

func TestTokensFindByMetadata(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		var want []string
		for i := range 12 {
			tok := fmt.Sprintf("tk_find%02d_%s", (i*7)%12, "padding")
			md := map[string]string{"tenant": "acme"}
			if i%3 == 0 {
				md = map[string]string{"tenant": "globex"}
			} else {
				want = append(want, tok)
			}
			mustCustom(t, s, tok, "v", testPassword, vaultstore.TokenCreateOptions{Metadata: md})
		}
		slices.Sort(want)
		got, err := s.TokensFindByMetadata(ctx, "tenant", "acme")
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("find = %v, %v; want %v", got, err, want)
		}
		// Pages of 3 with the cursor cover the same list, in order.
		var paged []string
		after := ""
		for {
			page, err := s.TokensFindByMetadata(ctx, "tenant", "acme", vaultstore.FindOptions{Limit: 3, After: after})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 3 {
				t.Fatalf("page of %d, limit 3", len(page))
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1]
		}
		if !slices.Equal(paged, want) {
			t.Errorf("paged = %v, want %v", paged, want)
		}
		// Soft-deleted tokens drop out and come back with a restore;
		// expired ones stay; deleted ones are gone; other keys and values
		// do not match.
		if err := s.TokenSoftDelete(ctx, want[0]); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.TokensFindByMetadata(ctx, "tenant", "acme"); slices.Contains(got, want[0]) {
			t.Errorf("a soft-deleted token was found")
		}
		if err := s.TokenRestore(ctx, want[0]); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.TokensFindByMetadata(ctx, "tenant", "acme"); !slices.Equal(got, want) {
			t.Errorf("after restore: %v, want %v", got, want)
		}
		if err := s.TokenRenew(ctx, want[1], timeIn(-1)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.TokensFindByMetadata(ctx, "tenant", "acme"); !slices.Contains(got, want[1]) {
			t.Errorf("an expired token was not found")
		}
		if err := s.TokenDelete(ctx, want[2]); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.TokensFindByMetadata(ctx, "tenant", "acme"); slices.Contains(got, want[2]) {
			t.Errorf("a deleted token was found")
		}
		for _, miss := range [][2]string{{"tenant", "ACME"}, {"tenant", "acm"}, {"owner", "acme"}} {
			if got, err := s.TokensFindByMetadata(ctx, miss[0], miss[1]); err != nil || len(got) != 0 || got == nil {
				t.Errorf("find %v = %#v, %v; want an empty list", miss, got, err)
			}
		}
		// A label changed by TokenMetadataSet is found under its new value.
		if err := s.TokenMetadataSet(ctx, want[3], map[string]string{"tenant": "initech"}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.TokensFindByMetadata(ctx, "tenant", "initech"); !slices.Equal(got, []string{want[3]}) {
			t.Errorf("find after set = %v, want [%s]", got, want[3])
		}
	})
}

// TestTokenMetadataFollowsItsToken: metadata survives soft delete, restore,
// update, renew and rotation, and is deleted with its token by every delete
// path, TokensExpiredDelete included.
func TestTokenMetadataFollowsItsToken(t *testing.T) {
	t.Parallel()
	for _, identities := range []bool{false, true} {
		t.Run(fmt.Sprint("identities=", identities), func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b backend) {
				ctx := context.Background()
				db := b.open(t)
				s := newStore(t, db, func(o *vaultstore.NewStoreOptions) { o.PasswordIdentityEnabled = identities })
				md := map[string]string{"tenant": "acme", "kind": "card"}
				const tok = "tk_metafollows001"
				mustCustom(t, s, tok, "v1", testPassword, vaultstore.TokenCreateOptions{Metadata: md})
				check := func(step string) {
					t.Helper()
					if got := mustMetadata(t, s, tok); !maps.Equal(got, md) {
						t.Errorf("after %s: metadata = %v, want %v", step, got, md)
					}
				}
				if err := s.TokenSoftDelete(ctx, tok); err != nil {
					t.Fatal(err)
				}
				if err := s.TokenRestore(ctx, tok); err != nil {
					t.Fatal(err)
				}
				check("soft delete and restore")
				if err := s.TokenUpdate(ctx, tok, "v2", testPassword); err != nil {
					t.Fatal(err)
				}
				check("update")
				if _, err := s.TokenUpsert(ctx, tok, "v3", testPassword); err != nil {
					t.Fatal(err)
				}
				check("upsert")
				if err := s.TokenRenew(ctx, tok, timeIn(24)); err != nil {
					t.Fatal(err)
				}
				check("renew")
				const newPassword = "another long password 2"
				if n, err := s.TokensChangePassword(ctx, testPassword, newPassword); err != nil || n != 1 {
					t.Fatalf("rotation = %d, %v", n, err)
				}
				check("rotation")
				if v, err := s.TokenRead(ctx, tok, newPassword); err != nil || v != "v3" {
					t.Fatalf("read after rotation = %q, %v", v, err)
				}
				if got, _ := s.TokensFindByMetadata(ctx, "tenant", "acme"); !slices.Equal(got, []string{tok}) {
					t.Errorf("find after rotation = %v", got)
				}

				// Every delete path takes the meta rows with it.
				id := rowOf(t, s, tok).GetID()
				if n := recordMetaRows(t, db, s, id); n < 2 {
					t.Fatalf("%d meta rows before delete, want at least 2", n)
				}
				if err := s.TokenDelete(ctx, tok); err != nil {
					t.Fatal(err)
				}
				if n := recordMetaRows(t, db, s, id); n != 0 {
					t.Errorf("TokenDelete left %d meta rows", n)
				}

				r := vaultstore.NewRecord().SetToken("tk_metabyid000001").SetValue("raw")
				if err := s.RecordCreate(ctx, r); err != nil {
					t.Fatal(err)
				}
				if err := s.TokenMetadataSet(ctx, "tk_metabyid000001", md); err != nil {
					t.Fatal(err)
				}
				if err := s.RecordDeleteByID(ctx, r.GetID()); err != nil {
					t.Fatal(err)
				}
				if n := recordMetaRows(t, db, s, r.GetID()); n != 0 {
					t.Errorf("RecordDeleteByID left %d meta rows", n)
				}

				mustCustom(t, s, "tk_metaexpired001", "v", testPassword, vaultstore.TokenCreateOptions{Metadata: md})
				mustCustom(t, s, "tk_metakept000001", "v", testPassword, vaultstore.TokenCreateOptions{Metadata: md})
				expiredID := rowOf(t, s, "tk_metaexpired001").GetID()
				if err := s.TokenRenew(ctx, "tk_metaexpired001", timeIn(-1)); err != nil {
					t.Fatal(err)
				}
				if n, err := s.TokensExpiredDelete(ctx); err != nil || n != 1 {
					t.Fatalf("TokensExpiredDelete = %d, %v", n, err)
				}
				if n := recordMetaRows(t, db, s, expiredID); n != 0 {
					t.Errorf("TokensExpiredDelete left %d meta rows", n)
				}
				if got := mustMetadata(t, s, "tk_metakept000001"); !maps.Equal(got, md) {
					t.Errorf("TokensExpiredDelete took the metadata of a live token: %v", got)
				}
			})
		})
	}
}

// TestTokenMetadataCreatedAtomically: of concurrent creates of one custom
// token with different metadata, one wins, and the meta table holds exactly
// the winner's metadata.
func TestTokenMetadataCreatedAtomically(t *testing.T) {
	t.Parallel()
	forEachDatabase(t, func(t *testing.T, b dbBackend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db)
		const tok = "tk_metaatomic0001"
		var won atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				md := map[string]string{"writer": fmt.Sprint(i), fmt.Sprintf("only-%d", i): "x"}
				err := s.TokenCreateCustom(ctx, tok, fmt.Sprint("value ", i), testPassword, vaultstore.TokenCreateOptions{Metadata: md})
				switch {
				case err == nil:
					won.Add(1)
				case !errors.Is(err, vaultstore.ErrTokenAlreadyExists):
					t.Errorf("TokenCreateCustom: %v", err)
				}
			})
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("%d creates won, want 1", won.Load())
		}
		v, err := s.TokenRead(ctx, tok, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		writer := strings.TrimPrefix(v, "value ")
		want := map[string]string{"writer": writer, "only-" + writer: "x"}
		if got := mustMetadata(t, s, tok); !maps.Equal(got, want) {
			t.Errorf("metadata = %v, want the winner's %v", got, want)
		}
		if n := countRows(t, db, sprintf("SELECT COUNT(*) FROM %s WHERE object_type = 'record'", s.GetMetaTableName())); n != 2 {
			t.Errorf("%d record meta rows, want the winner's 2", n)
		}
	})
}

// TestMetadataOnLegacyMetaTable: a meta table from an older release
// (meta_key varchar(50)) is widened by AutoMigrate, keeping its rows, so the
// longest keys fit; the lookup index is made once.
func TestMetadataOnLegacyMetaTable(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		vault, meta := uniqueTables(t, db)
		mustExec(t, db, sprintf(legacyMetaDDL[b.name], meta))
		mustExec(t, db, sprintf("INSERT INTO %s (object_type, object_id, meta_key, meta_value) VALUES ('vault', 'settings', 'kept', 'yes')", meta))
		opts := vaultstore.NewStoreOptions{VaultTableName: vault, VaultMetaTableName: meta, DB: db, CryptoConfig: testCrypto(), AutomigrateEnabled: true}
		s, err := vaultstore.NewStore(opts)
		if err != nil {
			t.Fatal(err)
		}
		key := strings.Repeat("k", vaultstore.MaxMetadataKeyLength)
		mustCustom(t, s, "tk_legacymeta0001", "v", testPassword, vaultstore.TokenCreateOptions{Metadata: map[string]string{key: "long key"}})
		if got := mustMetadata(t, s, "tk_legacymeta0001"); got[key] != "long key" {
			t.Errorf("metadata with a 64-character key = %v", got)
		}
		if got, err := s.TokensFindByMetadata(ctx, key, "long key"); err != nil || !slices.Equal(got, []string{"tk_legacymeta0001"}) {
			t.Errorf("find by the long key = %v, %v", got, err)
		}
		if v, err := s.GetVaultSetting(ctx, "kept"); err != nil || v != "yes" {
			t.Errorf("setting of the legacy table = %q, %v", v, err)
		}
		if err := s.AutoMigrate(); err != nil {
			t.Fatalf("second AutoMigrate: %v", err)
		}
	})
}

// TestFindByMetadataUsesTheIndex: SQLite's plan for the search reads the
// meta table through the lookup index and the vault by primary key, never
// by scanning either.
func TestFindByMetadataUsesTheIndex(t *testing.T) {
	t.Parallel()
	db := openMemorySQLite(t)
	s := newStore(t, db)
	checkLookupPlan(t, db, s, s.FindByMetadataSQL(100), "md.tenant", "acme", "2000-01-01 00:00:00", "")
	checkLookupPlan(t, db, s, s.FingerprintCandidatesSQL(), "fingerprint", "abc", "2000-01-01 00:00:00", "2000-01-01 00:00:00")
}

// checkLookupPlan fails unless SQLite's plan for stmt reads the meta table
// through the lookup index and scans no table.
func checkLookupPlan(t testing.TB, db *sql.DB, s *vaultstore.Store, stmt string, args ...any) {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN "+stmt, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "idx_"+s.GetMetaTableName()+"_lookup") {
		t.Errorf("the plan does not use the lookup index:\n%s", text)
	}
	for _, line := range plan {
		if strings.HasPrefix(line, "SCAN") {
			t.Errorf("the plan scans a table:\n%s", text)
		}
	}
}
