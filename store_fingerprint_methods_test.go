package vaultstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vaultstore/vaultstore"
)

func withFingerprints(o *vaultstore.NewStoreOptions) { o.FingerprintEnabled = true }

func dedup() vaultstore.TokenCreateOptions {
	return vaultstore.TokenCreateOptions{Deduplicate: true}
}

// fingerprintRows returns the stored fingerprints keyed by record object
// id, by direct SQL.
func fingerprintRows(t testing.TB, db *sql.DB, s *vaultstore.Store) map[string]string {
	t.Helper()
	rows, err := db.Query(sprintf("SELECT object_id, meta_value FROM %s WHERE object_type = 'record' AND meta_key = 'fingerprint'", s.GetMetaTableName()))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, fp string
		if err := rows.Scan(&id, &fp); err != nil {
			t.Fatal(err)
		}
		out[id] = fp
	}
	return out
}

func mustFind(t testing.TB, s *vaultstore.Store, value, password string) []string {
	t.Helper()
	got, err := s.TokensFindByValue(context.Background(), value, password)
	if err != nil {
		t.Fatalf("TokensFindByValue: %v", err)
	}
	return got
}

func TestTokensFindByValue(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db, withFingerprints)
		const other = "another long password 2"
		mustCustom(t, s, "tk_fpfind000003", "123-45-6789", testPassword)
		mustCustom(t, s, "tk_fpfind000001", "123-45-6789", testPassword)
		mustCustom(t, s, "tk_fpfind000002", "987-65-4321", testPassword)
		mustCustom(t, s, "tk_fpfind000004", "123-45-6789", other)
		want := []string{"tk_fpfind000001", "tk_fpfind000003"}
		if got := mustFind(t, s, "123-45-6789", testPassword); !slices.Equal(got, want) {
			t.Fatalf("find = %v, want %v", got, want)
		}
		if got := mustFind(t, s, "123-45-6789", other); !slices.Equal(got, []string{"tk_fpfind000004"}) {
			t.Errorf("find under the other password = %v", got)
		}
		if got := mustFind(t, s, "123-45-678", testPassword); got == nil || len(got) != 0 {
			t.Errorf("find of an absent value = %#v, want an empty list", got)
		}
		if got := mustFind(t, s, "123-45-6789", "a third long password"); len(got) != 0 {
			t.Errorf("find under a password that wrote nothing = %v", got)
		}
		// Soft delete hides, restore shows, expiry hides, update moves.
		if err := s.TokenSoftDelete(ctx, "tk_fpfind000001"); err != nil {
			t.Fatal(err)
		}
		if got := mustFind(t, s, "123-45-6789", testPassword); !slices.Equal(got, []string{"tk_fpfind000003"}) {
			t.Errorf("after soft delete = %v", got)
		}
		if err := s.TokenRestore(ctx, "tk_fpfind000001"); err != nil {
			t.Fatal(err)
		}
		if got := mustFind(t, s, "123-45-6789", testPassword); !slices.Equal(got, want) {
			t.Errorf("after restore = %v", got)
		}
		if err := s.TokenRenew(ctx, "tk_fpfind000003", timeIn(-1)); err != nil {
			t.Fatal(err)
		}
		if got := mustFind(t, s, "123-45-6789", testPassword); !slices.Equal(got, []string{"tk_fpfind000001"}) {
			t.Errorf("after expiry = %v", got)
		}
		if err := s.TokenUpdate(ctx, "tk_fpfind000002", "123-45-6789", testPassword); err != nil {
			t.Fatal(err)
		}
		if got := mustFind(t, s, "123-45-6789", testPassword); !slices.Equal(got, []string{"tk_fpfind000001", "tk_fpfind000002"}) {
			t.Errorf("after update = %v", got)
		}
		if got := mustFind(t, s, "987-65-4321", testPassword); len(got) != 0 {
			t.Errorf("the old value is still found: %v", got)
		}
		// Deletes take the fingerprint with them.
		before := len(fingerprintRows(t, db, s))
		if err := s.TokenDelete(ctx, "tk_fpfind000001"); err != nil {
			t.Fatal(err)
		}
		if n, err := s.TokensExpiredDelete(ctx); err != nil || n != 1 {
			t.Fatalf("TokensExpiredDelete = %d, %v", n, err)
		}
		if after := len(fingerprintRows(t, db, s)); after != before-2 {
			t.Errorf("%d fingerprints after two deletes, want %d", after, before-2)
		}
		if got := mustFind(t, s, "123-45-6789", testPassword); !slices.Equal(got, []string{"tk_fpfind000002"}) {
			t.Errorf("after deletes = %v", got)
		}
		// Refusals.
		plain := newStore(t, db)
		if _, err := plain.TokensFindByValue(ctx, "v", testPassword); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("TokensFindByValue without FingerprintEnabled = %v, want ErrValidationFailed", err)
		}
		if _, err := s.TokensFindByValue(ctx, string(make([]byte, vaultstore.MaxValueSize+1)), testPassword); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("TokensFindByValue of an oversized value = %v, want ErrValidationFailed", err)
		}
	})
}

