package vaultstore_test

// The attacker's tests. The threat model (docs/encryption.md) lets an
// attacker read and write both tables at will; each test here plants rows
// with direct SQL, as such an attacker would, then drives the public API
// and checks that the rule it names holds.

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vaultstore/vaultstore"
)

// rebind writes q's ? placeholders in the dialect of s's database.
func rebind(s *vaultstore.Store, q string) string { return placeholders(s.GetDbDriverName(), q) }

// plant writes a live, never-expiring row holding stored under token.
func plant(t testing.TB, s *vaultstore.Store, db *sql.DB, token, stored string) {
	t.Helper()
	mustExec(t, db, rebind(s, "INSERT INTO "+s.GetVaultTableName()+
		" (id, vault_token, vault_value, created_at, updated_at, expires_at, soft_deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?)"),
		"planted"+strings.TrimPrefix(token, "tk_"), token, stored, "2026-01-01 00:00:00", "2026-01-01 00:00:00", vaultstore.MAX_DATETIME, vaultstore.MAX_DATETIME)
}

// plantIdentity writes a password identity row.
func plantIdentity(t testing.TB, s *vaultstore.Store, db *sql.DB, id, value string) {
	t.Helper()
	mustExec(t, db, rebind(s, "INSERT INTO "+s.GetMetaTableName()+" (object_type, object_id, meta_key, meta_value) VALUES (?, ?, ?, ?)"),
		vaultstore.OBJECT_TYPE_PASSWORD_IDENTITY, id, vaultstore.META_KEY_HASH, value)
}

// metaBytes decodes every field of every meta row that any base64 variant
// decodes, and returns the 32-byte strings (candidate keys) and the
// 16-byte ones (candidate salts) among them.
func metaBytes(t testing.TB, s *vaultstore.Store, db *sql.DB) (keys, salts [][]byte) {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "SELECT meta_value FROM "+s.GetMetaTableName())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	encodings := []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding}
	seen := map[string]bool{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		fields := strings.FieldsFunc(v, func(r rune) bool { return r == '$' || r == ',' })
		for _, f := range append(fields, v) {
			for _, enc := range encodings {
				b, err := enc.DecodeString(f)
				if err != nil || seen[string(b)] {
					continue
				}
				seen[string(b)] = true
				switch len(b) {
				case 32:
					keys = append(keys, b)
				case 16:
					salts = append(salts, b)
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return keys, salts
}

func identities(o *vaultstore.NewStoreOptions) { o.PasswordIdentityEnabled = true }

// TestAttackMetaTableHoldsNoKey: a v3 value built from any 32-byte string
// found in the meta table, under any salt found there, never opens. (The
// identities of earlier releases stored Argon2id(password, salt), which is
// the v3 KEK of a vault with that salt.)
func TestAttackMetaTableHoldsNoKey(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db, identities)
		for i := range 3 {
			mustCustom(t, s, fmt.Sprintf("tk_attack_real%d", i), "real", testPassword)
		}
		mustCustom(t, s, "tk_attack_other", "other", "another password, long enough")
		keys, salts := metaBytes(t, s, db)
		if len(keys) == 0 || len(salts) == 0 {
			t.Fatalf("found %d keys and %d salts in the meta table; the test would prove nothing", len(keys), len(salts))
		}
		c := testCrypto()
		n := 0
		for _, key := range keys {
			for _, salt := range salts {
				token := fmt.Sprintf("tk_attack_plant%02d", n)
				n++
				stored, err := vaultstore.SealV3("planted", token, key, uint32(c.Iterations), uint32(c.Memory), uint8(c.Parallelism), salt)
				if err != nil {
					t.Fatal(err)
				}
				plant(t, s, db, token, stored)
				for _, pw := range []string{testPassword, "another password, long enough"} {
					if v, err := s.TokenRead(ctx, token, pw); err == nil || v == "planted" {
						t.Fatalf("a value sealed under a key from the meta table opens: %q, %v", v, err)
					}
				}
			}
		}
	})
}

