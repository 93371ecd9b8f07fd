package vaultstore_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaultstore/vaultstore"
)

// originalVector returns the stored value and password of a vector the
// original VaultStore wrote (testdata/vectors.json).
func originalVector(t testing.TB, format, label string) (stored, password, plaintext string) {
	t.Helper()
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []struct {
			Format, Label, Password, Plaintext string
			StoredValue                        string `json:"stored_value"`
		}
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	for _, v := range file.Vectors {
		if v.Format == format && v.Label == label {
			return v.StoredValue, v.Password, v.Plaintext
		}
	}
	t.Fatalf("no vector %s/%s", format, label)
	return "", "", ""
}

// values snapshots every stored value by token.
func values(t testing.TB, s *vaultstore.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	for tok, row := range storedRows(t, s) {
		out[tok] = row[vaultstore.COLUMN_VAULT_VALUE]
	}
	return out
}

// recordsOnNew counts the records of seedEncrypted(n, pwOld) that open with
// pwNew; every other one must open with pwOld and hold its value.
func recordsOnNew(t testing.TB, s *vaultstore.Store, n int) int {
	t.Helper()
	onNew := 0
	for i := range n {
		tok := tokenN(i)
		if _, err := s.TokenRead(context.Background(), tok, pwNew); err == nil {
			onNew++
		} else if v, err := s.TokenRead(context.Background(), tok, pwOld); err != nil || v != fmt.Sprint("value ", i) {
			t.Fatalf("%s opens with neither password: %q, %v", tok, v, err)
		}
	}
	return onNew
}

