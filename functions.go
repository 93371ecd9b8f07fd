package vaultstore

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// timestampLayout is how every timestamp is stored and returned: UTC, to the
// second, with no zone. The original VaultStore stored this form, and on
// SQLite, where the columns hold text, it is what makes string comparison
// order timestamps correctly.
const timestampLayout = "2006-01-02 15:04:05"

// nowFunc and randReader are variables so tests can pin time and randomness.
var (
	nowFunc    = time.Now
	randReader = rand.Reader
)

// nowString is the current time in the stored layout.
func nowString() string {
	return nowFunc().UTC().Format(timestampLayout)
}

// expiryTimestamp renders an expiry given by a caller in the stored layout;
// the zero time means never. Years outside 1000..9999 are refused: text
// comparison orders the stored layout like time only with four-digit years,
// a year after 9999 would sort before MAX_DATETIME and read as expired, and
// MySQL's DATETIME holds nothing earlier than year 1000.
func expiryTimestamp(t time.Time) (string, error) {
	if t.IsZero() {
		return MAX_DATETIME, nil
	}
	u := t.UTC()
	if y := u.Year(); y < 1000 || y > 9999 {
		return "", validationErrorf("expiry year %d is outside 1000..9999 (use the zero time for never)", y)
	}
	return u.Format(timestampLayout), nil
}

// inputTimestampLayouts are the forms accepted from callers. Anything with a
// zone is converted to UTC before it is stored.
var inputTimestampLayouts = []string{
	timestampLayout,
	time.RFC3339Nano,
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999 -0700 MST",
}

// normalizeInputTimestamp turns a timestamp given by a caller into the stored
// layout, so that every row compares correctly against the others whatever
// form the caller used.
func normalizeInputTimestamp(column, s string) (string, error) {
	for _, layout := range inputTimestampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format(timestampLayout), nil
		}
	}
	return "", validationErrorf("%s %q is not a timestamp (want %q)", column, s, timestampLayout)
}

// normalizeStoredTimestamp renders a timestamp read from the database in the
// stored layout. Drivers disagree on what they return for a datetime column
// (text, or a time.Time that database/sql formats as RFC 3339), but the column
// holds a wall-clock time without zone, so the digits are kept as they are and
// never shifted to another zone. Text that is not a timestamp at all is
// returned unchanged rather than lost.
func normalizeStoredTimestamp(s string) string {
	if len(s) == len(timestampLayout) && s[10] == ' ' {
		return s
	}
	for _, layout := range inputTimestampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Format(timestampLayout)
		}
	}
	return s
}

// newRecordID returns a 32-digit id: the UTC time to the second followed by
// 18 random digits. Ids sort roughly by creation time, which keeps inserts
// near the end of the primary-key index, and the random part makes
// collisions negligible (10^18 per second). The shape matches the ids the
// original VaultStore generated.
func newRecordID() (string, error) {
	var b [18]byte
	if _, err := io.ReadFull(randReader, b[:]); err != nil {
		return "", fmt.Errorf("vaultstore: failed to read random bytes: %w", err)
	}
	var sb strings.Builder
	sb.Grow(32)
	sb.WriteString(nowFunc().UTC().Format("20060102150405"))
	for _, c := range b {
		// 250 is the largest multiple of 10 below 256; re-drawing the rare
		// byte above it keeps the digits uniform.
		for c >= 250 {
			var r [1]byte
			if _, err := io.ReadFull(randReader, r[:]); err != nil {
				return "", fmt.Errorf("vaultstore: failed to read random bytes: %w", err)
			}
			c = r[0]
		}
		sb.WriteByte('0' + c%10)
	}
	return sb.String(), nil
}

// tokenAlphabet is lowercase Crockford base32: no i, l, o or u, so a token
// read aloud or copied by hand is not misread.
const tokenAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// newToken returns TOKEN_PREFIX followed by a random payload, totalLength
// characters in all. 32 divides 256, so masking a random byte to five bits
// draws each character uniformly.
func newToken(totalLength int) (string, error) {
	if totalLength < TOKEN_MIN_TOTAL_LENGTH || totalLength > TOKEN_MAX_TOTAL_LENGTH {
		return "", validationErrorf("token length %d is outside %d..%d", totalLength, TOKEN_MIN_TOTAL_LENGTH, TOKEN_MAX_TOTAL_LENGTH)
	}
	payload := make([]byte, totalLength-len(TOKEN_PREFIX))
	if _, err := io.ReadFull(randReader, payload); err != nil {
		return "", fmt.Errorf("vaultstore: failed to read random bytes: %w", err)
	}
	for i, c := range payload {
		payload[i] = tokenAlphabet[c&31]
	}
	return TOKEN_PREFIX + string(payload), nil
}

// validateTokenInput checks a token given by a caller before it reaches SQL.
// Tokens are not secret, so the error may quote it.
func validateTokenInput(token string) error {
	if token == "" {
		return validationErrorf("token is empty")
	}
	if len(token) > TOKEN_MAX_TOTAL_LENGTH {
		return validationErrorf("token is %d bytes long, more than %d", len(token), TOKEN_MAX_TOTAL_LENGTH)
	}
	for _, r := range token {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError || !unicode.IsPrint(r) {
			return validationErrorf("token %q contains whitespace, a control character or invalid UTF-8", token)
		}
	}
	return nil
}

// isNil reports whether v is nil or holds a nil pointer, map, slice,
// function or channel. A caller's typed nil (var r *T passed as a
// RecordInterface) is not == nil, and the first method called on it would
// panic inside the store.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}

// forEachParallel calls fn for 0..n-1 on up to GOMAXPROCS goroutines and
// returns the first error; after it, calls not yet started are skipped and
// fn's context is cancelled. A single call runs inline.
func forEachParallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	if n == 1 {
		return fn(ctx, 0)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// ctxMutex is a mutex whose lock gives up when a context ends: the store's
// one-time set-ups (meta table, vault salt, root key, password identities)
// query the database or derive keys while holding it, and a caller waiting
// behind them must be able to leave. Its zero value is unlocked.
type ctxMutex struct {
	once sync.Once
	sem  *semaphore.Weighted
}

// lock waits for the mutex or for ctx to end.
func (m *ctxMutex) lock(ctx context.Context) error {
	m.once.Do(func() { m.sem = semaphore.NewWeighted(1) })
	return m.sem.Acquire(ctx, 1)
}

func (m *ctxMutex) unlock() { m.sem.Release(1) }
