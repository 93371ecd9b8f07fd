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
	d, err := newKeyDeriver(capacity, slots, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return d
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
	ctx := context.Background()
	d := newTestDeriver(t, 2, 1)
	salt := []byte("0123456789abcdef")
	a1, _ := d.derive(ctx, "a", salt, v3TestParams)
	a2, _ := d.derive(ctx, "a", salt, v3TestParams)
	if &a1[0] != &a2[0] || d.derivations.Load() != 1 {
		t.Fatalf("second derivation of the same key was not a cache hit (%d runs)", d.derivations.Load())
	}
	want := deriveArgon2id("a", salt, v3TestParams)
	if string(a1) != string(want) {
		t.Fatal("cached key differs from a direct derivation")
	}
	// Every input is part of the key.
	_, _ = d.derive(ctx, "b", salt, v3TestParams)                                                             // b, a
	_, _ = d.derive(ctx, "a", []byte("fedcba9876543210"), v3TestParams)                                       // evicts b
	_, _ = d.derive(ctx, "a", salt, argon2Params{Iterations: 2, MemoryKiB: 8, Parallelism: 1, KeyLength: 32}) // evicts a
	if n := d.derivations.Load(); n != 4 {
		t.Fatalf("%d derivations, want 4", n)
	}
	_, _ = d.derive(ctx, "a", salt, v3TestParams)
	if n := d.derivations.Load(); n != 5 {
		t.Fatalf("evicted key not derived again: %d derivations, want 5", n)
	}
	if d.order.Len() != 2 || len(d.entries) != 2 {
		t.Fatalf("cache holds %d/%d entries, want 2", d.order.Len(), len(d.entries))
	}
	d.purge()
	if d.order.Len() != 0 || len(d.entries) != 0 {
		t.Fatal("purge left entries")
	}
}

func TestKeyCacheOff(t *testing.T) {
	d := newTestDeriver(t, 0, 1)
	for range 3 {
		if _, err := d.derive(context.Background(), "a", []byte("0123456789abcdef"), v3TestParams); err != nil {
			t.Fatal(err)
		}
	}
	if n := d.derivations.Load(); n != 3 || len(d.entries) != 0 {
		t.Fatalf("cache off: %d derivations, %d entries", n, len(d.entries))
	}
}

// TestKeyCacheHoldsNoPassword: the cache's keys carry an HMAC of the
// password, not the password.
func TestKeyCacheHoldsNoPassword(t *testing.T) {
	d := newTestDeriver(t, 8, 1)
	const password = "correct horse battery staple"
	if _, err := d.derive(context.Background(), password, []byte("0123456789abcdef"), v3TestParams); err != nil {
		t.Fatal(err)
	}
	for k := range d.entries {
		if strings.Contains(fmt.Sprintf("%v %s %x", k, k.password[:], k.salt), password) {
			t.Fatal("a cache key contains the password")
		}
	}
	other := newTestDeriver(t, 8, 1)
	if d.cacheKey(password, nil, v3TestParams) == other.cacheKey(password, nil, v3TestParams) {
		t.Fatal("two stores share a password fingerprint; the per-store secret is not used")
	}
}

// TestKeyCacheCoalesces: callers asking for a derivation that is running
// wait for it instead of starting their own. synctest.Wait makes sure every
// caller is waiting before the parked leader finishes.
func TestKeyCacheCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		d := newTestDeriver(t, 0, 4) // no cache: only coalescing can share
		salt := []byte("0123456789abcdef")
		// Park a derivation in flight, as a leader that has not finished.
		k := d.cacheKey("pw", salt, v3TestParams)
		call := &keyCall{done: make(chan struct{})}
		d.inflight[k] = call

		var wg sync.WaitGroup
		results := make([][]byte, 16)
		for i := range results {
			wg.Go(func() {
				key, err := d.derive(ctx, "pw", salt, v3TestParams)
				if err != nil {
					t.Error(err)
				}
				results[i] = key
			})
		}
		synctest.Wait()
		call.key = []byte("shared key of the leader.........")
		d.mu.Lock()
		delete(d.inflight, k)
		d.mu.Unlock()
		close(call.done)
		wg.Wait()
		for i, r := range results {
			if string(r) != string(call.key) {
				t.Fatalf("waiter %d got %q, want the leader's key", i, r)
			}
		}
		if n := d.derivations.Load(); n != 0 {
			t.Fatalf("%d waiters derived on their own", n)
		}
	})
}

