package vaultstore_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/vaultstore/vaultstore"
)

// lookupRows is the size of the benchmarks' vault.
const lookupRows = 100_000

// lookupValue is the value of row i of the lookup dataset: all distinct.
func lookupValue(i int) string { return fmt.Sprintf("value-%06d", i) }

// lookupToken is the token of row i.
func lookupToken(i int) string { return fmt.Sprintf("tk_lookup%08d", i) }

// lookupBatch is row i's metadata "batch": 1,000 labels of 100 tokens each.
func lookupBatch(i int) string { return fmt.Sprintf("b%03d", i%1000) }

// seedLookupDataset stores lookupRows values under testPassword in s, each
// with its fingerprint and one metadata label, as s itself would have
// written them, straight through SQL in one transaction: the values are
// sealed with the codec under the password's KEK (the store's own vault
// salt and parameters), the fingerprints computed with the store's
// construction. A value written through the API first makes the vault salt.
func seedLookupDataset(b *testing.B, s *vaultstore.Store, db *sql.DB) {
	b.Helper()
	ctx := context.Background()
	if err := s.TokenCreateCustom(ctx, "tk_lookupwarmup0", "warm-up", testPassword); err != nil {
		b.Fatal(err)
	}
	setting, err := s.GetVaultSetting(ctx, vaultstore.META_KEY_VAULT_SALT)
	if err != nil {
		b.Fatal(err)
	}
	salt, err := base64.URLEncoding.DecodeString(setting)
	if err != nil {
		b.Fatal(err)
	}
	c := testCrypto()
	t, m, p := uint32(c.Iterations), uint32(c.Memory), uint8(c.Parallelism)
	kek := vaultstore.Argon2idKey(testPassword, salt, t, m, p)
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	vaultStmt, err := tx.Prepare("INSERT INTO " + s.GetVaultTableName() + " (id, vault_token, vault_value, created_at, updated_at, expires_at, soft_deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
	if err != nil {
		b.Fatal(err)
	}
	metaStmt, err := tx.Prepare("INSERT INTO " + s.GetMetaTableName() + " (object_type, object_id, meta_key, meta_value) VALUES ('record', ?, ?, ?)")
	if err != nil {
		b.Fatal(err)
	}
	for i := range lookupRows {
		id := fmt.Sprintf("lookup%026d", i)
		sealed, err := vaultstore.SealV3(lookupValue(i), lookupToken(i), kek, t, m, p, salt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := vaultStmt.Exec(id, lookupToken(i), sealed, "2026-01-01 00:00:00", "2026-01-01 00:00:00", vaultstore.MAX_DATETIME, vaultstore.MAX_DATETIME); err != nil {
			b.Fatal(err)
		}
		objectID := vaultstore.RECORD_META_ID_PREFIX + id
		if _, err := metaStmt.Exec(objectID, vaultstore.META_KEY_FINGERPRINT, vaultstore.FingerprintWith(kek, lookupValue(i))); err != nil {
			b.Fatal(err)
		}
		if _, err := metaStmt.Exec(objectID, vaultstore.META_KEY_METADATA_PREFIX+"batch", lookupBatch(i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec("ANALYZE"); err != nil {
		b.Fatal(err)
	}
	// With the statistics of a large table too, the searches use the index.
	checkLookupPlan(b, db, s, s.FindByMetadataSQL(100), "md.batch", "b042", "2000-01-01 00:00:00", "")
	checkLookupPlan(b, db, s, s.FingerprintCandidatesSQL(), "fingerprint", "abc", "2000-01-01 00:00:00", "2000-01-01 00:00:00")
	// The dataset is what the store would have written.
	if v, err := s.TokenRead(ctx, lookupToken(4242), testPassword); err != nil || v != lookupValue(4242) {
		b.Fatalf("seeded value reads %q, %v", v, err)
	}
	if got, err := s.TokensFindByValue(ctx, lookupValue(4242), testPassword); err != nil || len(got) != 1 || got[0] != lookupToken(4242) {
		b.Fatalf("seeded fingerprint finds %v, %v", got, err)
	}
}

// BenchmarkLookup100k compares, on file-backed SQLite (WAL,
// synchronous=NORMAL) holding 100,000 fingerprinted values with one label
// each, warm: TokensFindByValue with TokenRead, TokenCreate with
// Deduplicate (always a new value: the path that writes) with TokenCreate
// with and without fingerprints, and TokensFindByMetadata of 100 matches.
func BenchmarkLookup100k(b *testing.B) {
	ctx := context.Background()
	db := openFileSQLite(b)
	s := newStore(b, db, withFingerprints)
	seedLookupDataset(b, s, db)
	noFP := reopen(b, s, vaultstore.NewStoreOptions{DB: db})
	created := 0
	newValue := func() string {
		created++
		return fmt.Sprintf("new value %d", created)
	}

	b.Run("TokenRead", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i = (i + 7919) % lookupRows
			if _, err := s.TokenRead(ctx, lookupToken(i), testPassword); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("TokensFindByValue", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i = (i + 7919) % lookupRows
			got, err := s.TokensFindByValue(ctx, lookupValue(i), testPassword)
			if err != nil || len(got) != 1 {
				b.Fatal(got, err)
			}
		}
	})
	b.Run("TokenCreate/no-fingerprints", func(b *testing.B) {
		for b.Loop() {
			if _, err := noFP.TokenCreate(ctx, newValue(), testPassword, 24); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("TokenCreate/fingerprints", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.TokenCreate(ctx, newValue(), testPassword, 24); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("TokenCreate/deduplicate-new", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.TokenCreate(ctx, newValue(), testPassword, 24, dedup()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("TokenCreate/deduplicate-existing", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i = (i + 7919) % lookupRows
			tok, err := s.TokenCreate(ctx, lookupValue(i), testPassword, 24, dedup())
			if err != nil || tok != lookupToken(i) {
				b.Fatal(tok, err)
			}
		}
	})
	b.Run("TokensFindByMetadata100", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i = (i + 17) % 1000
			got, err := s.TokensFindByMetadata(ctx, "batch", lookupBatch(i))
			if err != nil || len(got) != 100 {
				b.Fatal(len(got), err)
			}
		}
	})
}