// TestRotationMixedFormats: v1 and v2 values written by the original, v3
// values, soft-deleted and expired rows, rows under another password and
// corrupt rows. A dry run reports what a real run then does; corrupt rows
// are skipped and left byte-identical.
func TestRotationMixedFormats(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		// The original's v2 vectors were written with LightweightCryptoConfig.
		s := newStore(t, b.open(t), func(o *vaultstore.NewStoreOptions) { o.CryptoConfig = vaultstore.LightweightCryptoConfig() })
		v1, old, v1Plain := originalVector(t, "v1", "ascii")
		v2, old2, v2Plain := originalVector(t, "v2", "custom-token")
		other, _, _ := originalVector(t, "v2", "second-password")
		if old != old2 {
			t.Fatal("vectors disagree on the password")
		}
		const newPassword = "the brand new rotation password"
		mustCreateRecord(t, s, "tk_mixed_v1", v1)
		mustCreateRecord(t, s, "tk_mixed_v2", v2)
		mustCreateRecord(t, s, "tk_mixed_other_v2", other)
		mustCustom(t, s, "tk_mixed_v3", "v3 live", old)
		mustCustom(t, s, "tk_mixed_v3_soft", "v3 soft", old)
		if err := s.TokenSoftDelete(ctx, "tk_mixed_v3_soft"); err != nil {
			t.Fatal(err)
		}
		mustCustom(t, s, "tk_mixed_v3_expired", "v3 expired", old, expiring(-1))
		mustCustom(t, s, "tk_mixed_v3_other", "v3 other", "some other long password")
		for tok, corrupt := range map[string]string{"tk_mixed_bad_v2": "v2:!!!!", "tk_mixed_bad_v3": "v3:AAAA", "tk_mixed_bad_v9": "v9:whatever"} {
			mustCreateRecord(t, s, tok, corrupt)
		}
		before := values(t, s)

		var progress []vaultstore.ChangePasswordProgress
		record := func(p vaultstore.ChangePasswordProgress) { progress = append(progress, p) }
		n, err := changedOf(s.TokensChangePasswordWithOptions(ctx, old, newPassword, vaultstore.ChangePasswordOptions{DryRun: true, Progress: record}))
		if err != nil || n != 5 {
			t.Fatalf("dry run = %d, %v, want 5", n, err)
		}
		if after := values(t, s); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatal("the dry run changed stored values")
		}
		want := vaultstore.ChangePasswordProgress{Scanned: 10, Changed: 5, FromV1: 1, FromV2: 1, FromV3: 3, Skipped: 3, Total: 10}
		if last := progress[len(progress)-1]; last != want {
			t.Errorf("dry run progress = %+v, want %+v", last, want)
		}

		progress = nil
		n, err = changedOf(s.TokensChangePasswordWithOptions(ctx, old, newPassword, vaultstore.ChangePasswordOptions{Progress: record}))
		if err != nil || n != 5 {
			t.Fatalf("rotation = %d, %v, want 5 as the dry run said", n, err)
		}
		if last := progress[len(progress)-1]; last != want {
			t.Errorf("progress = %+v, want %+v", last, want)
		}
		after := values(t, s)
		for _, tok := range []string{"tk_mixed_other_v2", "tk_mixed_v3_other", "tk_mixed_bad_v2", "tk_mixed_bad_v3", "tk_mixed_bad_v9"} {
			if after[tok] != before[tok] {
				t.Errorf("%s changed", tok)
			}
		}
		for _, tok := range []string{"tk_mixed_v1", "tk_mixed_v2", "tk_mixed_v3", "tk_mixed_v3_soft", "tk_mixed_v3_expired"} {
			if !strings.HasPrefix(after[tok], "v3:") {
				t.Errorf("%s was not rewritten as v3: %.10q", tok, after[tok])
			}
		}
		// Bring back the soft-deleted and expired rows to read them.
		if err := s.RecordUpdate(ctx, rowOf(t, s, "tk_mixed_v3_soft").SetSoftDeletedAt(vaultstore.MAX_DATETIME)); err != nil {
			t.Fatal(err)
		}
		if err := s.TokenRenew(ctx, "tk_mixed_v3_expired", time.Time{}); err != nil {
			t.Fatal(err)
		}
		got, err := s.TokensRead(ctx, []string{"tk_mixed_v1", "tk_mixed_v2", "tk_mixed_v3", "tk_mixed_v3_soft", "tk_mixed_v3_expired"}, newPassword)
		if err != nil {
			t.Fatal(err)
		}
		for tok, v := range map[string]string{"tk_mixed_v1": v1Plain, "tk_mixed_v2": v2Plain, "tk_mixed_v3": "v3 live", "tk_mixed_v3_soft": "v3 soft", "tk_mixed_v3_expired": "v3 expired"} {
			if got[tok] != v {
				t.Errorf("%s = %q under the new password, want %q", tok, got[tok], v)
			}
		}
		if n, err := s.TokensChangePassword(ctx, old, newPassword); err != nil || n != 0 {
			t.Errorf("second rotation = %d, %v, want 0", n, err)
		}
	})
}

func TestRotationOptionsAndPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStore(t)
	for name, call := range map[string]func() error{
		"negative batch": func() error {
			_, err := changedOf(s.TokensChangePasswordWithOptions(ctx, "a", testPassword, vaultstore.ChangePasswordOptions{BatchSize: -1}))
			return err
		},
		"huge batch": func() error {
			_, err := changedOf(s.TokensChangePasswordWithOptions(ctx, "a", testPassword, vaultstore.ChangePasswordOptions{BatchSize: 1 << 20}))
			return err
		},
	} {
		if err := call(); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("%s: %v, want ErrValidationFailed", name, err)
		}
	}
	if _, err := s.TokensChangePassword(ctx, testPassword, "short"); !errors.Is(err, vaultstore.ErrPasswordInvalid) {
		t.Errorf("new password under the policy: %v, want ErrPasswordInvalid", err)
	}
}

