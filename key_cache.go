package vaultstore

import (
	"bytes"
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"
)

// defaultKeyCacheSize is the number of derived keys kept when
// NewStoreOptions.KeyCacheSize is zero. An entry is about 200 bytes; a
// thousand covers every password of a typical application and the v2 values
// it reads repeatedly.
const defaultKeyCacheSize = 1024

// keyCacheKey identifies a derivation without holding the password: the
// password enters only as an HMAC under a secret that never leaves the
// process, so a memory dump of the cache is no offline oracle for guessing
// passwords that have not been cached.
type keyCacheKey struct {
	params   argon2Params
	salt     string
	password [sha256.Size]byte
}

// flight is the key's form for singleflight, which keys by string.
func (k keyCacheKey) flight() string {
	b := make([]byte, 0, 13+len(k.password)+len(k.salt))
	b = binary.BigEndian.AppendUint32(b, k.params.Iterations)
	b = binary.BigEndian.AppendUint32(b, k.params.MemoryKiB)
	b = append(b, k.params.Parallelism)
	b = binary.BigEndian.AppendUint32(b, k.params.KeyLength)
	if k.params.Root {
		b = append(b, 'r')
	}
	b = append(b, k.password[:]...)
	return string(append(b, k.salt...))
}

// keyDeriver runs Argon2id for a store. It bounds the derivations in
// flight twice, by count (MaxConcurrentKDF) and by the Argon2 memory they
// hold (KDFMemoryBudget), coalesces identical concurrent derivations into
// one, and caches keys in an LRU. Only keys shown to be right enter the
// cache (see remember), so guesses at a password cannot evict real keys.
// It is safe for concurrent use.
//
// Every key it returns is a copy that belongs to the caller, who clears it
// after use; the cache clears its own copy when the key leaves the cache.
type keyDeriver struct {
	secret    [32]byte
	macs      sync.Pool // of hmac.New(sha256.New, secret)
	slots     *semaphore.Weighted
	memory    *semaphore.Weighted // in KiB
	budgetKiB int64
	flights   singleflight.Group
	cache     *lru[keyCacheKey, []byte]

	// derivations counts Argon2id runs, for tests and benchmarks; tel,
	// when set, reports them and cache lookups.
	derivations atomic.Int64
	tel         *telemetry
}

// newKeyDeriver keeps up to capacity keys (0: none) and runs at most
// concurrency derivations, holding at most budgetKiB of Argon2 memory, at
// once.
func newKeyDeriver(capacity, concurrency int, budgetKiB int64, random io.Reader) (*keyDeriver, error) {
	d := &keyDeriver{
		slots:     semaphore.NewWeighted(int64(concurrency)),
		memory:    semaphore.NewWeighted(budgetKiB),
		budgetKiB: budgetKiB,
		cache:     newLRU[keyCacheKey](capacity, func(key []byte) { clear(key) }),
	}
	if random == nil {
		random = rand.Reader
	}
	if _, err := io.ReadFull(random, d.secret[:]); err != nil {
		return nil, fmt.Errorf("vaultstore: failed to read random bytes: %w", err)
	}
	d.macs.New = func() any { return hmac.New(sha256.New, d.secret[:]) }
	return d, nil
}

func (d *keyDeriver) cacheKey(password string, salt []byte, p argon2Params) keyCacheKey {
	return keyCacheKey{params: p, salt: string(salt), password: d.fingerprint(password)}
}

// fingerprint is HMAC-SHA256 of password under the deriver's secret. It
// runs on every read, so the keyed hashes are pooled.
func (d *keyDeriver) fingerprint(password string) [sha256.Size]byte {
	m := d.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(password))
	var out [sha256.Size]byte
	m.Sum(out[:0])
	d.macs.Put(m)
	return out
}

