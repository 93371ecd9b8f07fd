package vaultstore_test

// Tests of the write-safety rules: what a method promises when another
// client changes the row between the method's read and its write, and where
// expiry starts. The other client is not a racing goroutine but a test hook
// (hooks.go) that runs at exactly that moment, so each test takes the same
// path on every run and every database; the comment of each test names the
// rule without which it fails. scripts/mutate.sh removes those rules one at
// a time and checks that these tests notice.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaultstore/vaultstore"
)

// hookRecorder records the hook points a store reaches and runs the
// test's actions there.
type hookRecorder struct {
	mu      sync.Mutex
	reached map[vaultstore.HookPoint][]int // attempts, in order
	act     func(p vaultstore.HookPoint, attempt, seen int) error
}

// record installs a hook on s that calls act with the point, its attempt
// and how often the point was reached before (0 the first time).
func record(s *vaultstore.Store, act func(p vaultstore.HookPoint, attempt, seen int) error) *hookRecorder {
	h := &hookRecorder{reached: map[vaultstore.HookPoint][]int{}, act: act}
	vaultstore.SetTestHook(s, func(p vaultstore.HookPoint, attempt int) error {
		h.mu.Lock()
		seen := len(h.reached[p])
		h.reached[p] = append(h.reached[p], attempt)
		h.mu.Unlock()
		return h.act(p, attempt, seen)
	})
	return h
}

// attempts returns the attempts at which p was reached.
func (h *hookRecorder) attempts(p vaultstore.HookPoint) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.reached[p])
}

// once installs a hook on s that runs other the first time s reaches p, as
// another client acting at exactly that moment. A failure of other fails
// the test and is not passed to the store.
func once(t *testing.T, s *vaultstore.Store, p vaultstore.HookPoint, other func() error) *hookRecorder {
	return record(s, func(q vaultstore.HookPoint, _, seen int) error {
		if q == p && seen == 0 {
			if err := other(); err != nil {
				t.Errorf("the other client's call failed: %v", err)
			}
		}
		return nil
	})
}

// raw returns the stored row of token as a map, soft-deleted or not, or
// nil when there is none.
func raw(t testing.TB, s *vaultstore.Store, token string) map[string]string {
	t.Helper()
	list, err := s.RecordList(context.Background(), vaultstore.RecordQuery().SetToken(token).SetSoftDeletedInclude(true))
	if err != nil {
		t.Fatalf("RecordList(%q): %v", token, err)
	}
	if len(list) == 0 {
		return nil
	}
	return list[0].Data()
}

// ---------------------------------------------------------------------------
// TokenUpdate and TokenUpsert