func TestTokenCreateDeduplicate(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db, withFingerprints)
		first, err := s.TokenCreate(ctx, "4111 1111 1111 1111", testPassword, 20, vaultstore.TokenCreateOptions{Deduplicate: true, Metadata: map[string]string{"n": "1"}})
		if err != nil {
			t.Fatal(err)
		}
		again, err := s.TokenCreate(ctx, "4111 1111 1111 1111", testPassword, 30, vaultstore.TokenCreateOptions{Deduplicate: true, Metadata: map[string]string{"n": "2"}})
		if err != nil || again != first {
			t.Fatalf("second deduplicated create = %q, %v; want %q", again, err, first)
		}
		if md := mustMetadata(t, s, first); md["n"] != "1" {
			t.Errorf("a deduplicated create changed the existing token's metadata: %v", md)
		}
		// Without Deduplicate an equal value gets its own token.
		plainTok, err := s.TokenCreate(ctx, "4111 1111 1111 1111", testPassword, 20)
		if err != nil || plainTok == first {
			t.Fatalf("create without Deduplicate = %q, %v", plainTok, err)
		}
		// Another password, or another value, is another token.
		for _, c := range [][2]string{{"4111 1111 1111 1111", "another long password 2"}, {"4111 1111 1111 1112", testPassword}} {
			tok, err := s.TokenCreate(ctx, c[0], c[1], 20, dedup())
			if err != nil || tok == first || tok == plainTok {
				t.Errorf("create of %v = %q, %v; want a new token", c, tok, err)
			}
		}
		// Only readable tokens count: after both are soft-deleted, a new
		// one is made; once expired, too.
		for _, tok := range []string{first, plainTok} {
			if err := s.TokenSoftDelete(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		third, err := s.TokenCreate(ctx, "4111 1111 1111 1111", testPassword, 20, dedup())
		if err != nil || third == first || third == plainTok {
			t.Fatalf("create after soft deletes = %q, %v; want a new token", third, err)
		}
		if err := s.TokenRenew(ctx, third, timeIn(-1)); err != nil {
			t.Fatal(err)
		}
		fourth, err := s.TokenCreate(ctx, "4111 1111 1111 1111", testPassword, 20, dedup())
		if err != nil || fourth == third {
			t.Fatalf("create after expiry = %q, %v; want a new token", fourth, err)
		}
		if v, err := s.TokenRead(ctx, fourth, testPassword); err != nil || v != "4111 1111 1111 1111" {
			t.Errorf("read of the deduplicated token = %q, %v", v, err)
		}
		// Refusals.
		if err := s.TokenCreateCustom(ctx, "tk_fpcustom00001", "v", testPassword, dedup()); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("TokenCreateCustom with Deduplicate = %v, want ErrValidationFailed", err)
		}
		plain := newStore(t, db)
		if _, err := plain.TokenCreate(ctx, "v", testPassword, 20, dedup()); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("Deduplicate without FingerprintEnabled = %v, want ErrValidationFailed", err)
		}
		// No lock row is ever left behind.
		if n := countRows(t, db, sprintf("SELECT COUNT(*) FROM %s WHERE object_type = '%s'", s.GetMetaTableName(), vaultstore.OBJECT_TYPE_FINGERPRINT_LOCK)); n != 0 {
			t.Errorf("%d fingerprint locks left in the meta table", n)
		}
	})
}