// TestRotationSamePasswordUpgrades: old == new rewrites v2 values as v3
// with the current parameters.
func TestRotationSamePasswordUpgrades(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		legacy := newStore(t, db, writeV2)
		for i := range 7 {
			mustCustom(t, legacy, fmt.Sprintf("tk_upgrade%04d", i), fmt.Sprint("value ", i), testPassword)
		}
		current := reopen(t, legacy, vaultstore.NewStoreOptions{DB: db})
		n, err := current.TokensChangePassword(ctx, testPassword, testPassword)
		if err != nil || n != 7 {
			t.Fatalf("same-password rotation = %d, %v, want 7", n, err)
		}
		for tok, v := range values(t, current) {
			if !strings.HasPrefix(v, "v3:") {
				t.Errorf("%s still %.3s", tok, v)
			}
		}
		got, err := current.TokensRead(ctx, []string{"tk_upgrade0000", "tk_upgrade0006"}, testPassword)
		if err != nil || got["tk_upgrade0006"] != "value 6" {
			t.Errorf("after upgrade: %v, %v", got, err)
		}
		// Current values are left alone: a second run changes nothing.
		before := values(t, current)
		if n, err := current.TokensChangePassword(ctx, testPassword, testPassword); err != nil || n != 0 {
			t.Errorf("second same-password rotation = %d, %v, want 0", n, err)
		}
		if fmt.Sprint(values(t, current)) != fmt.Sprint(before) {
			t.Error("the second same-password rotation rewrote values")
		}
		// A new CryptoConfig makes them out of date again.
		stronger := testCrypto()
		stronger.Iterations = 2
		upgraded := reopen(t, legacy, vaultstore.NewStoreOptions{DB: db, CryptoConfig: stronger, MinArgon2Iterations: 1})
		if n, err := upgraded.TokensChangePassword(ctx, testPassword, testPassword); err != nil || n != 7 {
			t.Errorf("same-password rotation to new parameters = %d, %v, want 7", n, err)
		}
	})
}

// TestRotationCancelAndResume: a cancelled rotation returns exactly what it
// committed, every record opens with one of the two passwords, and a
// re-run finishes the rest.
func TestRotationCancelAndResume(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := newStore(t, b.open(t))
		const total = 95
		seedEncrypted(t, s, total, pwOld)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		calls := 0
		first, err := changedOf(s.TokensChangePasswordWithOptions(ctx, pwOld, pwNew, vaultstore.ChangePasswordOptions{BatchSize: 10, Progress: func(p vaultstore.ChangePasswordProgress) {
			calls++
			if calls == 3 {
				cancel()
			}
		}}))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled rotation = %d, %v, want context.Canceled", first, err)
		}
		if first != 30 {
			t.Errorf("cancelled after three batches of 10, count = %d", first)
		}
		if onNew := recordsOnNew(t, s, total); onNew != first {
			t.Errorf("%d records on the new password, rotation reported %d", onNew, first)
		}
		rest, err := s.TokensChangePassword(context.Background(), pwOld, pwNew)
		if err != nil || first+rest != total {
			t.Errorf("re-run = %d, %v; %d + %d != %d", rest, err, first, rest, total)
		}
	})
}

func TestRotationProgressPerBatch(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	for i := range 35 {
		mustCustom(t, s, fmt.Sprintf("tk_progress%04d", i), "v", pwOld)
	}
	var seen []vaultstore.ChangePasswordProgress
	n, err := changedOf(s.TokensChangePasswordWithOptions(context.Background(), pwOld, pwNew, vaultstore.ChangePasswordOptions{BatchSize: 10, Progress: func(p vaultstore.ChangePasswordProgress) { seen = append(seen, p) }}))
	if err != nil || n != 35 {
		t.Fatalf("rotation = %d, %v", n, err)
	}
	if len(seen) < 4 {
		t.Fatalf("%d progress calls for 4 batches", len(seen))
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].Scanned < seen[i-1].Scanned || seen[i].Changed < seen[i-1].Changed {
			t.Fatalf("progress went backwards: %+v then %+v", seen[i-1], seen[i])
		}
	}
	if last := seen[len(seen)-1]; last != (vaultstore.ChangePasswordProgress{Scanned: 35, Changed: 35, FromV3: 35, Total: 35}) {
		t.Errorf("last progress = %+v", last)
	}
}