// TestTokenUpdateInterleavings changes the row between TokenUpdate's (or
// TokenUpsert's) read of the live, unexpired row and its UPDATE.
//
//   - soft delete, expire: the call fails with ErrRecordNotFound or
//     ErrTokenExpired and the stored value is the one from before. Fails
//     without the rule that the UPDATE repeats "not soft-deleted and not
//     expired" in its WHERE clause (updateLiveValue).
//   - delete: ErrRecordNotFound, and no row comes back.
//   - renewed after a lost write: the first UPDATE finds the row expired and
//     matches nothing, then another client renews it; the call writes again
//     and succeeds, and the value is stored. Fails without the rule that
//     success is reported only after an UPDATE matched the row (the retry
//     loop of TokenUpdate): returning nil after the re-read loses the write.
//   - keeps changing: the row expires before every write and is renewed
//     after every lost one; the call gives up after concurrentWriteAttempts
//     (4) writes with an error and the old value.
func TestTokenUpdateInterleavings(t *testing.T) {
	t.Parallel()
	const tok = "tk_interleave0001"
	past := func() time.Time { return time.Now().Add(-time.Hour) }
	calls := []struct {
		name string
		call func(s *vaultstore.Store) error
	}{
		{"TokenUpdate", func(s *vaultstore.Store) error {
			return s.TokenUpdate(context.Background(), tok, "new", pwNew)
		}},
		{"TokenUpsert", func(s *vaultstore.Store) error {
			got, err := s.TokenUpsert(context.Background(), tok, "new", pwNew)
			if err == nil && got != tok {
				return fmt.Errorf("TokenUpsert returned token %q, want %q", got, tok)
			}
			if err != nil && got != "" {
				return fmt.Errorf("TokenUpsert failed (%w) but returned token %q", err, got)
			}
			return err
		}},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, c := range calls {
			t.Run(c.name, func(t *testing.T) {
				ctx := context.Background()
				setup := func(t *testing.T) (*vaultstore.Store, map[string]string) {
					s := newStore(t, b.open(t))
					mustCustom(t, s, tok, "old", pwOld, expiring(24))
					return s, raw(t, s, tok)
				}
				unchanged := func(t *testing.T, s *vaultstore.Store, before map[string]string) {
					t.Helper()
					after := raw(t, s, tok)
					if after == nil || after[vaultstore.COLUMN_VAULT_VALUE] != before[vaultstore.COLUMN_VAULT_VALUE] {
						t.Errorf("the stored value changed although the call failed")
					}
					if n, _ := s.RecordCount(ctx, vaultstore.RecordQuery().SetSoftDeletedInclude(true)); n != 1 {
						t.Errorf("%d rows, want 1: the call must not create a token", n)
					}
				}

				t.Run("soft delete", func(t *testing.T) {
					s, before := setup(t)
					h := once(t, s, vaultstore.HookUpdateWrite, func() error { return s.TokenSoftDelete(ctx, tok) })
					if err := c.call(s); !errors.Is(err, vaultstore.ErrRecordNotFound) {
						t.Fatalf("%s of a token soft-deleted before its write = %v, want ErrRecordNotFound", c.name, err)
					}
					if got := h.attempts(vaultstore.HookUpdateWrite); !slices.Equal(got, []int{0}) {
						t.Errorf("writes at attempts %v, want [0]", got)
					}
					unchanged(t, s, before)
					if raw(t, s, tok)[vaultstore.COLUMN_SOFT_DELETED_AT] == vaultstore.MAX_DATETIME {
						t.Errorf("the token is live again")
					}
				})
				t.Run("expire", func(t *testing.T) {
					s, before := setup(t)
					once(t, s, vaultstore.HookUpdateWrite, func() error { return s.TokenRenew(ctx, tok, past()) })
					if err := c.call(s); !errors.Is(err, vaultstore.ErrTokenExpired) {
						t.Fatalf("%s of a token that expired before its write = %v, want ErrTokenExpired", c.name, err)
					}
					unchanged(t, s, before)
				})
				t.Run("delete", func(t *testing.T) {
					s, _ := setup(t)
					once(t, s, vaultstore.HookUpdateWrite, func() error { return s.TokenDelete(ctx, tok) })
					if err := c.call(s); !errors.Is(err, vaultstore.ErrRecordNotFound) {
						t.Fatalf("%s of a token deleted before its write = %v, want ErrRecordNotFound", c.name, err)
					}
					if n, _ := s.RecordCount(ctx, vaultstore.RecordQuery().SetSoftDeletedInclude(true)); n != 0 {
						t.Errorf("%d rows after the token was deleted, want 0", n)
					}
				})
				t.Run("renewed after a lost write", func(t *testing.T) {
					s, _ := setup(t)
					h := record(s, func(p vaultstore.HookPoint, attempt, _ int) error {
						var err error
						switch {
						case p == vaultstore.HookUpdateWrite && attempt == 0:
							err = s.TokenRenew(ctx, tok, past())
						case p == vaultstore.HookUpdateLost && attempt == 0:
							err = s.TokenRenew(ctx, tok, timeIn(24))
						}
						if err != nil {
							t.Errorf("the other client's TokenRenew: %v", err)
						}
						return nil
					})
					if err := c.call(s); err != nil {
						t.Fatalf("%s of a token renewed before the retry = %v, want nil", c.name, err)
					}
					if v, err := s.TokenRead(ctx, tok, pwNew); err != nil || v != "new" {
						t.Errorf("%s returned nil but the token reads %q, %v; want \"new\" (the write was lost)", c.name, v, err)
					}
					if got := h.attempts(vaultstore.HookUpdateWrite); !slices.Equal(got, []int{0, 1}) {
						t.Errorf("writes at attempts %v, want [0 1]", got)
					}
				})
				t.Run("keeps changing", func(t *testing.T) {
					s, before := setup(t)
					h := record(s, func(p vaultstore.HookPoint, _, _ int) error {
						var err error
						switch p {
						case vaultstore.HookUpdateWrite:
							err = s.TokenRenew(ctx, tok, past())
						case vaultstore.HookUpdateLost:
							err = s.TokenRenew(ctx, tok, timeIn(24))
						}
						if err != nil {
							t.Errorf("the other client's TokenRenew: %v", err)
						}
						return nil
					})
					err := c.call(s)
					if err == nil || errors.Is(err, vaultstore.ErrTokenExpired) || errors.Is(err, vaultstore.ErrRecordNotFound) {
						t.Fatalf("%s of a token that changes before every write = %v, want the error that it kept changing", c.name, err)
					}
					if got := h.attempts(vaultstore.HookUpdateWrite); !slices.Equal(got, []int{0, 1, 2, 3}) {
						t.Errorf("writes at attempts %v, want [0 1 2 3]", got)
					}
					unchanged(t, s, before)
				})
			})
		}
	})
}

// ---------------------------------------------------------------------------
// TokenRenew and TokenCreateCustom