// TestTokenCreateDeduplicateRace: 20 goroutines creating one value at once,
// with Deduplicate, get one token, on every database (real concurrent
// connections: file SQLite in WAL mode, PostgreSQL, MariaDB).
func TestTokenCreateDeduplicateRace(t *testing.T) {
	t.Parallel()
	forEachDatabase(t, func(t *testing.T, b dbBackend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db, withFingerprints)
		// One value already stored without Deduplicate, under another
		// password, must not be picked.
		mustCustom(t, s, "tk_fprace_other1", "raced value", "another long password 2")
		// Every create waits between its search and its insert, so that
		// all 20 searches run before the first insert commits.
		defer vaultstore.SetDedupPause(50 * time.Millisecond)()
		tokens := make([]string, 20)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range tokens {
			wg.Go(func() {
				<-start
				tok, err := s.TokenCreate(ctx, "raced value", testPassword, 24, dedup())
				if err != nil {
					t.Errorf("TokenCreate %d: %v", i, err)
				}
				tokens[i] = tok
			})
		}
		close(start)
		wg.Wait()
		distinct := slices.Compact(slices.Sorted(slices.Values(tokens)))
		if len(distinct) != 1 || distinct[0] == "" {
			t.Fatalf("20 racing creates got %d tokens: %v", len(distinct), distinct)
		}
		if n := countRows(t, db, "SELECT COUNT(*) FROM "+s.GetVaultTableName()); n != 2 {
			t.Errorf("%d rows in the vault, want 2", n)
		}
		if got := mustFind(t, s, "raced value", testPassword); !slices.Equal(got, distinct) {
			t.Errorf("find = %v, want %v", got, distinct)
		}
		if n := countRows(t, db, sprintf("SELECT COUNT(*) FROM %s WHERE object_type = '%s'", s.GetMetaTableName(), vaultstore.OBJECT_TYPE_FINGERPRINT_LOCK)); n != 0 {
			t.Errorf("%d fingerprint locks left in the meta table", n)
		}
	})
}

