package vaultstore_test

// The attacker's tests of fingerprints (docs/encryption.md, "Fingerprints"):
// the attacker reads and writes both tables at will.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/vaultstore/vaultstore"
)

// dumpStrings returns every text in both tables, as an attacker's dump.
func dumpStrings(t testing.TB, db *sql.DB, s *vaultstore.Store) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		"SELECT object_type, object_id, meta_key, meta_value FROM " + s.GetMetaTableName(),
		"SELECT id, vault_token, vault_value, vault_token FROM " + s.GetVaultTableName(),
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a, b, c, d string
			if err := rows.Scan(&a, &b, &c, &d); err != nil {
				t.Fatal(err)
			}
			out = append(out, a, b, c, d)
		}
		rows.Close()
	}
	return out
}

// candidateKeys is every 32-byte string an attacker can take from the
// dump: each text as it is and as any base64 or hex decoding of it (with
// the "v3:" prefix removed), and every 32-byte window of those, such as a
// v3 value's commitment.
func candidateKeys(texts []string) [][]byte {
	var keys [][]byte
	for _, text := range texts {
		forms := [][]byte{[]byte(text)}
		body := text
		if len(body) > 3 && body[2] == ':' {
			body = body[3:]
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(body); err == nil {
				forms = append(forms, b)
			}
		}
		if b, err := hex.DecodeString(body); err == nil {
			forms = append(forms, b)
		}
		for _, f := range forms {
			for i := 0; i+32 <= len(f); i++ {
				keys = append(keys, f[i:i+32])
			}
			if len(f) > 0 && len(f) < 32 {
				keys = append(keys, f) // short keys too (the vault salt)
			}
		}
	}
	return keys
}

// TestAttackFingerprintsCannotBeRecomputed: from the database alone, no
// fingerprint can be recomputed for a guessed value: neither a plain hash
// of the value nor an HMAC (or the store's own fingerprint construction)
// under any string the tables hold matches a stored fingerprint. The
// positive control shows the construction is right with the password's
// KEK, which only the password gives.
func TestAttackFingerprintsCannotBeRecomputed(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		db := b.open(t)
		s := newStore(t, db, withFingerprints)
		const guess = "123456789" // a 9-digit ID number
		mustCustom(t, s, "tk_fpattack00001", guess, testPassword)
		mustCustom(t, s, "tk_fpattack00002", guess, testPassword, vaultstore.TokenCreateOptions{Metadata: map[string]string{"kind": "ssn"}})
		mustCustom(t, s, "tk_fpattack00003", guess, "another long password 2")
		mustCustom(t, s, "tk_fpattack00004", "987654321", testPassword)

		stored := fingerprintRows(t, db, s)
		if len(stored) != 4 {
			t.Fatalf("%d fingerprints stored, want 4", len(stored))
		}
		byToken := func(tok string) string { return stored[vaultstore.RECORD_META_ID_PREFIX+rowOf(t, s, tok).GetID()] }
		// What fingerprints reveal: equal values under one password.
		// What they do not: equal values under two passwords.
		if byToken("tk_fpattack00001") != byToken("tk_fpattack00002") {
			t.Errorf("equal values under one password have different fingerprints")
		}
		if byToken("tk_fpattack00001") == byToken("tk_fpattack00003") {
			t.Errorf("equal values under two passwords share a fingerprint: they can be linked")
		}
		if byToken("tk_fpattack00001") == byToken("tk_fpattack00004") {
			t.Errorf("different values share a fingerprint")
		}

		isStored := func(fp string) bool {
			for _, v := range stored {
				if v == fp {
					return true
				}
			}
			return false
		}
		sum := sha256.Sum256([]byte(guess))
		for _, enc := range []string{
			base64.RawURLEncoding.EncodeToString(sum[:]), base64.URLEncoding.EncodeToString(sum[:]),
			base64.StdEncoding.EncodeToString(sum[:]), hex.EncodeToString(sum[:]),
		} {
			if isStored(enc) {
				t.Fatalf("a plain SHA-256 of the value is stored as its fingerprint")
			}
		}
		keys := candidateKeys(dumpStrings(t, db, s))
		if len(keys) < 50 {
			t.Fatalf("only %d candidate keys from the dump", len(keys))
		}
		for _, k := range keys {
			mac := hmac.New(sha256.New, k)
			mac.Write([]byte(guess))
			if isStored(base64.RawURLEncoding.EncodeToString(mac.Sum(nil))) {
				t.Fatalf("HMAC of the value under a string from the dump matches a stored fingerprint")
			}
			if isStored(vaultstore.FingerprintWith(k, guess)) {
				t.Fatalf("the fingerprint construction under a string from the dump matches a stored fingerprint")
			}
		}

		// Positive control: with the password's KEK (Argon2id of the
		// password under the vault salt), the guess is confirmed.
		setting, err := s.GetVaultSetting(context.Background(), vaultstore.META_KEY_VAULT_SALT)
		if err != nil {
			t.Fatal(err)
		}
		salt, err := base64.URLEncoding.DecodeString(setting)
		if err != nil {
			t.Fatal(err)
		}
		c := testCrypto()
		kek := vaultstore.Argon2idKey(testPassword, salt, uint32(c.Iterations), uint32(c.Memory), uint8(c.Parallelism))
		if vaultstore.FingerprintWith(kek, guess) != byToken("tk_fpattack00001") {
			t.Errorf("positive control: the fingerprint is not the documented construction under the password's KEK")
		}
	})
}