// TestTokenRenewInterleavings changes the row between TokenRenew's read of
// the live row and its UPDATE.
//
//   - soft delete: ErrRecordNotFound, and the soft-deleted row keeps its
//     expiry. Fails without the rule that the UPDATE repeats "not
//     soft-deleted" in its WHERE clause (TokenRenew).
//   - delete: ErrRecordNotFound, and no row comes back.
//   - update: the renewal succeeds and the new value is kept. Fails if the
//     renewal wrote more than the expiry and updated_at.
func TestTokenRenewInterleavings(t *testing.T) {
	t.Parallel()
	const tok = "tk_interleave0002"
	renewTo := time.Date(2040, 1, 2, 3, 4, 5, 0, time.UTC)
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		setup := func(t *testing.T) (*vaultstore.Store, map[string]string) {
			s := newStore(t, b.open(t))
			mustCustom(t, s, tok, "old", pwOld, expiring(24))
			return s, raw(t, s, tok)
		}
		t.Run("soft delete", func(t *testing.T) {
			s, before := setup(t)
			once(t, s, vaultstore.HookRenewWrite, func() error { return s.TokenSoftDelete(ctx, tok) })
			if err := s.TokenRenew(ctx, tok, renewTo); !errors.Is(err, vaultstore.ErrRecordNotFound) {
				t.Fatalf("TokenRenew of a token soft-deleted before its write = %v, want ErrRecordNotFound", err)
			}
			after := raw(t, s, tok)
			if after[vaultstore.COLUMN_EXPIRES_AT] != before[vaultstore.COLUMN_EXPIRES_AT] {
				t.Errorf("the soft-deleted token's expiry changed from %s to %s", before[vaultstore.COLUMN_EXPIRES_AT], after[vaultstore.COLUMN_EXPIRES_AT])
			}
		})
		t.Run("delete", func(t *testing.T) {
			s, _ := setup(t)
			once(t, s, vaultstore.HookRenewWrite, func() error { return s.TokenDelete(ctx, tok) })
			if err := s.TokenRenew(ctx, tok, renewTo); !errors.Is(err, vaultstore.ErrRecordNotFound) {
				t.Fatalf("TokenRenew of a token deleted before its write = %v, want ErrRecordNotFound", err)
			}
			if raw(t, s, tok) != nil {
				t.Errorf("the deleted token has a row again")
			}
		})
		t.Run("update", func(t *testing.T) {
			s, _ := setup(t)
			once(t, s, vaultstore.HookRenewWrite, func() error { return s.TokenUpdate(ctx, tok, "new", pwNew) })
			if err := s.TokenRenew(ctx, tok, renewTo); err != nil {
				t.Fatalf("TokenRenew of a token updated before its write = %v", err)
			}
			if v, err := s.TokenRead(ctx, tok, pwNew); err != nil || v != "new" {
				t.Errorf("after the renewal the token reads %q, %v; want the concurrent update \"new\"", v, err)
			}
			if got := raw(t, s, tok)[vaultstore.COLUMN_EXPIRES_AT]; got != "2040-01-02 03:04:05" {
				t.Errorf("expires_at = %s, want 2040-01-02 03:04:05", got)
			}
		})
	})
}

// TestTokenCreateCustomInterleaving: another client stores the same token
// between TokenCreateCustom's check that it is free and its INSERT. The call
// fails with ErrTokenAlreadyExists and the other client's value is kept.
// Fails without the rule that the unique index, not the check, decides
// (createToken's classification of the unique violation).
func TestTokenCreateCustomInterleaving(t *testing.T) {
	t.Parallel()
	const tok = "tk_interleave0003"
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		once(t, s, vaultstore.HookCreateCustomInsert, func() error { return s.TokenCreateCustom(ctx, tok, "theirs", pwOther) })
		if err := s.TokenCreateCustom(ctx, tok, "ours", pwOld); !errors.Is(err, vaultstore.ErrTokenAlreadyExists) {
			t.Fatalf("TokenCreateCustom of a token stored meanwhile = %v, want ErrTokenAlreadyExists", err)
		}
		if v, err := s.TokenRead(ctx, tok, pwOther); err != nil || v != "theirs" {
			t.Errorf("the token reads %q, %v; want the other client's \"theirs\"", v, err)
		}
	})
}

// ---------------------------------------------------------------------------
// Rotation