// TestRotationConcurrentTokenUpdate: updates that land during a rotation
// are never overwritten with the rotated old value.
func TestRotationConcurrentTokenUpdate(t *testing.T) {
	t.Parallel()
	db := openFileSQLite(t)
	s := newStore(t, db)
	const total = 400
	for i := range total {
		mustCustom(t, s, fmt.Sprintf("tk_race%05d", i), "before", pwOld)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < total; i += 4 {
			if err := s.TokenUpdate(ctx, fmt.Sprintf("tk_race%05d", i), "updated", pwNew); err != nil {
				t.Errorf("TokenUpdate: %v", err)
			}
		}
	})
	n, err := changedOf(s.TokensChangePasswordWithOptions(ctx, pwOld, pwNew, vaultstore.ChangePasswordOptions{BatchSize: 16}))
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for i := range total {
		tok := fmt.Sprintf("tk_race%05d", i)
		v, err := s.TokenRead(ctx, tok, pwNew)
		if err != nil {
			t.Fatalf("%s does not open with the new password: %v", tok, err)
		}
		got[tok] = v
	}
	updated := 0
	for i := range total {
		want := "before"
		if i%4 == 0 {
			want = "updated"
			updated++
		}
		if got[fmt.Sprintf("tk_race%05d", i)] != want {
			t.Errorf("tk_race%05d = %q, want %q", i, got[fmt.Sprintf("tk_race%05d", i)], want)
		}
	}
	if n < total-updated || n > total {
		t.Errorf("rotation count %d outside %d..%d", n, total-updated, total)
	}
}

// TestRotationPasswordIdentities: with identities on, rotation visits only
// the records linked to the old password, and an unknown old password
// fails at once. With them off, no identity or link is written.
func TestRotationPasswordIdentities(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t), func(o *vaultstore.NewStoreOptions) { o.PasswordIdentityEnabled = true })
		for i := range 3 {
			mustCustom(t, s, fmt.Sprintf("tk_ident_a%02d", i), "a", "password A is long enough")
		}
		for i := range 2 {
			mustCustom(t, s, fmt.Sprintf("tk_ident_b%02d", i), "b", "password B is long enough")
		}
		if err := s.TokenUpdate(ctx, "tk_ident_b01", "b moved to A", "password A is long enough"); err != nil {
			t.Fatal(err)
		}
		before := values(t, s)
		if _, err := s.TokensChangePassword(ctx, "password Z is not used", "password C is long enough"); !errors.Is(err, vaultstore.ErrInvalidPassword) {
			t.Fatalf("unknown old password: %v, want ErrInvalidPassword", err)
		}
		var seen vaultstore.ChangePasswordProgress
		n, err := changedOf(s.TokensChangePasswordWithOptions(ctx, "password A is long enough", "password C is long enough", vaultstore.ChangePasswordOptions{Progress: func(p vaultstore.ChangePasswordProgress) { seen = p }}))
		if err != nil || n != 4 {
			t.Fatalf("identity rotation = %d, %v, want 4", n, err)
		}
		if seen.Total != 4 || seen.Scanned != 4 {
			t.Errorf("progress %+v: the identity rotation should visit only the 4 linked records", seen)
		}
		if values(t, s)["tk_ident_b00"] != before["tk_ident_b00"] {
			t.Error("a record under another password changed")
		}
		got, err := s.TokensRead(ctx, []string{"tk_ident_a00", "tk_ident_a02", "tk_ident_b01"}, "password C is long enough")
		if err != nil || got["tk_ident_b01"] != "b moved to A" {
			t.Errorf("after rotation: %v, %v", got, err)
		}
		// The retired password's identity stays but links nothing: rotating
		// from it again changes nothing; the new one has the records.
		if n, err := s.TokensChangePassword(ctx, "password A is long enough", "password D is long enough"); err != nil || n != 0 {
			t.Errorf("rotating from the retired password = %d, %v; want 0, nil", n, err)
		}
		if n, err := s.TokensChangePassword(ctx, "password C is long enough", "password D is long enough"); err != nil || n != 4 {
			t.Errorf("rotating on = %d, %v, want 4", n, err)
		}

		plainDB := b.open(t)
		plain := newStore(t, plainDB)
		mustCustom(t, plain, "tk_noident00001", "v", testPassword)
		if err := plain.TokenUpdate(ctx, "tk_noident00001", "w", testPassword); err != nil {
			t.Fatal(err)
		}
		if _, err := plain.TokensChangePassword(ctx, testPassword, "another long password"); err != nil {
			t.Fatal(err)
		}
		n64 := countRows(t, plainDB, "SELECT COUNT(*) FROM "+plain.GetMetaTableName()+" WHERE object_type IN ('"+vaultstore.OBJECT_TYPE_PASSWORD_IDENTITY+"', '"+vaultstore.OBJECT_TYPE_RECORD+"')")
		if n64 != 0 {
			t.Errorf("a store without identities wrote %d identity or link rows", n64)
		}
	})
}