// derive returns the Argon2id key of password and salt under p, from the
// cache when it is there (fresh is false) or from a derivation that
// identical concurrent callers share (fresh is true: nothing has shown the
// key right yet). Waiting for a slot, for memory or for another caller's
// derivation honours ctx.
func (d *keyDeriver) derive(ctx context.Context, password string, salt []byte, p argon2Params) (key []byte, fresh bool, err error) {
	k := d.cacheKey(password, salt, p)
	if key, ok := d.cache.get(k, bytes.Clone); ok {
		d.lookup(ctx, true)
		return key, false, nil
	}
	d.lookup(ctx, false)
	for {
		// The derivation runs under the first caller's context; the others
		// wait under their own.
		ch := d.flights.DoChan(k.flight(), func() (any, error) {
			return d.run(ctx, password, salt, p)
		})
		select {
		case r := <-ch:
			if r.Err != nil {
				// The first caller gave up because its own context ended;
				// this caller's context is still live, so it tries again.
				if ctx.Err() == nil && (errors.Is(r.Err, context.Canceled) || errors.Is(r.Err, context.DeadlineExceeded)) {
					continue
				}
				return nil, false, r.Err
			}
			shared := r.Val.([]byte)
			if !r.Shared {
				return shared, true, nil
			}
			// Other callers hold the same slice, so this one gets a copy.
			// The shared slice is left to the collector: nothing tells
			// when the last caller has copied it.
			return bytes.Clone(shared), true, nil
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// deriveRooted returns the KEK of a KDF-2 value: from the cache, or the
// password's Argon2id key (cached or derived) mixed with the root that
// root returns. A warm read costs what a KDF-1 read does; a cold one, one
// Argon2id and whatever root costs (one KMS call per process).
func (d *keyDeriver) deriveRooted(ctx context.Context, password string, salt []byte, p argon2Params, root func() ([]byte, error)) (key []byte, fresh bool, err error) {
	// The root comes first, even for a cached key (one atomic load when
	// warm): once the root is destroyed, a key derived from it must not
	// open anything, whatever the cache still holds.
	r, err := root()
	if err != nil {
		return nil, false, err
	}
	if key, ok := d.cache.get(d.cacheKey(password, salt, p), bytes.Clone); ok {
		return key, false, nil
	}
	base := p
	base.Root = false
	k, _, err := d.derive(ctx, password, salt, base)
	if err != nil {
		return nil, false, err
	}
	defer clear(k)
	kek, err := mixRoot(r, k)
	return kek, true, err
}

// remember caches key for password, salt and p once it has been shown
// right: a v3 value's commitment matched it, a value opened with it, an
// identity verifier matched it, or a write made it. It keeps its own copy.
func (d *keyDeriver) remember(password string, salt []byte, p argon2Params, key []byte) {
	d.cache.add(d.cacheKey(password, salt, p), bytes.Clone(key))
}

// forget drops every cached key of password, as after a rotation away
// from it.
func (d *keyDeriver) forget(password string) {
	fp := d.fingerprint(password)
	d.cache.removeIf(func(k keyCacheKey) bool { return k.password == fp })
}

// errOverBudget is checked before any derivation too (readPolicy.admit);
// this is the last line, in case a caller forgot.
var errOverBudget = decryptionErrorf("Argon2 memory asked for is more than the store's KDFMemoryBudget")

// run derives within the store's bounds, without the cache: for keys that
// will never be asked for again, such as the per-value key of a v2 write.
// The key belongs to the caller.
func (d *keyDeriver) run(ctx context.Context, password string, salt []byte, p argon2Params) ([]byte, error) {
	if int64(p.MemoryKiB) > d.budgetKiB {
		return nil, errOverBudget
	}
	if err := d.slots.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	defer d.slots.Release(1)
	if err := d.memory.Acquire(ctx, int64(p.MemoryKiB)); err != nil {
		return nil, err
	}
	defer d.memory.Release(int64(p.MemoryKiB))
	d.derivations.Add(1)
	start := time.Now()
	key := deriveArgon2id(password, salt, p)
	if d.tel != nil {
		d.tel.kdfRuns.Add(ctx, 1)
		d.tel.kdfDuration.Record(ctx, time.Since(start).Seconds())
	}
	return key, nil
}

var (
	lookupHit  = metric.WithAttributes(attribute.String("result", "hit"))
	lookupMiss = metric.WithAttributes(attribute.String("result", "miss"))
)

// lookup counts a cache hit or miss.
func (d *keyDeriver) lookup(ctx context.Context, hit bool) {
	if d.tel == nil {
		return
	}
	if hit {
		d.tel.cacheLookup.Add(ctx, 1, lookupHit)
	} else {
		d.tel.cacheLookup.Add(ctx, 1, lookupMiss)
	}
}

// keySource hands keys to one codec call. Every key it returns belongs to
// the caller, who clears it; keep tells the source that a key it returned
// fresh has been shown right.
type keySource interface {
	key(password string, salt []byte, p argon2Params) (key []byte, fresh bool, err error)
	keep(password string, salt []byte, p argon2Params, key []byte)
}

// cachedKeys serves keys from the store's cache and fills it with the
// keys that prove right. root gives the vault's root key for a vault salt,
// for KDF-2 values; nil means the store has none.
type cachedKeys struct {
	ctx   context.Context
	d     *keyDeriver
	roots rootSource
}

// rootSource gives the vault's root key for values under a vault salt.
type rootSource interface {
	rootFor(ctx context.Context, vaultSalt []byte) ([]byte, error)
}

func (c cachedKeys) key(password string, salt []byte, p argon2Params) ([]byte, bool, error) {
	if !p.Root {
		return c.d.derive(c.ctx, password, salt, p)
	}
	return c.d.deriveRooted(c.ctx, password, salt, p, func() ([]byte, error) {
		if c.roots == nil {
			return nil, errNoKeyWrapper
		}
		return c.roots.rootFor(c.ctx, salt)
	})
}

func (c cachedKeys) keep(password string, salt []byte, p argon2Params, key []byte) {
	c.d.remember(password, salt, p, key)
}

// uncachedKeys derives every key afresh within the store's bounds and
// never caches: for values read once, whose keys would only evict the
// ones that serve the application.
type uncachedKeys struct {
	ctx context.Context
	d   *keyDeriver
}

func (u uncachedKeys) key(password string, salt []byte, p argon2Params) ([]byte, bool, error) {
	key, err := u.d.run(u.ctx, password, salt, p)
	return key, true, err
}

func (uncachedKeys) keep(string, []byte, argon2Params, []byte) {}

// lru is a bounded map that drops its least recently used entry when full,
// calling evicted on the value it drops. It is safe for concurrent use.
type lru[K comparable, V any] struct {
	mu       sync.Mutex
	capacity int // 0: holds nothing
	order    *list.List
	entries  map[K]*list.Element
	evicted  func(V)
}

type lruEntry[K comparable, V any] struct {
	key   K
	value V
}

func newLRU[K comparable, V any](capacity int, evicted func(V)) *lru[K, V] {
	return &lru[K, V]{capacity: capacity, order: list.New(), entries: make(map[K]*list.Element), evicted: evicted}
}

// get returns the value under k, passed through view while the lock is
// held, so that a value the LRU may clear on eviction is copied safely.
func (c *lru[K, V]) get(k K, view func(V) V) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(e)
	return view(e.Value.(*lruEntry[K, V]).value), true
}

// add stores v under k unless k is there already, in which case v is
// dropped through evicted, and evicts beyond capacity.
func (c *lru[K, V]) add(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok || c.capacity <= 0 {
		if ok {
			c.order.MoveToFront(e)
		}
		c.drop(v)
		return
	}
	c.entries[k] = c.order.PushFront(&lruEntry[K, V]{key: k, value: v})
	for c.order.Len() > c.capacity {
		c.remove(c.order.Back())
	}
}

// removeIf drops every entry whose key satisfies match.
func (c *lru[K, V]) removeIf(match func(K) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.order.Front(); e != nil; {
		next := e.Next()
		if match(e.Value.(*lruEntry[K, V]).key) {
			c.remove(e)
		}
		e = next
	}
}

// purge empties the LRU.
func (c *lru[K, V]) purge() { c.removeIf(func(K) bool { return true }) }

func (c *lru[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// remove drops e; the caller holds mu.
func (c *lru[K, V]) remove(e *list.Element) {
	entry := c.order.Remove(e).(*lruEntry[K, V])
	delete(c.entries, entry.key)
	c.drop(entry.value)
}

func (c *lru[K, V]) drop(v V) {
	if c.evicted != nil {
		c.evicted(v)
	}
}