// TestRotationInterleavings changes one record of three between the
// rotation's read (and test decryption) of its batch and the batch's write.
// Every case ends with the other two records rotated and the changed one as
// the other client left it:
//
//   - update under the old password: the record is rotated with its new
//     value and counted once (3).
//   - update under the new password: the record keeps the new value and is
//     not counted (2).
//   - soft delete, renewal: the record is rotated (3) and keeps its soft
//     delete or its new expiry.
//   - delete: the record stays deleted and is not counted (2).
//
// The updates fail without the compare-and-set on the old value
// (compareAndSetValues): the rotation writes the value it read over the
// update. "update under the old password" also fails when a row whose
// compare-and-set failed is not read again and retried (rotation.batch),
// and the counts fail when such a row is counted as changed. Each case runs
// with password identities off and on (rotateByIdentity).
func TestRotationInterleavings(t *testing.T) {
	t.Parallel()
	const a, b, c = "tk_rotinter0000a", "tk_rotinter0000b", "tk_rotinter0000c"
	renewTo := time.Date(2040, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name   string
		other  func(s *vaultstore.Store) error
		count  int
		check  func(t *testing.T, s *vaultstore.Store)
		writes []int // attempts at which the batch was written
	}{
		{"update under the old password",
			func(s *vaultstore.Store) error { return s.TokenUpdate(context.Background(), b, "b2", pwOld) },
			3, func(t *testing.T, s *vaultstore.Store) { wantValue(t, s, b, "b2") }, []int{0, 1}},
		{"update under the new password",
			func(s *vaultstore.Store) error { return s.TokenUpdate(context.Background(), b, "b2", pwNew) },
			2, func(t *testing.T, s *vaultstore.Store) { wantValue(t, s, b, "b2") }, []int{0, 1}},
		{"soft delete",
			func(s *vaultstore.Store) error { return s.TokenSoftDelete(context.Background(), b) },
			3, func(t *testing.T, s *vaultstore.Store) {
				rec := rowOf(t, s, b)
				if rec.GetSoftDeletedAt() == vaultstore.MAX_DATETIME {
					t.Fatalf("the rotation undid the soft delete of %s", b)
				}
				// Undelete it to see that its value was rotated.
				rec.SetSoftDeletedAt(vaultstore.MAX_DATETIME)
				if err := s.RecordUpdate(context.Background(), rec); err != nil {
					t.Fatal(err)
				}
				wantValue(t, s, b, "b")
			}, []int{0}},
		{"renewal",
			func(s *vaultstore.Store) error { return s.TokenRenew(context.Background(), b, renewTo) },
			3, func(t *testing.T, s *vaultstore.Store) {
				if got := rowOf(t, s, b).GetExpiresAt(); got != "2040-01-02 03:04:05" {
					t.Errorf("expires_at of %s = %s after the rotation, want the renewal's 2040-01-02 03:04:05", b, got)
				}
				wantValue(t, s, b, "b")
			}, []int{0}},
		{"delete",
			func(s *vaultstore.Store) error { return s.TokenDelete(context.Background(), b) },
			2, func(t *testing.T, s *vaultstore.Store) {
				if raw(t, s, b) != nil {
					t.Errorf("the rotation brought the deleted %s back", b)
				}
			}, []int{0, 1}},
	}
	forEachBackend(t, func(t *testing.T, bk backend) {
		for _, identities := range []bool{false, true} {
			for _, tc := range cases {
				t.Run(fmt.Sprintf("%s/identities=%v", tc.name, identities), func(t *testing.T) {
					ctx := context.Background()
					s := newStore(t, bk.open(t), func(o *vaultstore.NewStoreOptions) { o.PasswordIdentityEnabled = identities })
					for _, tok := range []string{a, b, c} {
						mustCustom(t, s, tok, tok[len(tok)-1:], pwOld)
					}
					h := once(t, s, vaultstore.HookRotationWrite, func() error { return tc.other(s) })
					n, err := s.TokensChangePassword(ctx, pwOld, pwNew)
					if err != nil || n != tc.count {
						t.Fatalf("TokensChangePassword = %d, %v; want %d, nil", n, err, tc.count)
					}
					if got := h.attempts(vaultstore.HookRotationWrite); !slices.Equal(got, tc.writes) {
						t.Errorf("batch written at attempts %v, want %v", got, tc.writes)
					}
					wantValue(t, s, a, "a")
					wantValue(t, s, c, "c")
					tc.check(t, s)
					for _, tok := range []string{a, b, c} {
						if v, err := s.TokenRead(ctx, tok, pwOld); err == nil {
							t.Errorf("%s still opens with the old password (%q)", tok, v)
						}
					}
				})
			}
		}
	})
}

// wantValue fails the test unless token opens with pwNew to want.
func wantValue(t *testing.T, s *vaultstore.Store, token, want string) {
	t.Helper()
	if v, err := s.TokenRead(context.Background(), token, pwNew); err != nil || v != want {
		t.Errorf("%s with the new password = %q, %v; want %q", token, v, err, want)
	}
}

