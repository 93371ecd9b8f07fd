package vaultstore

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNormalizeInputTimestamp(t *testing.T) {
	cases := map[string]string{
		"2024-05-06 07:08:09":            "2024-05-06 07:08:09",
		"2024-05-06T07:08:09Z":           "2024-05-06 07:08:09",
		"2024-05-06T09:08:09+02:00":      "2024-05-06 07:08:09",
		"2024-05-06T07:08:09.123456789Z": "2024-05-06 07:08:09",
		"2024-05-06T07:08:09":            "2024-05-06 07:08:09",
		MAX_DATETIME:                     MAX_DATETIME,
	}
	for in, want := range cases {
		got, err := normalizeInputTimestamp("c", in)
		if err != nil || got != want {
			t.Errorf("normalizeInputTimestamp(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "tomorrow", "2024-13-01 00:00:00", "2024-05-06 07:08:09; DROP TABLE x"} {
		if _, err := normalizeInputTimestamp("c", bad); !errors.Is(err, ErrValidationFailed) {
			t.Errorf("normalizeInputTimestamp(%q) err = %v", bad, err)
		}
	}
}

func TestNormalizeStoredTimestampKeepsWallClock(t *testing.T) {
	// A driver that decoded the zone-less column in another location must
	// not shift the digits.
	loc := time.FixedZone("X", 5*3600)
	tm := time.Date(2024, 5, 6, 7, 8, 9, 0, loc)
	var ts dbTimestamp
	if err := ts.Scan(tm); err != nil || ts != "2024-05-06 07:08:09" {
		t.Errorf("Scan(time) = %q, %v", ts, err)
	}
	for in, want := range map[string]string{
		"2024-05-06 07:08:09":       "2024-05-06 07:08:09",
		"2024-05-06T07:08:09Z":      "2024-05-06 07:08:09",
		"2024-05-06T07:08:09+05:00": "2024-05-06 07:08:09",
		"not a time":                "not a time",
	} {
		if got := normalizeStoredTimestamp(in); got != want {
			t.Errorf("normalizeStoredTimestamp(%q) = %q, want %q", in, got, want)
		}
	}
	if err := ts.Scan([]byte("2024-05-06 07:08:09")); err != nil || ts != "2024-05-06 07:08:09" {
		t.Errorf("Scan(bytes) = %q, %v", ts, err)
	}
	if err := ts.Scan(nil); err != nil || ts != "" {
		t.Errorf("Scan(nil) = %q, %v", ts, err)
	}
	if err := ts.Scan(42); err == nil {
		t.Errorf("Scan(int) accepted")
	}
}

func TestExpiryTimestamp(t *testing.T) {
	if got, err := expiryTimestamp(time.Time{}); err != nil || got != MAX_DATETIME {
		t.Errorf("zero time = %q, %v", got, err)
	}
	tm := time.Date(2030, 1, 2, 3, 4, 5, 999, time.FixedZone("Y", -3600))
	if got, err := expiryTimestamp(tm); err != nil || got != "2030-01-02 04:04:05" {
		t.Errorf("expiryTimestamp = %q, %v", got, err)
	}
	for _, y := range []int{-1, 1, 999, 10000, 12345} {
		if got, err := expiryTimestamp(time.Date(y, 6, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrValidationFailed) {
			t.Errorf("year %d = %q, %v; want ErrValidationFailed", y, got, err)
		}
	}
}

func TestValidateTokenInputRejectsUnicodeSpace(t *testing.T) {
	for _, tok := range []string{"tk_a\u00a0b", "tk_a\u2028b", "tk_a\u200bb", "tk_a\u3000b", "tk_a\xffb", "tk_a\u0085b"} {
		if err := validateTokenInput(tok); !errors.Is(err, ErrValidationFailed) {
			t.Errorf("validateTokenInput(%q) = %v", tok, err)
		}
	}
	for _, tok := range []string{"tk_abc", "tk_ÄÖÜ-日本", "user:42/api_key"} {
		if err := validateTokenInput(tok); err != nil {
			t.Errorf("validateTokenInput(%q) = %v", tok, err)
		}
	}
}

func TestNewRecordID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id, err := newRecordID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 32 || strings.Trim(id, "0123456789") != "" {
			t.Fatalf("id %q is not 32 digits", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestNewToken(t *testing.T) {
	for n := TOKEN_MIN_TOTAL_LENGTH; n <= TOKEN_MAX_TOTAL_LENGTH; n++ {
		tok, err := newToken(n)
		if err != nil || len(tok) != n || !IsTokenValidLength(tok) {
			t.Fatalf("newToken(%d) = %q, %v", n, tok, err)
		}
		if strings.Trim(tok[len(TOKEN_PREFIX):], tokenAlphabet) != "" {
			t.Fatalf("token %q has characters outside the alphabet", tok)
		}
	}
	for _, n := range []int{0, 14, 41} {
		if _, err := newToken(n); !errors.Is(err, ErrValidationFailed) {
			t.Errorf("newToken(%d) err = %v", n, err)
		}
	}
}

func TestRandomnessFailureIsAnError(t *testing.T) {
	old := randReader
	randReader = bytes.NewReader(nil)
	defer func() { randReader = old }()
	if _, err := newToken(20); err == nil {
		t.Error("newToken without randomness succeeded")
	}
	if _, err := newRecordID(); err == nil {
		t.Error("newRecordID without randomness succeeded")
	}
}

func TestValidateTokenInput(t *testing.T) {
	for _, ok := range []string{"tk_abc", "custom-token_1", "tk_" + strings.Repeat("a", 37), "ключ"} {
		if err := validateTokenInput(ok); err != nil {
			t.Errorf("validateTokenInput(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", " ", "tk_a b", "tk_\t", "tk_\n", "tk_\x00", "tk_\x7f", "tk_\u0085", "tk_\xff", "tk_" + strings.Repeat("a", 38)} {
		if err := validateTokenInput(bad); !errors.Is(err, ErrValidationFailed) {
			t.Errorf("validateTokenInput(%q) = %v", bad, err)
		}
	}
}

func TestForEachParallel(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{0, 1, 2, 7, 100} {
		var mu sync.Mutex
		seen := map[int]int{}
		err := forEachParallel(ctx, n, func(_ context.Context, i int) error {
			mu.Lock()
			seen[i]++
			mu.Unlock()
			return nil
		})
		if err != nil || len(seen) != n {
			t.Fatalf("n=%d: %v, %d indexes", n, err, len(seen))
		}
		for i, c := range seen {
			if c != 1 || i < 0 || i >= n {
				t.Fatalf("n=%d: index %d called %d times", n, i, c)
			}
		}
	}
	boom := errors.New("boom")
	var calls atomic.Int64
	err := forEachParallel(ctx, 10000, func(ctx context.Context, i int) error {
		calls.Add(1)
		if i == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the first error", err)
	}
	if calls.Load() == 10000 {
		t.Error("work went on after an error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := forEachParallel(cctx, 10, func(context.Context, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestCtxMutex(t *testing.T) {
	var m ctxMutex
	if err := m.lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := m.lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock of a held mutex = %v, want DeadlineExceeded", err)
	}
	m.unlock()
	if err := m.lock(context.Background()); err != nil {
		t.Fatalf("lock after unlock = %v", err)
	}
	m.unlock()
}
