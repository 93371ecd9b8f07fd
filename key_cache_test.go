package vaultstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	_ "github.com/glebarez/sqlite"
)

func newTestDeriver(t *testing.T, capacity, slots int) *keyDeriver {
	t.Helper()
	d, err := newKeyDeriver(capacity, slots, MaxArgon2Memory, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// deriveKept derives and, as a codec does once a key has proved right,
// remembers the key.
func deriveKept(t *testing.T, d *keyDeriver, password string, salt []byte, p argon2Params) []byte {
	t.Helper()
	key, fresh, err := d.derive(context.Background(), password, salt, p)
	if err != nil {
		t.Fatal(err)
	}
	if fresh {
		d.remember(password, salt, p, key)
	}
	return key
}

// cached returns the cache's own slice for the inputs, or nil.
func (d *keyDeriver) cached(password string, salt []byte, p argon2Params) []byte {
	key, _ := d.cache.get(d.cacheKey(password, salt, p), func(k []byte) []byte { return k })
	return key
}

// newMemoryStore opens a migrated store on tables "v" and "m" of a private
// in-memory SQLite database with one connection; opts gives the rest.
func newMemoryStore(t *testing.T, opts NewStoreOptions) *Store {
	t.Helper()
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	opts.VaultTableName, opts.VaultMetaTableName, opts.DB, opts.AutomigrateEnabled = "v", "m", db, true
	s, err := NewStore(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeyCacheHitsAndEviction(t *testing.T) {
	d := newTestDeriver(t, 2, 1)
	salt := []byte("0123456789abcdef")
	a1 := deriveKept(t, d, "a", salt, v3TestParams)
	a2 := deriveKept(t, d, "a", salt, v3TestParams)
	if d.derivations.Load() != 1 {
		t.Fatalf("second derivation of a remembered key was not a cache hit (%d runs)", d.derivations.Load())
	}
	if &a1[0] == &a2[0] {
		t.Fatal("two callers share one slice; each must own its copy to clear it")
	}
	want := deriveArgon2id("a", salt, v3TestParams)
	if string(a1) != string(want) || string(a2) != string(want) {
		t.Fatal("cached key differs from a direct derivation")
	}
	evictee := d.cached("a", salt, v3TestParams)
	// Every input is part of the key.
	deriveKept(t, d, "b", salt, v3TestParams)                                                             // b, a
	deriveKept(t, d, "a", []byte("fedcba9876543210"), v3TestParams)                                       // evicts a
	deriveKept(t, d, "a", salt, argon2Params{Iterations: 2, MemoryKiB: 8, Parallelism: 1, KeyLength: 32}) // evicts b
	if n := d.derivations.Load(); n != 4 {
		t.Fatalf("%d derivations, want 4", n)
	}
	if slices.ContainsFunc(evictee, func(b byte) bool { return b != 0 }) {
		t.Fatal("an evicted key was not cleared")
	}
	deriveKept(t, d, "a", salt, v3TestParams)
	if n := d.derivations.Load(); n != 5 {
		t.Fatalf("evicted key not derived again: %d derivations, want 5", n)
	}
	if n := d.cache.len(); n != 2 {
		t.Fatalf("cache holds %d entries, want 2", n)
	}
	d.cache.purge()
	if d.cache.len() != 0 {
		t.Fatal("purge left entries")
	}
}

// TestKeyCacheKeepsOnlyProvenKeys: a derivation that nothing confirmed
// (a wrong password's) never enters the cache, so guesses cannot evict
// the keys that serve the application.
func TestKeyCacheKeepsOnlyProvenKeys(t *testing.T) {
	ctx := context.Background()
	d := newTestDeriver(t, 1, 1)
	salt := []byte("0123456789abcdef")
	real := deriveKept(t, d, "right", salt, v3TestParams)
	for i := range 5 {
		if _, fresh, err := d.derive(ctx, fmt.Sprint("guess ", i), salt, v3TestParams); err != nil || !fresh {
			t.Fatalf("guess %d: fresh=%v, %v", i, fresh, err)
		}
	}
	got, fresh, err := d.derive(ctx, "right", salt, v3TestParams)
	if err != nil || fresh || string(got) != string(real) {
		t.Fatalf("the real key was evicted by guesses: fresh=%v, %v", fresh, err)
	}
	if n := d.derivations.Load(); n != 6 {
		t.Fatalf("%d derivations, want 6 (each guess derives, the real key once)", n)
	}
}

// TestKeyCacheForget: a rotation away from a password drops its keys, and
// only its keys, and clears them.
func TestKeyCacheForget(t *testing.T) {
	d := newTestDeriver(t, 8, 1)
	salt := []byte("0123456789abcdef")
	deriveKept(t, d, "old", salt, v3TestParams)
	deriveKept(t, d, "old", []byte("fedcba9876543210"), v3TestParams)
	deriveKept(t, d, "other", salt, v3TestParams)
	held := d.cached("old", salt, v3TestParams)
	d.forget("old")
	if d.cached("old", salt, v3TestParams) != nil || d.cache.len() != 1 || d.cached("other", salt, v3TestParams) == nil {
		t.Fatalf("after forget the cache holds %d entries", d.cache.len())
	}
	if slices.ContainsFunc(held, func(b byte) bool { return b != 0 }) {
		t.Fatal("a forgotten key was not cleared")
	}
}

func TestKeyCacheOff(t *testing.T) {
	d := newTestDeriver(t, 0, 1)
	for range 3 {
		deriveKept(t, d, "a", []byte("0123456789abcdef"), v3TestParams)
	}
	if n := d.derivations.Load(); n != 3 || d.cache.len() != 0 {
		t.Fatalf("cache off: %d derivations, %d entries", n, d.cache.len())
	}
}

// TestKeyCacheHoldsNoPassword: the cache's keys carry an HMAC of the
// password, not the password.
func TestKeyCacheHoldsNoPassword(t *testing.T) {
	d := newTestDeriver(t, 8, 1)
	const password = "correct horse battery staple"
	deriveKept(t, d, password, []byte("0123456789abcdef"), v3TestParams)
	for k := range d.cache.entries {
		if strings.Contains(fmt.Sprintf("%v %s %x %s", k, k.password[:], k.salt, k.flight()), password) {
			t.Fatal("a cache key contains the password")
		}
	}
	other := newTestDeriver(t, 8, 1)
	if d.cacheKey(password, nil, v3TestParams) == other.cacheKey(password, nil, v3TestParams) {
		t.Fatal("two stores share a password fingerprint; the per-store secret is not used")
	}
}

// TestKeyCacheCoalesces: callers asking for a derivation that is running
// wait for it instead of starting their own. The only slot is held until
// synctest.Wait shows every caller waiting, so all of them meet the one
// derivation in flight.
func TestKeyCacheCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		d := newTestDeriver(t, 0, 1) // no cache: only coalescing can share
		salt := []byte("0123456789abcdef")
		if !d.slots.TryAcquire(1) {
			t.Fatal("slot taken")
		}
		var wg sync.WaitGroup
		results := make([][]byte, 16)
		for i := range results {
			wg.Go(func() {
				key, fresh, err := d.derive(ctx, "pw", salt, v3TestParams)
				if err != nil || !fresh {
					t.Errorf("derive: fresh=%v, %v", fresh, err)
				}
				results[i] = key
			})
		}
		synctest.Wait()
		d.slots.Release(1)
		wg.Wait()
		want := deriveArgon2id("pw", salt, v3TestParams)
		for i, r := range results {
			if string(r) != string(want) {
				t.Fatalf("waiter %d got another key", i)
			}
			for j := range i {
				if &results[j][0] == &r[0] {
					t.Fatalf("waiters %d and %d share a slice", j, i)
				}
			}
		}
		if n := d.derivations.Load(); n != 1 {
			t.Fatalf("16 callers ran %d derivations, want 1", n)
		}
	})
}

func TestKeyCacheWaitHonoursContext(t *testing.T) {
	d := newTestDeriver(t, 8, 1)
	if !d.slots.TryAcquire(1) { // the only slot is taken
		t.Fatal("slot taken")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, _, err := d.derive(ctx, "pw", []byte("0123456789abcdef"), v3TestParams)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("derive with no free slot = %v, want DeadlineExceeded", err)
	}
	d.slots.Release(1)
	key, _, err := d.derive(context.Background(), "pw", []byte("0123456789abcdef"), v3TestParams)
	if err != nil || len(key) != 32 {
		t.Fatalf("derive after the slot freed = %v", err)
	}
}

// TestKeyCacheWaiterOutlivesCancelledLeader: a caller waiting on a
// derivation whose first caller's context ended derives the key itself
// rather than failing with that cancellation.
func TestKeyCacheWaiterOutlivesCancelledLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newTestDeriver(t, 8, 1)
		salt := []byte("0123456789abcdef")
		if !d.slots.TryAcquire(1) {
			t.Fatal("slot taken")
		}
		leaderCtx, cancelLeader := context.WithCancel(context.Background())
		leader, waiter := make(chan error), make(chan error)
		go func() {
			_, _, err := d.derive(leaderCtx, "pw", salt, v3TestParams)
			leader <- err
		}()
		synctest.Wait() // the leader's derivation waits for the slot
		go func() {
			_, _, err := d.derive(context.Background(), "pw", salt, v3TestParams)
			waiter <- err
		}()
		synctest.Wait() // the waiter has joined it
		cancelLeader()
		if err := <-leader; !errors.Is(err, context.Canceled) {
			t.Fatalf("leader = %v, want Canceled", err)
		}
		synctest.Wait() // the waiter now leads a derivation of its own
		d.slots.Release(1)
		if err := <-waiter; err != nil {
			t.Fatalf("waiter failed with the leader's cancellation: %v", err)
		}
		if d.derivations.Load() != 1 {
			t.Fatal("waiter did not derive after the leader gave up")
		}
	})
}