// TestKeyCacheSixteenReadersDeriveOnce is the behaviour users see: many
// goroutines reading with one password cost one derivation.
func TestKeyCacheSixteenReadersDeriveOnce(t *testing.T) {
	d := newTestDeriver(t, defaultKeyCacheSize, 2)
	salt := []byte("0123456789abcdef")
	heavier := argon2Params{Iterations: 1, MemoryKiB: 4 << 10, Parallelism: 1, KeyLength: 32}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			<-start
			if _, err := d.derive(context.Background(), "pw", salt, heavier); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := d.derivations.Load(); n != 1 {
		t.Fatalf("16 readers ran %d derivations, want 1", n)
	}
}

func TestKeyCacheWaitHonoursContext(t *testing.T) {
	d := newTestDeriver(t, 8, 1)
	d.slots <- struct{}{} // the only slot is taken
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := d.derive(ctx, "pw", []byte("0123456789abcdef"), v3TestParams)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("derive with no free slot = %v, want DeadlineExceeded", err)
	}
	if len(d.inflight) != 0 {
		t.Fatal("a failed derivation stayed in flight")
	}
	<-d.slots
	// A waiter whose leader gave up because of the leader's context tries
	// on its own instead of failing with someone else's cancellation.
	key, err := d.derive(context.Background(), "pw", []byte("0123456789abcdef"), v3TestParams)
	if err != nil || len(key) != 32 {
		t.Fatalf("derive after the slot freed = %v", err)
	}
}

// TestKeyCacheWaiterOutlivesCancelledLeader: a caller waiting on a leader
// whose own context ended derives the key itself rather than failing with
// the leader's cancellation.
func TestKeyCacheWaiterOutlivesCancelledLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newTestDeriver(t, 8, 1)
		salt := []byte("0123456789abcdef")
		k := d.cacheKey("pw", salt, v3TestParams)
		call := &keyCall{done: make(chan struct{})}
		d.inflight[k] = call
		done := make(chan error)
		go func() {
			_, err := d.derive(context.Background(), "pw", salt, v3TestParams)
			done <- err
		}()
		synctest.Wait() // the caller is waiting on the parked leader
		if d.derivations.Load() != 0 {
			t.Fatal("the caller derived while a leader was in flight")
		}
		call.err = context.Canceled
		d.mu.Lock()
		delete(d.inflight, k)
		d.mu.Unlock()
		close(call.done)
		if err := <-done; err != nil {
			t.Fatalf("waiter failed with the leader's cancellation: %v", err)
		}
		if d.derivations.Load() != 1 {
			t.Fatal("waiter did not derive after the leader gave up")
		}
	})
}

// TestStoreReadsDeriveOncePerPassword: through the store, 16 goroutines
// reading v3 values under one password derive its key once, and a second
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
	s.keys.purge()
	var wg sync.WaitGroup
	for i, tok := range tokens {
		wg.Go(func() {
			v, err := s.TokenRead(ctx, tok, pw)
			if err != nil || v != fmt.Sprint("value ", i) {
				t.Errorf("TokenRead = %q, %v", v, err)
			}
		})
	}
	wg.Wait()
	if n := s.keys.derivations.Load(); n != 2 {
		t.Fatalf("16 concurrent reads after a purge ran %d derivations, want 1 more", n-1)
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
	d, err := newKeyDeriver(8, 1, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	salt := []byte("0123456789abcdef")
	ctx := context.Background()
	if _, err := d.derive(ctx, "pw", salt, v3TestParams); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.derive(ctx, "pw", salt, v3TestParams); err != nil {
			b.Fatal(err)
		}
	}
}

// purge empties the cache.
func (d *keyDeriver) purge() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.order.Init()
	clear(d.entries)
}

// TestUncachedSourceWipes: keys from an uncached source stay out of the
// cache and are cleared by wipe, once the codec call that used them is over.
func TestUncachedSourceWipes(t *testing.T) {
	d := newTestDeriver(t, 8, 1)
	src, wipe := d.uncachedSource(context.Background())
	var keys [][]byte
	for _, salt := range []string{"0123456789abcdef", "fedcba9876543210"} {
		key, err := src("pw", []byte(salt), v3TestParams)
		if err != nil || len(key) != 32 || !slices.ContainsFunc(key, func(b byte) bool { return b != 0 }) {
			t.Fatalf("derive = %x, %v", key, err)
		}
		keys = append(keys, key)
	}
	if len(d.entries) != 0 {
		t.Fatalf("%d uncached keys went into the cache", len(d.entries))
	}
	wipe()
	for i, key := range keys {
		if slices.ContainsFunc(key, func(b byte) bool { return b != 0 }) {
			t.Errorf("key %d is not cleared after wipe: %x", i, key)
		}
	}
}