// TestRotationSurvivesSIGKILL runs a rotation in a child process, kills it
// with SIGKILL in the middle, and checks that every record opens with one
// of the two passwords and that a re-run completes with an exact total.
func TestRotationSurvivesSIGKILL(t *testing.T) {
	if os.Getenv("VAULTSTORE_ROTATION_CHILD") != "" {
		rotationChild()
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	t.Parallel()
	dir := t.TempDir()
	path := dir + "/vault.db"
	db := openSQLiteFile(t, path)
	s := newStore(t, db, func(o *vaultstore.NewStoreOptions) { o.VaultTableName, o.VaultMetaTableName = "vault", "vault_meta" })
	const total = 3000
	seedEncrypted(t, s, total, pwOld)

	cmd := exec.Command(os.Args[0], "-test.run=^TestRotationSurvivesSIGKILL$", "-test.count=1")
	cmd.Env = append(os.Environ(), "VAULTSTORE_ROTATION_CHILD="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	reported := 0
	for lines.Scan() {
		if c, ok := strings.CutPrefix(lines.Text(), "changed "); ok {
			reported, _ = strconv.Atoi(c)
			if reported >= total/3 {
				break
			}
		}
	}
	_ = cmd.Process.Kill() // SIGKILL on Unix
	_ = cmd.Wait()
	if reported == 0 {
		t.Fatal("the child reported no progress before it was killed")
	}

	onNew := recordsOnNew(t, s, total) // after SIGKILL
	if onNew < reported || onNew == total {
		t.Errorf("%d records on the new password; the child had reported %d committed and was killed before the end", onNew, reported)
	}
	rest, err := s.TokensChangePassword(context.Background(), pwOld, pwNew)
	if err != nil || onNew+rest != total {
		t.Fatalf("re-run = %d, %v; %d + %d != %d", rest, err, onNew, rest, total)
	}
	t.Logf("killed after %d reported (%d committed), re-run changed %d", reported, onNew, rest)
}

// rotationChild is the child side of TestRotationSurvivesSIGKILL: it rotates
// slowly enough, in small batches, to be killed in the middle.
func rotationChild() {
	db := openSQLiteFileRaw(os.Getenv("VAULTSTORE_ROTATION_CHILD"))
	s, err := vaultstore.NewStore(vaultstore.NewStoreOptions{VaultTableName: "vault", VaultMetaTableName: "vault_meta", DB: db, CryptoConfig: testCrypto()})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	_, err = s.TokensChangePasswordWithOptions(context.Background(), pwOld, pwNew, vaultstore.ChangePasswordOptions{BatchSize: 50, Progress: func(p vaultstore.ChangePasswordProgress) {
		fmt.Printf("changed %d\n", p.Changed)
		time.Sleep(2 * time.Millisecond)
	}})
	fmt.Println("done", err)
	os.Exit(0)
}

// TestPasswordIdentityLinksFollowDeletes: deleting a record, one by one or
// as expired, removes its link, so a rotation's Total counts only records
// that exist.
func TestPasswordIdentityLinksFollowDeletes(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db, func(o *vaultstore.NewStoreOptions) { o.PasswordIdentityEnabled = true })
		for i := range 5 {
			mustCustom(t, s, fmt.Sprintf("tk_linkdel%04d", i), "v", pwOld)
		}
		links := func() int64 {
			return countRows(t, db, "SELECT COUNT(*) FROM "+s.GetMetaTableName()+" WHERE object_type = '"+vaultstore.OBJECT_TYPE_RECORD+"'")
		}
		if n := links(); n != 5 {
			t.Fatalf("%d links for 5 records", n)
		}
		if err := s.TokenDelete(ctx, "tk_linkdel0000"); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordDeleteByToken(ctx, "tk_linkdel0001"); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordDeleteByID(ctx, rowOf(t, s, "tk_linkdel0004").GetID()); err != nil {
			t.Fatal(err)
		}
		if n := links(); n != 2 {
			t.Errorf("%d links after deleting 3 of 5 records, want 2", n)
		}

		// TokensExpiredDelete removes the links of the records it deleted,
		// in more than one round of pruning, and only theirs; a soft-deleted
		// live record keeps its link.
		const expired = 1100
		for i := range expired {
			mustCustom(t, s, fmt.Sprintf("tk_linkexp%04d", i), "v", pwOld, expiring(-1))
		}
		if err := s.TokenSoftDelete(ctx, "tk_linkdel0002"); err != nil {
			t.Fatal(err)
		}
		if n := links(); n != 2+expired {
			t.Fatalf("%d links, want %d", n, 2+expired)
		}
		if n, err := s.TokensExpiredDelete(ctx); err != nil || n != expired {
			t.Fatalf("TokensExpiredDelete = %d, %v; want %d", n, err, expired)
		}
		if n := links(); n != 2 {
			t.Errorf("%d links after deleting the expired records, want 2", n)
		}

		var total int
		n, err := changedOf(s.TokensChangePasswordWithOptions(ctx, pwOld, pwNew, vaultstore.ChangePasswordOptions{Progress: func(p vaultstore.ChangePasswordProgress) { total = p.Total }}))
		if err != nil || n != 2 || total != 2 {
			t.Errorf("rotation = %d (total %d), %v; want 2 of 2", n, total, err)
		}
	})
}

// TestPasswordIdentityRetiredButStillUsed: a store that cached an identity
// before another store rotated away from its password may still link new
// records to it; the next rotation must find them.
func TestPasswordIdentityRetiredButStillUsed(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		identities := func(o *vaultstore.NewStoreOptions) { o.PasswordIdentityEnabled = true }
		a := newStore(t, db, identities)
		mustCustom(t, a, "tk_retired00001", "first", pwOld)
		other := reopen(t, a, vaultstore.NewStoreOptions{DB: db}, identities)
		if n, err := other.TokensChangePassword(ctx, pwOld, pwNew); err != nil || n != 1 {
			t.Fatalf("first rotation = %d, %v", n, err)
		}
		// a still believes in pwOld's identity and writes under it.
		mustCustom(t, a, "tk_retired00002", "second", pwOld)
		if n, err := other.TokensChangePassword(ctx, pwOld, pwNew); err != nil || n != 1 {
			t.Fatalf("second rotation = %d, %v; want the record written under the retired identity", n, err)
		}
		if v, err := a.TokenRead(ctx, "tk_retired00002", pwNew); err != nil || v != "second" {
			t.Errorf("after the second rotation: %q, %v", v, err)
		}
	})
}