// TestKeyCacheMemoryBudget: derivations hold their memory parameter's
// worth of the budget while they run, and one asking for more than the
// whole budget is refused before anything is allocated.
func TestKeyCacheMemoryBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, err := newKeyDeriver(0, 8, 64, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		over := argon2Params{Iterations: 1, MemoryKiB: 72, Parallelism: 1, KeyLength: 32}
		if _, _, err := d.derive(context.Background(), "pw", []byte("0123456789abcdef"), over); !errors.Is(err, ErrDecryptionFailed) || d.derivations.Load() != 0 {
			t.Fatalf("over-budget derivation = %v after %d runs, want ErrDecryptionFailed at once", err, d.derivations.Load())
		}
		// 40 of the 64 KiB are in use: a 32 KiB derivation waits.
		if !d.memory.TryAcquire(40) {
			t.Fatal("budget taken")
		}
		p := argon2Params{Iterations: 1, MemoryKiB: 32, Parallelism: 1, KeyLength: 32}
		done := make(chan error)
		go func() {
			_, _, err := d.derive(context.Background(), "pw", []byte("0123456789abcdef"), p)
			done <- err
		}()
		synctest.Wait()
		if d.derivations.Load() != 0 {
			t.Fatal("a derivation ran beyond the memory budget")
		}
		d.memory.Release(40)
		if err := <-done; err != nil || d.derivations.Load() != 1 {
			t.Fatalf("derivation after the budget freed = %v", err)
		}
	})
}