// TestAttackVaultSaltSetToIdentitySalt: with the vault-salt setting
// replaced by an identity's salt, values written by a new store do not open
// under anything stored in the meta table.
func TestAttackVaultSaltSetToIdentitySalt(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db, identities)
		mustCustom(t, s, "tk_attack_first", "first", testPassword)
		_, salts := metaBytes(t, s, db)
		for i, salt := range salts {
			mustExec(t, db, rebind(s, "UPDATE "+s.GetMetaTableName()+" SET meta_value = ? WHERE meta_key = ?"),
				base64.URLEncoding.EncodeToString(salt), vaultstore.META_KEY_VAULT_SALT)
			fresh := reopen(t, s, vaultstore.NewStoreOptions{DB: db, CryptoConfig: testCrypto(), PasswordIdentityEnabled: true})
			token := fmt.Sprintf("tk_attack_after%02d", i)
			mustCustom(t, fresh, token, "written after", testPassword)
			stored := storedRows(t, fresh)[token][vaultstore.COLUMN_VAULT_VALUE]
			keys, _ := metaBytes(t, fresh, db)
			for _, key := range keys {
				if v, err := vaultstore.OpenV3(stored, token, key); err == nil {
					t.Fatalf("a key stored in the meta table opens a new value: %q", v)
				}
			}
			if v, err := fresh.TokenRead(ctx, token, testPassword); err != nil || v != "written after" {
				t.Fatalf("the application's own read = %q, %v", v, err)
			}
		}
	})
}

// TestAttackCheapParametersRefused: a value or identity planted with t=1 and
// 8 KiB, under the right password, is refused under DefaultCryptoConfig
// before any derivation, so the application never tests guesses at that
// cost; a rotation counts the value as skipped and leaves it alone.
func TestAttackCheapParametersRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openMemorySQLite(t)
	s := newStore(t, db, func(o *vaultstore.NewStoreOptions) { o.CryptoConfig = vaultstore.DefaultCryptoConfig() })
	salt := bytes.Repeat([]byte{9}, 16)
	stored, err := vaultstore.SealV3("planted", "tk_attack_cheap", vaultstore.Argon2idKey(testPassword, salt, 1, 8, 1), 1, 8, 1, salt)
	if err != nil {
		t.Fatal(err)
	}
	plant(t, s, db, "tk_attack_cheap", stored)
	if v, err := s.TokenRead(ctx, "tk_attack_cheap", testPassword); !errors.Is(err, vaultstore.ErrDecryptionFailed) || v != "" {
		t.Fatalf("TokenRead of a t=1, 8 KiB value = %q, %v, want ErrDecryptionFailed", v, err)
	}
	if n := s.Derivations(); n != 0 {
		t.Fatalf("%d derivations for a refused value", n)
	}
	p, err := s.TokensChangePasswordWithOptions(ctx, testPassword, "the next password, long enough", vaultstore.ChangePasswordOptions{})
	if err != nil || p.Skipped != 1 || p.Changed != 0 || storedRows(t, s)["tk_attack_cheap"][vaultstore.COLUMN_VAULT_VALUE] != stored {
		t.Fatalf("rotation over a planted cheap value = %+v, %v; want it skipped and unchanged", p, err)
	}

	// The same for identities, in either form: none matches, so the
	// rotation finds no identity of the password and derives nothing.
	db2 := openMemorySQLite(t)
	withIDs := newStore(t, db2, identities, func(o *vaultstore.NewStoreOptions) { o.CryptoConfig = vaultstore.DefaultCryptoConfig() })
	plantIdentity(t, withIDs, db2, "p_cheap_legacy", vaultstore.IdentityValue(testPassword, salt, 1, 8, 1, true))
	plantIdentity(t, withIDs, db2, "p_cheap_current", vaultstore.IdentityValue(testPassword, salt, 1, 8, 1, false))
	mustExec(t, db2, rebind(withIDs, "INSERT INTO "+withIDs.GetMetaTableName()+" (object_type, object_id, meta_key, meta_value) VALUES (?, ?, ?, ?)"),
		vaultstore.OBJECT_TYPE_RECORD, "r_plantedattack_cheap", vaultstore.META_KEY_PASSWORD_ID, "p_cheap_legacy")
	plant(t, withIDs, db2, "tk_attack_cheap", stored)
	if _, err := withIDs.TokensChangePassword(ctx, testPassword, "the next password, long enough"); !errors.Is(err, vaultstore.ErrInvalidPassword) {
		t.Fatalf("rotation from a password whose only identities are cheap = %v, want ErrInvalidPassword", err)
	}
	if n := withIDs.Derivations(); n != 0 {
		t.Fatalf("%d derivations for refused identities", n)
	}
}