// TestFingerprintsThroughRotation: values written before FingerprintEnabled
// get fingerprints from a same-password rotation, which then changes
// nothing when run again; a rotation to another password fingerprints under
// the new one; after a CryptoConfig change, a same-password rotation
// re-fingerprints (the documented upgrade step); stale fingerprints left by
// a store that did not write them are replaced.
func TestFingerprintsThroughRotation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		before := newStore(t, db) // fingerprints off
		for i := range 5 {
			mustCustom(t, before, tokenN(i), fmt.Sprint("value ", i%2), testPassword)
		}
		s := reopen(t, before, vaultstore.NewStoreOptions{DB: db}, withFingerprints)
		if got := mustFind(t, s, "value 0", testPassword); len(got) != 0 {
			t.Fatalf("values written without fingerprints were found: %v", got)
		}
		if n, err := s.TokensChangePassword(ctx, testPassword, testPassword); err != nil || n != 5 {
			t.Fatalf("same-password rotation = %d, %v; want 5", n, err)
		}
		if got := mustFind(t, s, "value 0", testPassword); !slices.Equal(got, []string{tokenN(0), tokenN(2), tokenN(4)}) {
			t.Errorf("after rotation: %v", got)
		}
		if n, err := s.TokensChangePassword(ctx, testPassword, testPassword); err != nil || n != 0 {
			t.Errorf("second same-password rotation = %d, %v; want 0", n, err)
		}

		// A store without fingerprints updates a value: its fingerprint is
		// stale, and never yields the token for either value.
		if err := before.TokenUpdate(ctx, tokenN(0), "value 1", testPassword); err != nil {
			t.Fatal(err)
		}
		if got := mustFind(t, s, "value 0", testPassword); !slices.Equal(got, []string{tokenN(2), tokenN(4)}) {
			t.Errorf("stale fingerprint: find of the old value = %v", got)
		}
		if n, err := s.TokensChangePassword(ctx, testPassword, testPassword); err != nil || n != 1 {
			t.Errorf("rotation over one stale fingerprint = %d, %v; want 1", n, err)
		}
		if got := mustFind(t, s, "value 1", testPassword); !slices.Equal(got, []string{tokenN(0), tokenN(1), tokenN(3)}) {
			t.Errorf("after the stale fingerprint was replaced: %v", got)
		}

		// Another CryptoConfig: another KEK, so other fingerprints, until
		// a same-password rotation.
		cfg := testCrypto()
		cfg.Iterations = 2
		s2 := reopen(t, s, vaultstore.NewStoreOptions{DB: db, CryptoConfig: cfg, MinArgon2Iterations: 1, MinArgon2Memory: 8}, withFingerprints)
		if got := mustFind(t, s2, "value 1", testPassword); len(got) != 0 {
			t.Errorf("found under another CryptoConfig before the upgrade step: %v", got)
		}
		if n, err := s2.TokensChangePassword(ctx, testPassword, testPassword); err != nil || n != 5 {
			t.Fatalf("upgrade rotation = %d, %v; want 5", n, err)
		}
		if got := mustFind(t, s2, "value 1", testPassword); !slices.Equal(got, []string{tokenN(0), tokenN(1), tokenN(3)}) {
			t.Errorf("after the upgrade step: %v", got)
		}

		// To another password: found under the new one only.
		const newPassword = "the next long password"
		if n, err := s2.TokensChangePassword(ctx, testPassword, newPassword); err != nil || n != 5 {
			t.Fatalf("rotation to a new password = %d, %v", n, err)
		}
		if got := mustFind(t, s2, "value 0", newPassword); !slices.Equal(got, []string{tokenN(2), tokenN(4)}) {
			t.Errorf("under the new password: %v", got)
		}
		if got := mustFind(t, s2, "value 0", testPassword); len(got) != 0 {
			t.Errorf("under the old password: %v", got)
		}
		if n := len(fingerprintRows(t, db, s2)); n != 5 {
			t.Errorf("%d fingerprints, want one per record (5)", n)
		}
	})
}

// TestFingerprintsWithIdentities: the identity rotation path fingerprints
// too, and the identity links and fingerprints coexist.
func TestFingerprintsWithIdentities(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t), withFingerprints, func(o *vaultstore.NewStoreOptions) { o.PasswordIdentityEnabled = true })
		tok, err := s.TokenCreate(ctx, "v", testPassword, 20, vaultstore.TokenCreateOptions{Deduplicate: true, Metadata: map[string]string{"a": "b"}})
		if err != nil {
			t.Fatal(err)
		}
		const newPassword = "the next long password"
		if n, err := s.TokensChangePassword(ctx, testPassword, newPassword); err != nil || n != 1 {
			t.Fatalf("rotation = %d, %v", n, err)
		}
		if got := mustFind(t, s, "v", newPassword); !slices.Equal(got, []string{tok}) {
			t.Errorf("find after identity rotation = %v", got)
		}
		if again, err := s.TokenCreate(ctx, "v", newPassword, 20, dedup()); err != nil || again != tok {
			t.Errorf("deduplicated create after rotation = %q, %v; want %q", again, err, tok)
		}
	})
}