// TestRotationRetriesAbortedTransaction: the database aborts a batch's
// transaction after its first compare-and-set statement of 50 rows, as a
// deadlock or serialisation failure would. The rotation runs the
// transaction again and every record is rotated and counted exactly once
// (60, also in the progress report). Fails without the retry of
// transactions that isRetryableTxError accepts (rotation.write). An error
// that is not retryable fails the rotation with nothing committed, and a
// transaction aborted every time is given up after rekeyRetries+1 runs,
// also with nothing committed.
func TestRotationRetriesAbortedTransaction(t *testing.T) {
	t.Parallel()
	const total = 60 // two compare-and-set statements: 50 rows and 10
	if !vaultstore.IsRetryableTxError(vaultstore.RetryableTxError()) {
		t.Fatal("the injected error is not one the rotation retries")
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		setup := func(t *testing.T) *vaultstore.Store {
			s := newStore(t, b.open(t))
			seedEncrypted(t, s, total, pwOld)
			return s
		}
		t.Run("retried once", func(t *testing.T) {
			s := setup(t)
			h := record(s, func(p vaultstore.HookPoint, attempt, seen int) error {
				if p == vaultstore.HookRotationChunk && attempt == 0 {
					return vaultstore.RetryableTxError()
				}
				return nil
			})
			var last vaultstore.ChangePasswordProgress
			n, err := changedOf(s.TokensChangePasswordWithOptions(ctx, pwOld, pwNew, vaultstore.ChangePasswordOptions{Progress: func(p vaultstore.ChangePasswordProgress) { last = p }}))
			if err != nil || n != total {
				t.Fatalf("TokensChangePassword = %d, %v; want %d, nil", n, err, total)
			}
			if want := (vaultstore.ChangePasswordProgress{Scanned: total, Changed: total, FromV3: total, Total: total}); last != want {
				t.Errorf("last progress %+v, want %+v", last, want)
			}
			if got := h.attempts(vaultstore.HookRotationChunk); !slices.Equal(got, []int{0, 1, 1}) {
				t.Errorf("compare-and-set statements at transaction attempts %v, want [0 1 1]", got)
			}
			if onNew := recordsOnNew(t, s, total); onNew != total {
				t.Errorf("%d of %d records open with the new password", onNew, total)
			}
			vaultstore.SetTestHook(s, nil)
			if n, err := s.TokensChangePassword(ctx, pwOld, pwNew); err != nil || n != 0 {
				t.Errorf("second rotation = %d, %v; want 0", n, err)
			}
		})
		t.Run("not retryable", func(t *testing.T) {
			s := setup(t)
			injected := errors.New("injected failure")
			record(s, func(p vaultstore.HookPoint, _, _ int) error {
				if p == vaultstore.HookRotationChunk {
					return injected
				}
				return nil
			})
			if n, err := s.TokensChangePassword(ctx, pwOld, pwNew); !errors.Is(err, injected) || n != 0 {
				t.Fatalf("TokensChangePassword = %d, %v; want 0 and the injected error", n, err)
			}
			if onNew := recordsOnNew(t, s, total); onNew != 0 {
				t.Errorf("%d records open with the new password after the transaction failed, want 0", onNew)
			}
		})
		t.Run("always aborted", func(t *testing.T) {
			s := setup(t)
			h := record(s, func(p vaultstore.HookPoint, _, _ int) error {
				if p == vaultstore.HookRotationChunk {
					return vaultstore.RetryableTxError()
				}
				return nil
			})
			if n, err := s.TokensChangePassword(ctx, pwOld, pwNew); err == nil || n != 0 {
				t.Fatalf("TokensChangePassword = %d, %v; want 0 and an error", n, err)
			}
			if got := h.attempts(vaultstore.HookRotationChunk); !slices.Equal(got, []int{0, 1, 2, 3}) {
				t.Errorf("transaction attempts %v, want [0 1 2 3]", got)
			}
			if onNew := recordsOnNew(t, s, total); onNew != 0 {
				t.Errorf("%d records open with the new password after every transaction failed, want 0", onNew)
			}
		})
	})
}

// ---------------------------------------------------------------------------
// Expiry at the exact instant

// testClock is a settable clock for vaultstore.SetNow.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) set(at time.Time) { c.ns.Store(at.UnixNano()) }
func (c *testClock) now() time.Time   { return time.Unix(0, c.ns.Load()) }

// pinClock pins the package clock to at until the test ends. The clock is
// package-wide, so the test must not be parallel: t.Setenv panics in a
// parallel test, and the package's parallel tests start only after every
// sequential one has ended.
func pinClock(t *testing.T, at time.Time) *testClock {
	t.Setenv("VAULTSTORE_TEST_CLOCK_PINNED", "1")
	c := &testClock{}
	c.set(at)
	t.Cleanup(vaultstore.SetNow(c.now))
	return c
}