// TestAttackPlantedFingerprints: a fingerprint copied onto another record,
// or a fingerprint lock left in the table, never makes the store return a
// token whose value differs, nor stops a deduplicating create.
func TestAttackPlantedFingerprints(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db, withFingerprints)
		mustCustom(t, s, "tk_fpplant000001", "the real value", testPassword)
		mustCustom(t, s, "tk_fpplant000002", "another value", testPassword)
		realFP := fingerprintRows(t, db, s)[vaultstore.RECORD_META_ID_PREFIX+rowOf(t, s, "tk_fpplant000001").GetID()]
		victim := vaultstore.RECORD_META_ID_PREFIX + rowOf(t, s, "tk_fpplant000002").GetID()
		mustExec(t, db, rebind(s, "UPDATE "+s.GetMetaTableName()+" SET meta_value = ? WHERE object_id = ? AND meta_key = 'fingerprint'"), realFP, victim)
		if got := mustFind(t, s, "the real value", testPassword); !slices.Equal(got, []string{"tk_fpplant000001"}) {
			t.Errorf("find after a fingerprint was copied = %v, want only the real token", got)
		}
		// The copied fingerprint on a record the attacker planted, with a
		// value that does not open, is ignored too.
		plant(t, s, db, "tk_fpplant000003", "v3:not a value")
		mustExec(t, db, rebind(s, "INSERT INTO "+s.GetMetaTableName()+" (object_type, object_id, meta_key, meta_value) VALUES (?, ?, ?, ?)"),
			vaultstore.OBJECT_TYPE_RECORD, vaultstore.RECORD_META_ID_PREFIX+"plantedfpplant000003", vaultstore.META_KEY_FINGERPRINT, realFP)
		if got := mustFind(t, s, "the real value", testPassword); !slices.Equal(got, []string{"tk_fpplant000001"}) {
			t.Errorf("find with a planted record = %v, want only the real token", got)
		}
		// Deduplication returns the real token, never the victim.
		if tok, err := s.TokenCreate(ctx, "the real value", testPassword, 20, dedup()); err != nil || tok != "tk_fpplant000001" {
			t.Errorf("deduplicated create = %q, %v; want the real token", tok, err)
		}
		// A committed lock row (no create leaves one) does not block.
		fpOther, err := s.TokensFindByValue(ctx, "a new value", testPassword)
		if err != nil || len(fpOther) != 0 {
			t.Fatal(fpOther, err)
		}
		tok, err := s.TokenCreate(ctx, "a new value", testPassword, 20, dedup())
		if err != nil {
			t.Fatal(err)
		}
		newFP := fingerprintRows(t, db, s)[vaultstore.RECORD_META_ID_PREFIX+rowOf(t, s, tok).GetID()]
		if err := s.TokenDelete(ctx, tok); err != nil {
			t.Fatal(err)
		}
		mustExec(t, db, rebind(s, "INSERT INTO "+s.GetMetaTableName()+" (object_type, object_id, meta_key, meta_value) VALUES (?, ?, ?, ?)"),
			vaultstore.OBJECT_TYPE_FINGERPRINT_LOCK, newFP, "lock", "")
		if again, err := s.TokenCreate(ctx, "a new value", testPassword, 20, dedup()); err != nil || again == tok {
			t.Errorf("deduplicated create past a planted lock = %q, %v", again, err)
		}
	})
}

// TestFingerprintsLeaveTheVaultTableAlone: with fingerprints and metadata
// in use, the vault table has exactly its original columns, and the
// original library's INSERTs, naming only those, still work on both tables.
func TestFingerprintsLeaveTheVaultTableAlone(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		db := b.open(t)
		s := newStore(t, db, withFingerprints)
		mustCustom(t, s, "tk_fporiginal001", "v", testPassword, vaultstore.TokenCreateOptions{Metadata: map[string]string{"a": "b"}})
		rows, err := db.Query("SELECT * FROM " + s.GetVaultTableName())
		if err != nil {
			t.Fatal(err)
		}
		cols, err := rows.Columns()
		rows.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"id", "vault_token", "vault_value", "created_at", "updated_at", "expires_at", "soft_deleted_at"}
		if !slices.Equal(cols, want) {
			t.Errorf("vault columns = %v, want the original %v", cols, want)
		}
		plant(t, s, db, "tk_fporiginal002", "an original row")
		mustExec(t, db, rebind(s, "INSERT INTO "+s.GetMetaTableName()+" (object_type, object_id, meta_key, meta_value) VALUES (?, ?, ?, ?)"),
			vaultstore.OBJECT_TYPE_RECORD, vaultstore.RECORD_META_ID_PREFIX+"original", "custom", "x")
		if r, err := s.RecordFindByToken(context.Background(), "tk_fporiginal002"); err != nil || r == nil {
			t.Errorf("the original's row does not read: %v, %v", r, err)
		}
	})
}