// TestStoreReadsDeriveOncePerPassword: through the store, reads of 16 v3
// values under one password derive its key once (TestKeyCacheCoalesces
// covers concurrent callers), and a second
// vault salt or a v2 value costs exactly one more.
func TestStoreReadsDeriveOncePerPassword(t *testing.T) {
	ctx := context.Background()
	cfg := &CryptoConfig{Iterations: 1, Memory: 1 << 10, Parallelism: 1, KeyLength: 32, SaltSize: 16, NonceSize: 12, TagSize: 16}
	s := newMemoryStore(t, NewStoreOptions{CryptoConfig: cfg})
	const pw = "sixteen readers password"
	var tokens []string
	for i := range 16 {
		tok, err := s.TokenCreate(ctx, fmt.Sprint("value ", i), pw, 20)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	if n := s.keys.derivations.Load(); n != 1 {
		t.Fatalf("16 v3 creates ran %d derivations, want 1", n)
	}
	s.keys.cache.purge()
	for i, tok := range tokens {
		v, err := s.TokenRead(ctx, tok, pw)
		if err != nil || v != fmt.Sprint("value ", i) {
			t.Errorf("TokenRead = %q, %v", v, err)
		}
	}
	if n := s.keys.derivations.Load(); n != 2 {
		t.Fatalf("16 reads after a purge ran %d derivations, want 1 more", n-1)
	}
	got, err := s.TokensRead(ctx, tokens, pw)
	if err != nil || len(got) != 16 {
		t.Fatalf("TokensRead = %d values, %v", len(got), err)
	}
	if n := s.keys.derivations.Load(); n != 2 {
		t.Fatalf("TokensRead of 16 cached values derived %d more times", n-2)
	}
	// A v2 value: one derivation to write, one for its first read, none
	// for the next.
	v2, err := encryptV2("old style", pw, cfg, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordCreate(ctx, NewRecord().SetToken("tk_v2value000001").SetValue(v2)); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if v, err := s.TokenRead(ctx, "tk_v2value000001", pw); err != nil || v != "old style" {
			t.Fatalf("v2 read = %q, %v", v, err)
		}
	}
	if n := s.keys.derivations.Load(); n != 3 {
		t.Fatalf("three reads of one v2 value ran %d derivations, want 1", n-2)
	}
}

func BenchmarkKeyCacheHit(b *testing.B) {
	d, err := newKeyDeriver(8, 1, MaxArgon2Memory, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	salt := []byte("0123456789abcdef")
	ctx := context.Background()
	key, _, err := d.derive(ctx, "pw", salt, v3TestParams)
	if err != nil {
		b.Fatal(err)
	}
	d.remember("pw", salt, v3TestParams, key)
	b.ReportAllocs()
	for b.Loop() {
		key, _, err := d.derive(ctx, "pw", salt, v3TestParams)
		if err != nil {
			b.Fatal(err)
		}
		clear(key)
	}
}