// TestAttackHugeMemoryRefused: a value asking for 1 GiB of Argon2 memory,
// more than the store's budget, is refused at once, without allocating it.
func TestAttackHugeMemoryRefused(t *testing.T) {
	ctx := context.Background()
	db := openMemorySQLite(t)
	s := newStore(t, db, func(o *vaultstore.NewStoreOptions) { o.CryptoConfig = vaultstore.DefaultCryptoConfig() })
	salt := bytes.Repeat([]byte{3}, 16)
	stored, err := vaultstore.SealV3("planted", "tk_attack_huge", make([]byte, 32), 2, vaultstore.MaxArgon2Memory, 4, salt)
	if err != nil {
		t.Fatal(err)
	}
	plant(t, s, db, "tk_attack_huge", stored)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = s.TokenRead(ctx, "tk_attack_huge", testPassword)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, vaultstore.ErrDecryptionFailed) {
		t.Fatalf("TokenRead of a 1 GiB value = %v, want ErrDecryptionFailed", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 || s.Derivations() != 0 {
		t.Fatalf("refusing a 1 GiB value allocated %d bytes and ran %d derivations", grew, s.Derivations())
	}
}

// greedyValues is how many planted values TestAttackGreedyValuesStayInBudget
// reads at once.
const greedyValues = 16

// TestAttackGreedyValuesStayInBudget: 16 goroutines reading 16 planted
// values that each ask for 4 × the configured memory (the whole budget)
// keep the process under twice the budget plus 150 MB of peak RSS: the
// budget lets one such derivation run at a time, whatever
// MaxConcurrentKDF allows. It measures a child process, whose peak is its
// own.
func TestAttackGreedyValuesStayInBudget(t *testing.T) {
	if os.Getenv("VAULTSTORE_GREEDY_CHILD") != "" {
		greedyChild(t)
		return
	}
	if testing.Short() {
		t.Skip("runs a child process that derives 16 × 64 MiB")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc/self/status")
	}
	child := os.Args[0]
	if raceEnabled {
		// The race detector's shadow memory would count against the bound,
		// so the child is this package's tests built without it.
		child = filepath.Join(t.TempDir(), "greedy.test")
		if out, err := exec.Command("go", "test", "-c", "-o", child, ".").CombinedOutput(); err != nil {
			t.Fatalf("building the child without -race: %v\n%s", err, out)
		}
	}
	cmd := exec.Command(child, "-test.run=^TestAttackGreedyValuesStayInBudget$", "-test.v")
	cmd.Env = append(os.Environ(), "VAULTSTORE_GREEDY_CHILD="+filepath.Join(t.TempDir(), "greedy.db"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	_, rest, ok := strings.Cut(string(out), "peak-kib ")
	fields := strings.Fields(rest)
	if !ok || len(fields) == 0 {
		t.Fatalf("child printed no peak:\n%s", out)
	}
	peak, err := strconv.Atoi(fields[0])
	if err != nil {
		t.Fatal(err)
	}
	const budgetKiB = 4 * greedyMemoryKiB
	limit := 2*budgetKiB + 150*1000*1000/1024
	t.Logf("peak RSS %d MiB with a budget of %d MiB (limit %d MiB)", peak/1024, budgetKiB/1024, limit/1024)
	if peak > limit {
		t.Fatalf("peak RSS %d KiB, over twice the budget plus 150 MB (%d KiB)", peak, limit)
	}
}

// greedyMemoryKiB is the child's CryptoConfig.Memory: 16 MiB, so that
// the budget is 64 MiB and each planted value asks for all of it.
const greedyMemoryKiB = 16 << 10

func greedyChild(t *testing.T) {
	ctx := context.Background()
	db := openSQLiteFile(t, os.Getenv("VAULTSTORE_GREEDY_CHILD"))
	cfg := testCrypto()
	cfg.Memory = greedyMemoryKiB
	s := newStore(t, db, func(o *vaultstore.NewStoreOptions) {
		o.CryptoConfig = cfg
		o.MaxConcurrentKDF = greedyValues // only the budget holds them back
	})
	for i := range greedyValues {
		salt := make([]byte, 16)
		key := make([]byte, 32)
		io.ReadFull(rand.Reader, salt)
		io.ReadFull(rand.Reader, key)
		stored, err := vaultstore.SealV3("planted", fmt.Sprintf("tk_attack_greedy%02d", i), key, 1, 4*greedyMemoryKiB, 1, salt)
		if err != nil {
			t.Fatal(err)
		}
		plant(t, s, db, fmt.Sprintf("tk_attack_greedy%02d", i), stored)
	}
	var wg sync.WaitGroup
	for i := range greedyValues {
		wg.Go(func() {
			if _, err := s.TokenRead(ctx, fmt.Sprintf("tk_attack_greedy%02d", i), testPassword); !errors.Is(err, vaultstore.ErrInvalidPassword) {
				t.Errorf("greedy value %d: %v, want ErrInvalidPassword after a derivation", i, err)
			}
		})
	}
	wg.Wait()
	if n := s.Derivations(); n != greedyValues {
		t.Fatalf("%d derivations, want %d", n, greedyValues)
	}
	fmt.Printf("peak-kib %s\n", peakRSSKiB(t))
}

// TestAttackLegacyFormatsRetired: with MinReadVersion, a planted v1 or v2
// value is refused before its key is computed, so it cannot serve to test
// password guesses at hash-chain speed or be swapped between tokens.
func TestAttackLegacyFormatsRetired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v1, pw1, plain1 := originalVector(t, "v1", "ascii")
	v2, pw2, plain2 := originalVector(t, "v2", "custom-token")
	for _, tc := range []struct {
		min          string
		v1ok, v2ok   bool
		skipped      int
		rotationFrom string
	}{
		{min: "", v1ok: true, v2ok: true},
		{min: "v2", v2ok: true},
		{min: "v3"},
	} {
		db := openMemorySQLite(t)
		s := newStore(t, db, func(o *vaultstore.NewStoreOptions) {
			o.CryptoConfig = vaultstore.LightweightCryptoConfig()
			o.MinReadVersion = tc.min
		})
		plant(t, s, db, "tk_attack_v1", v1)
		plant(t, s, db, "tk_attack_v2", v2)
		for _, c := range []struct {
			token, pw, plain string
			ok               bool
		}{{"tk_attack_v1", pw1, plain1, tc.v1ok}, {"tk_attack_v2", pw2, plain2, tc.v2ok}} {
			v, err := s.TokenRead(ctx, c.token, c.pw)
			if c.ok && (err != nil || v != c.plain) {
				t.Errorf("MinReadVersion %q: %s = %v, want it read", tc.min, c.token, err)
			}
			if !c.ok && (!errors.Is(err, vaultstore.ErrDecryptionFailed) || errors.Is(err, vaultstore.ErrInvalidPassword) || v != "") {
				t.Errorf("MinReadVersion %q: %s = %v, want ErrDecryptionFailed alone", tc.min, c.token, err)
			}
		}
		if tc.min == "v3" && s.Derivations() != 0 {
			t.Errorf("MinReadVersion v3 derived %d keys for refused values", s.Derivations())
		}
	}
	if _, err := vaultstore.NewStore(vaultstore.NewStoreOptions{VaultTableName: "v", VaultMetaTableName: "m", DB: openMemorySQLite(t),
		MinReadVersion: "v3", EncryptionVersion: "v2"}); !errors.Is(err, vaultstore.ErrValidationFailed) {
		t.Errorf("a store that could not read what it writes = %v, want ErrValidationFailed", err)
	}
}

// TestAttackGuessesDoNotEvictKeys: reads with wrong passwords derive a key
// each but never enter the cache, so they cannot push out the keys the
// application uses; a rotation drops the old password's keys.
func TestAttackGuessesDoNotEvictKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStore(t, func(o *vaultstore.NewStoreOptions) { o.KeyCacheSize = 2 })
	mustCustom(t, s, "tk_attack_cache", "real", testPassword)
	base := s.Derivations()
	for i := range 10 {
		if _, err := s.TokenRead(ctx, "tk_attack_cache", fmt.Sprint("guess number ", i)); !errors.Is(err, vaultstore.ErrInvalidPassword) {
			t.Fatal(err)
		}
	}
	if n := s.CachedKeys(); n != 1 {
		t.Fatalf("after 10 wrong guesses the cache holds %d keys, want the one real key", n)
	}
	if v, err := s.TokenRead(ctx, "tk_attack_cache", testPassword); err != nil || v != "real" || s.Derivations() != base+10 {
		t.Fatalf("the real key was evicted: %q, %v, %d derivations", v, err, s.Derivations()-base)
	}
	if _, err := s.TokensChangePassword(ctx, testPassword, "the next password, long enough"); err != nil {
		t.Fatal(err)
	}
	if s.CachedKeyOf(testPassword) {
		t.Fatal("the old password's key stayed cached after the rotation")
	}
}

// TestIdentityLookupCostsOneDerivation: finding a password's identity among
// 100 costs one Argon2id (none once its key is cached), however many
// identities there are.
func TestIdentityLookupCostsOneDerivation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openMemorySQLite(t)
	s := newStore(t, db, identities)
	for i := range 100 {
		mustCustom(t, s, fmt.Sprintf("tk_identity%03d", i), "v", fmt.Sprintf("password number %03d, long", i))
	}
	fresh := reopen(t, s, vaultstore.NewStoreOptions{DB: db, CryptoConfig: testCrypto(), PasswordIdentityEnabled: true})
	id, err := fresh.IdentityOf(ctx, "password number 057, long")
	if err != nil || id == "" {
		t.Fatal(err)
	}
	if n := fresh.Derivations(); n != 1 {
		t.Fatalf("finding one identity among 100 ran %d derivations, want 1", n)
	}
	if n, capacity := fresh.RememberedIdentities(); n != 1 || capacity <= 0 {
		t.Fatalf("remembered identities %d of at most %d", n, capacity)
	}
}