// TestExpiryBoundary pins the clock around a token's expiry and checks the
// rule of doc.go: a token is expired from the second its expires_at names
// (expires_at at or before now), and not one nanosecond earlier. At the
// last instant before it, every method treats the token as live; at the
// instant itself TokenRead and TokenUpdate refuse it with ErrTokenExpired,
// TokensRead leaves it out, TokenExists still reports it, rotation rotates
// it (as every expired record) without touching its expiry, and each sweep
// takes it and nothing later; soft-deleted at that second, it no longer
// exists. Fails if isExpired, the sweeps
// (TokensExpiredSoftDelete, TokensExpiredDelete) or TokenUpdate's UPDATE
// compare with "before now" instead of "at or before now".
func TestExpiryBoundary(t *testing.T) {
	at := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	const atText = "2031-03-04 05:06:07"
	const expiring, later = "tk_boundary_now01", "tk_boundary_next1"
	clock := pinClock(t, at.Add(-time.Hour))
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		t.Run("read, sweeps, rotation", func(t *testing.T) {
			clock.set(at.Add(-time.Hour))
			s := newStore(t, b.open(t))
			mustCustom(t, s, expiring, "expiring", pwOld, vaultstore.TokenCreateOptions{ExpiresAt: at})
			mustCustom(t, s, later, "later", pwOld, vaultstore.TokenCreateOptions{ExpiresAt: at.Add(time.Second)})

			clock.set(at.Add(-time.Nanosecond))
			if v, err := s.TokenRead(ctx, expiring, pwOld); err != nil || v != "expiring" {
				t.Errorf("TokenRead 1ns before expires_at = %q, %v; want the value", v, err)
			}
			if m, err := s.TokensRead(ctx, []string{expiring, later}, pwOld); err != nil || len(m) != 2 {
				t.Errorf("TokensRead 1ns before expires_at = %v, %v; want both tokens", m, err)
			}
			if n, err := s.TokensExpiredSoftDelete(ctx); err != nil || n != 0 {
				t.Errorf("TokensExpiredSoftDelete 1ns before expires_at = %d, %v; want 0", n, err)
			}
			if n, err := s.TokensExpiredDelete(ctx); err != nil || n != 0 {
				t.Errorf("TokensExpiredDelete 1ns before expires_at = %d, %v; want 0", n, err)
			}

			clock.set(at)
			if v, err := s.TokenRead(ctx, expiring, pwOld); !errors.Is(err, vaultstore.ErrTokenExpired) {
				t.Errorf("TokenRead at expires_at = %q, %v; want ErrTokenExpired", v, err)
			}
			if v, err := s.TokenRead(ctx, later, pwOld); err != nil || v != "later" {
				t.Errorf("TokenRead 1s before expires_at = %q, %v; want the value", v, err)
			}
			if m, err := s.TokensRead(ctx, []string{expiring, later}, pwOld); err != nil || len(m) != 1 || m[later] != "later" {
				t.Errorf("TokensRead at expires_at = %v, %v; want only %s", m, err, later)
			}
			if ok, err := s.TokenExists(ctx, expiring); err != nil || !ok {
				t.Errorf("TokenExists at expires_at = %v, %v; want true (expired tokens exist)", ok, err)
			}
			if err := s.TokenUpdate(ctx, expiring, "x", pwOld); !errors.Is(err, vaultstore.ErrTokenExpired) {
				t.Errorf("TokenUpdate at expires_at = %v; want ErrTokenExpired", err)
			}
			if n, err := s.TokensChangePassword(ctx, pwOld, pwNew); err != nil || n != 2 {
				t.Errorf("TokensChangePassword at expires_at = %d, %v; want 2 (expired records are rotated)", n, err)
			}
			if got := rowOf(t, s, expiring).GetExpiresAt(); got != atText {
				t.Errorf("after the rotation expires_at = %s, want %s", got, atText)
			}
			if n, err := s.TokensExpiredSoftDelete(ctx); err != nil || n != 1 {
				t.Errorf("TokensExpiredSoftDelete at expires_at = %d, %v; want 1", n, err)
			}
			if got := rowOf(t, s, expiring).GetSoftDeletedAt(); got != atText {
				t.Errorf("soft_deleted_at = %s, want %s", got, atText)
			}
			if ok, err := s.TokenExists(ctx, expiring); err != nil || ok {
				t.Errorf("TokenExists of a token soft-deleted at this second = %v, %v; want false", ok, err)
			}
			if ok, err := s.TokenExists(ctx, later); err != nil || !ok {
				t.Errorf("the sweep took %s, which expires 1s later: %v, %v", later, ok, err)
			}
			if n, err := s.TokensExpiredDelete(ctx); err != nil || n != 1 {
				t.Errorf("TokensExpiredDelete at expires_at = %d, %v; want 1", n, err)
			}
			if raw(t, s, expiring) != nil || raw(t, s, later) == nil {
				t.Errorf("after the delete sweep: %s present %v, %s present %v; want false, true",
					expiring, raw(t, s, expiring) != nil, later, raw(t, s, later) != nil)
			}
		})
		t.Run("TokenUpdate's write", func(t *testing.T) {
			clock.set(at.Add(-time.Hour))
			s := newStore(t, b.open(t))
			mustCustom(t, s, expiring, "expiring", pwOld, vaultstore.TokenCreateOptions{ExpiresAt: at})
			before := raw(t, s, expiring)[vaultstore.COLUMN_VAULT_VALUE]
			clock.set(at.Add(-time.Nanosecond))
			// The read sees the token live; the write comes at expires_at.
			once(t, s, vaultstore.HookUpdateWrite, func() error { clock.set(at); return nil })
			if err := s.TokenUpdate(ctx, expiring, "x", pwOld); !errors.Is(err, vaultstore.ErrTokenExpired) {
				t.Errorf("TokenUpdate whose write comes at expires_at = %v; want ErrTokenExpired", err)
			}
			if raw(t, s, expiring)[vaultstore.COLUMN_VAULT_VALUE] != before {
				t.Errorf("the value changed at expires_at")
			}
		})
	})
}

