package vaultstore

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"sync"
	"sync/atomic"
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

// keyDeriver runs Argon2id for a store: it caches results in an LRU, bounds
// how many derivations run at once, and coalesces identical concurrent
// derivations into one. It is safe for concurrent use.
type keyDeriver struct {
	secret [32]byte
	macs   sync.Pool     // of hmac.New(sha256.New, secret)
	slots  chan struct{} // one token per derivation allowed to run

	mu       sync.Mutex
	capacity int // 0: no cache
	order    *list.List
	entries  map[keyCacheKey]*list.Element
	inflight map[keyCacheKey]*keyCall

	// derivations counts Argon2id runs, for tests and benchmarks.
	derivations atomic.Int64
}

type keyCacheEntry struct {
	id  keyCacheKey
	key []byte
}

// keyCall is one derivation in progress that others may wait for.
type keyCall struct {
	done chan struct{}
	key  []byte
	err  error
}

// newKeyDeriver keeps up to capacity keys (0: none) and runs at most
// concurrency derivations at once.
func newKeyDeriver(capacity, concurrency int, random io.Reader) (*keyDeriver, error) {
	d := &keyDeriver{
		slots:    make(chan struct{}, concurrency),
		capacity: capacity,
		order:    list.New(),
		entries:  make(map[keyCacheKey]*list.Element),
		inflight: make(map[keyCacheKey]*keyCall),
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
// cache when it is there. The key is shared: callers must not modify it.
// Waiting for a free slot or for another caller's identical derivation
// honours ctx.
func (d *keyDeriver) derive(ctx context.Context, password string, salt []byte, p argon2Params) ([]byte, error) {
	k := d.cacheKey(password, salt, p)
	for {
		d.mu.Lock()
		if e, ok := d.entries[k]; ok {
			d.order.MoveToFront(e)
			key := e.Value.(*keyCacheEntry).key
			d.mu.Unlock()
			return key, nil
		}
		if c, ok := d.inflight[k]; ok {
			d.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			// The leader gave up because its own context ended; this
			// caller's context is still live, so it tries itself.
			if c.err != nil && ctx.Err() == nil && (c.err == context.Canceled || c.err == context.DeadlineExceeded) {
				continue
			}
			return c.key, c.err
		}
		c := &keyCall{done: make(chan struct{})}
		d.inflight[k] = c
		d.mu.Unlock()

		c.key, c.err = d.run(ctx, password, salt, p)

		d.mu.Lock()
		delete(d.inflight, k)
		if c.err == nil {
			d.add(k, c.key)
		}
		d.mu.Unlock()
		close(c.done)
		return c.key, c.err
	}
}

// deriveUncached derives within the concurrency bound without looking in
// or filling the cache: for keys that will never be asked for again, such
// as the per-value key of a v2 write.
func (d *keyDeriver) deriveUncached(ctx context.Context, password string, salt []byte, p argon2Params) ([]byte, error) {
	return d.run(ctx, password, salt, p)
}

// run waits for a slot and derives.
func (d *keyDeriver) run(ctx context.Context, password string, salt []byte, p argon2Params) ([]byte, error) {
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-d.slots }()
	d.derivations.Add(1)
	return deriveArgon2id(password, salt, p), nil
}

// add stores a key, evicting the least recently used one when full. The
// caller holds mu.
func (d *keyDeriver) add(k keyCacheKey, key []byte) {
	if d.capacity <= 0 {
		return
	}
	if e, ok := d.entries[k]; ok {
		d.order.MoveToFront(e)
		return
	}
	d.entries[k] = d.order.PushFront(&keyCacheEntry{id: k, key: key})
	for d.order.Len() > d.capacity {
		last := d.order.Back()
		d.order.Remove(last)
		entry := last.Value.(*keyCacheEntry)
		delete(d.entries, entry.id)
		// Readers may still hold the slice, so it is dropped, not zeroed.
	}
}

// source adapts derive to the keySource the codec takes.
func (d *keyDeriver) source(ctx context.Context) keySource {
	return func(password string, salt []byte, p argon2Params) ([]byte, error) {
		return d.derive(ctx, password, salt, p)
	}
}

// uncachedSource adapts deriveUncached to a keySource for one codec call.
// The keys it hands out belong to that call alone, unlike cached ones, so
// wipe, called when the codec has returned, clears them.
func (d *keyDeriver) uncachedSource(ctx context.Context) (src keySource, wipe func()) {
	var handed [][]byte
	src = func(password string, salt []byte, p argon2Params) ([]byte, error) {
		key, err := d.deriveUncached(ctx, password, salt, p)
		if err == nil {
			handed = append(handed, key)
		}
		return key, err
	}
	return src, func() {
		for _, k := range handed {
			clear(k)
		}
	}
}