// TestLegacyIdentitiesUpgrade: a database written with password identities
// by the release before identity verifiers (testdata/identities_619ee01.db;
// passwords "alpha-password-0001" for tokens 00, 02, 04 and
// "bravo-password-0002" for 01, 03, 05; 04 expired, 05 soft-deleted; Argon2
// t=1, m=64 KiB, p=1) opens with this release, every record rotates, and
// afterwards no legacy hash, a working key, is left in the meta table.
func TestLegacyIdentitiesUpgrade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data, err := os.ReadFile("testdata/identities_619ee01.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "legacy.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db := openSQLiteFile(t, path)
	cfg := testCrypto()
	cfg.Memory = 64
	s, err := vaultstore.NewStore(vaultstore.NewStoreOptions{VaultTableName: "vault", VaultMetaTableName: "vault_meta", DB: db,
		AutomigrateEnabled: true, CryptoConfig: cfg, PasswordIdentityEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	legacy := func() int64 {
		return countRows(t, db, "SELECT COUNT(*) FROM vault_meta WHERE meta_value LIKE '$argon2id$%'")
	}
	if n := legacy(); n != 2 {
		t.Fatalf("fixture holds %d legacy identities, want 2", n)
	}
	for _, tok := range []string{"tk_legacy_identity_00", "tk_legacy_identity_02"} {
		if v, err := s.TokenRead(ctx, tok, "alpha-password-0001"); err != nil || v != "value-"+tok[len(tok)-2:] {
			t.Fatalf("%s = %q, %v", tok, v, err)
		}
	}
	const next = "charlie-password-0003"
	for _, old := range []string{"alpha-password-0001", "bravo-password-0002"} {
		if n, err := s.TokensChangePassword(ctx, old, next); err != nil || n != 3 {
			t.Fatalf("rotation from %s = %d, %v, want all 3 of its records", old, n, err)
		}
	}
	if n := legacy(); n != 0 {
		t.Fatalf("%d legacy identities left after both passwords rotated", n)
	}
	if n := countRows(t, db, "SELECT COUNT(*) FROM vault_meta WHERE object_type = 'password_identity'"); n != 3 {
		t.Fatalf("%d identities, want the 2 upgraded in place and 1 new", n)
	}
	got, err := s.TokensRead(ctx, []string{"tk_legacy_identity_00", "tk_legacy_identity_01", "tk_legacy_identity_02", "tk_legacy_identity_03"}, next)
	if err != nil || len(got) != 4 {
		t.Fatalf("after rotation: %v, %v", got, err)
	}
	if err := s.TokenSoftDelete(ctx, "tk_legacy_identity_00"); err != nil {
		t.Fatal(err)
	}
	// Rotating again from the new password visits all six records,
	// through the links the upgraded identities kept.
	if n, err := s.TokensChangePassword(ctx, next, "delta-password-0004"); err != nil || n != 6 {
		t.Fatalf("second rotation = %d, %v, want 6", n, err)
	}
}