// ---------------------------------------------------------------------------
// Real transaction aborts on the servers

// rotationOrder returns the records of s in the order a rotation visits
// them (by id).
func rotationOrder(t *testing.T, s *vaultstore.Store) []vaultstore.RecordInterface {
	t.Helper()
	list, err := s.RecordList(context.Background(), vaultstore.RecordQuery().SetOrderBy(vaultstore.COLUMN_ID).SetSortOrder(vaultstore.ASC))
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestRotationRetriesRealSerializationFailure: on PostgreSQL with
// default_transaction_isolation = serializable, another client updates a
// record of the second compare-and-set statement (under the new password)
// after the batch's transaction has run its first. PostgreSQL aborts the
// transaction with a serialisation failure (40001); the rotation runs it
// again, finds that record changed and leaves it alone, and rotates and
// counts each of the other 59 exactly once. Fails without the retry of
// transactions that isRetryableTxError accepts (rotation.write), or if
// isRetryableTxError does not accept 40001.
func TestRotationRetriesRealSerializationFailure(t *testing.T) {
	t.Parallel()
	dsn := os.Getenv(envPostgresDSN)
	if dsn == "" {
		t.Skip(envPostgresDSN + " is not set")
	}
	const total = 60
	ctx := context.Background()
	param := "default_transaction_isolation=serializable"
	switch {
	case !strings.Contains(dsn, "://"):
		dsn += " " + param
	case strings.Contains(dsn, "?"):
		dsn += "&" + param
	default:
		dsn += "?" + param
	}
	serial, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { serial.Close() })
	var isolation string
	if err := serial.QueryRow("SHOW transaction_isolation").Scan(&isolation); err != nil || isolation != "serializable" {
		t.Fatalf("transaction_isolation = %q, %v; want serializable", isolation, err)
	}
	s := newStore(t, serial)
	other, err := vaultstore.NewStore(vaultstore.NewStoreOptions{
		VaultTableName: s.GetVaultTableName(), VaultMetaTableName: s.GetMetaTableName(),
		DB: sharedDB(t, "pgx", os.Getenv(envPostgresDSN)), CryptoConfig: testCrypto(),
	})
	if err != nil {
		t.Fatal(err)
	}
	seedEncrypted(t, other, total, pwOld)
	changed := rotationOrder(t, s)[55].GetToken()

	h := record(s, func(p vaultstore.HookPoint, attempt, seen int) error {
		if p == vaultstore.HookRotationChunk && attempt == 0 && seen == 0 {
			if err := other.TokenUpdate(ctx, changed, "updated", pwNew); err != nil {
				t.Errorf("the other client's TokenUpdate: %v", err)
			}
		}
		return nil
	})
	var last vaultstore.ChangePasswordProgress
	n, err := changedOf(s.TokensChangePasswordWithOptions(ctx, pwOld, pwNew, vaultstore.ChangePasswordOptions{Progress: func(p vaultstore.ChangePasswordProgress) { last = p }}))
	if err != nil || n != total-1 {
		t.Fatalf("TokensChangePassword = %d, %v; want %d, nil", n, err, total-1)
	}
	if got := h.attempts(vaultstore.HookRotationChunk); !slices.Equal(got, []int{0, 1, 1}) {
		t.Errorf("compare-and-set statements at transaction attempts %v, want [0 1 1] (one serialisation failure, one retry)", got)
	}
	if want := (vaultstore.ChangePasswordProgress{Scanned: total, Changed: total - 1, FromV3: total - 1, Total: total}); last != want {
		t.Errorf("last progress %+v, want %+v", last, want)
	}
	wantValue(t, s, changed, "updated")
	if onNew := recordsOnNew(t, s, total); onNew != total {
		t.Errorf("%d of %d records open with the new password", onNew, total)
	}
}

// TestRotationRetriesRealDeadlock: on MariaDB, in a rotation of 600
// records in batches of 60, after the first batch's transaction has run its
// first compare-and-set statement (50 rows), another
// transaction (made the heavier of the two by 500 inserted rows, so that
// InnoDB picks the rotation as the victim) locks a record of the second
// statement and waits for one of the first. The rotation's second
// statement closes the cycle; InnoDB rolls the rotation's transaction back
// with a deadlock (1213), the other transaction commits its expiry
// changes, and the rotation runs its transaction again, rotating and
// counting each of the 600 records exactly once and keeping the other
// transaction's expiries. Fails without the retry of transactions that
// isRetryableTxError accepts (rotation.write), or if isRetryableTxError
// does not accept 1213.
func TestRotationRetriesRealDeadlock(t *testing.T) {
	t.Parallel()
	dsn := os.Getenv(envMySQLDSN)
	if dsn == "" {
		t.Skip(envMySQLDSN + " is not set")
	}
	// 600 rows, so that InnoDB finds a statement's 50 rows through the
	// primary key and locks only them; over 60 it scans and locks all.
	const total, batch = 600, 60
	const renewed = "2099-01-01 00:00:00"
	ctx := context.Background()
	db := sharedDB(t, "mysql", dsn)
	s := newStore(t, db)
	seedEncrypted(t, s, total, pwOld)
	order := rotationOrder(t, s)
	first, second := order[5], order[55] // first and second statement
	weight := "w" + s.GetVaultTableName()
	if _, err := db.Exec("CREATE TABLE " + weight + " (n INT) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS " + weight) })
	rows := make([]string, 500)
	for i := range rows {
		rows[i] = fmt.Sprintf("(%d)", i)
	}
	update := "UPDATE " + s.GetVaultTableName() + " SET " + vaultstore.COLUMN_EXPIRES_AT + " = ? WHERE " + vaultstore.COLUMN_ID + " = ?"

	otherDone := make(chan error, 1)
	var otherConn *sql.Conn
	h := record(s, func(p vaultstore.HookPoint, attempt, seen int) error {
		if p != vaultstore.HookRotationChunk || attempt != 0 || seen != 0 {
			return nil
		}
		fail := func(err error) error {
			t.Errorf("the other transaction: %v", err)
			otherDone <- err
			return nil
		}
		var err error
		if otherConn, err = db.Conn(ctx); err != nil {
			return fail(err)
		}
		if _, err := otherConn.ExecContext(ctx, "SET SESSION innodb_lock_wait_timeout = 10"); err != nil {
			return fail(err)
		}
		tx, err := otherConn.BeginTx(ctx, nil)
		if err != nil {
			return fail(err)
		}
		if _, err := tx.Exec("INSERT INTO " + weight + " VALUES " + strings.Join(rows, ",")); err != nil {
			tx.Rollback()
			return fail(err)
		}
		if _, err := tx.Exec(update, renewed, second.GetID()); err != nil {
			tx.Rollback()
			return fail(err)
		}
		go func() {
			_, err := tx.Exec(update, renewed, first.GetID()) // waits for the rotation
			if err != nil {
				tx.Rollback()
			} else {
				err = tx.Commit()
			}
			otherDone <- err
		}()
		// Whether this UPDATE waits for the rotation before the rotation's
		// second statement waits for the other transaction or after, the
		// cycle closes and InnoDB rolls back the lighter transaction.
		return nil
	})
	n, err := changedOf(s.TokensChangePasswordWithOptions(ctx, pwOld, pwNew, vaultstore.ChangePasswordOptions{BatchSize: batch}))
	otherErr := <-otherDone
	if otherConn != nil {
		otherConn.Close()
	}
	if otherErr != nil {
		t.Fatalf("the other transaction failed (was it chosen as the deadlock victim?): %v", otherErr)
	}
	if err != nil || n != total {
		t.Fatalf("TokensChangePassword = %d, %v; want %d, nil", n, err, total)
	}
	got := h.attempts(vaultstore.HookRotationChunk)
	if len(got) < 3 || !slices.Equal(got[:3], []int{0, 1, 1}) || slices.Index(got[3:], 1) >= 0 {
		t.Errorf("compare-and-set statements at transaction attempts %v, want [0 1 1 0 0 …] (one deadlock, one retry)", got)
	}
	if onNew := recordsOnNew(t, s, total); onNew != total {
		t.Errorf("%d of %d records open with the new password", onNew, total)
	}
	for _, r := range []vaultstore.RecordInterface{first, second} {
		if got := rowOf(t, s, r.GetToken()).GetExpiresAt(); got != renewed {
			t.Errorf("expires_at of %s = %s, want the other transaction's %s", r.GetToken(), got, renewed)
		}
	}
}
