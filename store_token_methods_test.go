package vaultstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaultstore/vaultstore"
)

// crockfordLower is the alphabet generated token payloads must use.
const crockfordLower = "0123456789abcdefghjkmnpqrstvwxyz"

// Passwords of the token tests. All meet the default policy (16 characters)
// and none is a substring of another or of any library message.
const (
	pwOld   = "old-Passw0rd-qzxv-1111"
	pwNew   = "new-Passw0rd-qzxv-2222"
	pwOther = "oth-Passw0rd-qzxv-3333"
)

// expiring is the options value of a token expiring hours from now
// (negative: already expired).
func expiring(hours int) vaultstore.TokenCreateOptions {
	return vaultstore.TokenCreateOptions{ExpiresAt: timeIn(hours)}
}

// mustCustom stores value under token, failing the test on error.
func mustCustom(t testing.TB, s *vaultstore.Store, token, value, password string, opts ...vaultstore.TokenCreateOptions) {
	t.Helper()
	if err := s.TokenCreateCustom(context.Background(), token, value, password, opts...); err != nil {
		t.Fatalf("TokenCreateCustom(%q): %v", token, err)
	}
}

// rowOf returns the stored row of token, soft-deleted or not.
func rowOf(t testing.TB, s *vaultstore.Store, token string) vaultstore.RecordInterface {
	t.Helper()
	list, err := s.RecordList(context.Background(), vaultstore.RecordQuery().SetToken(token).SetSoftDeletedInclude(true))
	if err != nil {
		t.Fatalf("RecordList(%q): %v", token, err)
	}
	if len(list) != 1 {
		t.Fatalf("%d rows hold token %q, want 1", len(list), token)
	}
	return list[0]
}

// storedRows returns every row, soft-deleted included, keyed by token.
func storedRows(t testing.TB, s *vaultstore.Store) map[string]map[string]string {
	t.Helper()
	list, err := s.RecordList(context.Background(), vaultstore.RecordQuery().SetSoftDeletedInclude(true))
	if err != nil {
		t.Fatalf("RecordList: %v", err)
	}
	out := make(map[string]map[string]string, len(list))
	for _, r := range list {
		out[r.GetToken()] = r.Data()
	}
	return out
}

// utc renders t as the store stores timestamps.
func utc(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

// checkNoSecret fails when err's message contains any of secrets.
func checkNoSecret(t testing.TB, what string, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("%s: error message %q contains the secret %q", what, err.Error(), s)
		}
	}
}

// ---------------------------------------------------------------------------
// TokenCreate

func TestTokenCreateLengthsAndAlphabet(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		for _, n := range []int{15, 20, 40} {
			tok, err := s.TokenCreate(ctx, fmt.Sprint("value-", n), testPassword, n)
			if err != nil {
				t.Fatalf("TokenCreate(length %d): %v", n, err)
			}
			if len(tok) != n || !strings.HasPrefix(tok, vaultstore.TOKEN_PREFIX) {
				t.Errorf("TokenCreate(length %d) = %q (%d bytes), want tk_ and %d bytes in all", n, tok, len(tok), n)
			}
			if strings.Trim(strings.TrimPrefix(tok, vaultstore.TOKEN_PREFIX), crockfordLower) != "" {
				t.Errorf("token %q has payload characters outside %q", tok, crockfordLower)
			}
			if v, err := s.TokenRead(ctx, tok, testPassword); err != nil || v != fmt.Sprint("value-", n) {
				t.Errorf("TokenRead(%q) = %q, %v", tok, v, err)
			}
		}
		for _, n := range []int{-1, 0, 14, 41, 100} {
			if tok, err := s.TokenCreate(ctx, "v", testPassword, n); !errors.Is(err, vaultstore.ErrValidationFailed) || tok != "" {
				t.Errorf("TokenCreate(length %d) = %q, %v, want ErrValidationFailed", n, tok, err)
			}
		}
		if n, err := s.RecordCount(ctx, vaultstore.RecordQuery().SetSoftDeletedInclude(true)); err != nil || n != 3 {
			t.Errorf("%d rows after 3 good and 5 rejected creates (%v), want 3", n, err)
		}
	})
}

func TestTokenCreateTokensAreDistinctAndUseWholeAlphabet(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		const count = 200
		seen := map[string]bool{}
		chars := map[rune]bool{}
		for i := range count {
			tok, err := s.TokenCreate(ctx, fmt.Sprint(i), testPassword, vaultstore.TOKEN_MIN_TOTAL_LENGTH)
			if err != nil {
				t.Fatalf("TokenCreate #%d: %v", i, err)
			}
			if seen[tok] {
				t.Fatalf("TokenCreate returned %q twice", tok)
			}
			seen[tok] = true
			for _, c := range strings.TrimPrefix(tok, vaultstore.TOKEN_PREFIX) {
				chars[c] = true
			}
		}
		// 2,400 uniform draws miss one of 32 characters with probability
		// about 32*(31/32)^2400, i.e. never.
		for _, c := range crockfordLower {
			if !chars[c] {
				t.Errorf("character %q never appeared in %d tokens", c, count)
			}
		}
		if len(chars) != len(crockfordLower) {
			t.Errorf("tokens use %d distinct characters, want %d", len(chars), len(crockfordLower))
		}
		if n, _ := s.RecordCount(ctx, vaultstore.RecordQuery()); n != count {
			t.Errorf("%d rows, want %d", n, count)
		}
	})
}

func TestTokenCreateValues(t *testing.T) {
	t.Parallel()
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		values := []struct{ name, value string }{
			{"empty", ""},
			{"unicode", "héllo wörld — 世界 🔐 \u202e"},
			{"binary and invalid UTF-8", string(binary) + "\xff\xfe"},
			{"plaintext marker", "plaintext-marker-7Hq2ZxQ9"},
			{"1 MiB", big},
		}
		for _, c := range values {
			t.Run(c.name, func(t *testing.T) {
				tok, err := s.TokenCreate(ctx, c.value, testPassword, 20)
				if err != nil {
					t.Fatalf("TokenCreate: %v", err)
				}
				got, err := s.TokenRead(ctx, tok, testPassword)
				if err != nil || got != c.value {
					t.Errorf("TokenRead = %d bytes, %v; want the %d bytes written", len(got), err, len(c.value))
				}
				rec, err := s.RecordFindByToken(ctx, tok)
				if err != nil || rec == nil {
					t.Fatalf("RecordFindByToken = %v, %v", rec, err)
				}
				if c.value != "" && strings.Contains(rec.GetValue(), c.value) {
					t.Errorf("stored value contains the plaintext")
				}
				if rec.GetValue() == "" || rec.GetValue() == c.value {
					t.Errorf("stored value is %q, want ciphertext", rec.GetValue())
				}
			})
		}
		t.Run("MaxValueSize", func(t *testing.T) {
			max := strings.Repeat("m", vaultstore.MaxValueSize)
			tok, err := s.TokenCreate(ctx, max, testPassword, 20)
			if err != nil {
				t.Fatalf("TokenCreate(MaxValueSize bytes): %v", err)
			}
			if got, err := s.TokenRead(ctx, tok, testPassword); err != nil || got != max {
				t.Errorf("TokenRead(MaxValueSize bytes) = %d bytes, %v", len(got), err)
			}
		})
		t.Run("MaxValueSize+1", func(t *testing.T) {
			before, _ := s.RecordCount(ctx, vaultstore.RecordQuery().SetSoftDeletedInclude(true))
			over := strings.Repeat("m", vaultstore.MaxValueSize+1)
			if tok, err := s.TokenCreate(ctx, over, testPassword, 20); !errors.Is(err, vaultstore.ErrValidationFailed) {
				t.Errorf("TokenCreate(MaxValueSize+1 bytes) = %q, %v, want ErrValidationFailed", tok, err)
			}
			if err := s.TokenCreateCustom(ctx, "tk_toolarge000001", over, testPassword); !errors.Is(err, vaultstore.ErrValidationFailed) {
				t.Errorf("TokenCreateCustom(MaxValueSize+1 bytes) = %v, want ErrValidationFailed", err)
			}
			mustCustom(t, s, "tk_toolarge000002", "small", testPassword)
			if err := s.TokenUpdate(ctx, "tk_toolarge000002", over, testPassword); !errors.Is(err, vaultstore.ErrValidationFailed) {
				t.Errorf("TokenUpdate(MaxValueSize+1 bytes) = %v, want ErrValidationFailed", err)
			}
			if v, err := s.TokenRead(ctx, "tk_toolarge000002", testPassword); err != nil || v != "small" {
				t.Errorf("after rejected update: %q, %v", v, err)
			}
			after, _ := s.RecordCount(ctx, vaultstore.RecordQuery().SetSoftDeletedInclude(true))
			if after != before+1 {
				t.Errorf("%d rows after rejected writes, want %d", after, before+1)
			}
		})
	})
}

func TestTokenCreateMoreThanOneOption(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		two := []vaultstore.TokenCreateOptions{expiring(1), expiring(2)}
		if tok, err := s.TokenCreate(ctx, "v", testPassword, 20, two...); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("TokenCreate with two options = %q, %v, want ErrValidationFailed", tok, err)
		}
		if err := s.TokenCreateCustom(ctx, "tk_twooptions0001", "v", testPassword, two...); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("TokenCreateCustom with two options = %v, want ErrValidationFailed", err)
		}
		if n, _ := s.RecordCount(ctx, vaultstore.RecordQuery().SetSoftDeletedInclude(true)); n != 0 {
			t.Errorf("%d rows after rejected creates", n)
		}
	})
}

func TestTokenCreatePasswordPolicy(t *testing.T) {
	t.Parallel()
	type opt = func(*vaultstore.NewStoreOptions)
	minLen := func(n int) opt { return func(o *vaultstore.NewStoreOptions) { o.PasswordMinLength = n } }
	cases := []struct {
		name     string
		options  []opt
		password string
		ok       bool
	}{
		{"default empty", nil, "", false},
		{"default 2 chars", nil, "Zq", false},
		{"default 15 chars", nil, "Qz7xW-k2Lm9vR4t", false},
		{"default 16 chars", nil, "Qz7xW-k2Lm9vR4tY", true},
		{"default test password", nil, testPassword, true},
		{"allow empty: empty", []opt{func(o *vaultstore.NewStoreOptions) { o.PasswordAllowEmpty = true }}, "", true},
		{"allow empty: short still rejected", []opt{func(o *vaultstore.NewStoreOptions) { o.PasswordAllowEmpty = true }}, "Zq9w", false},
		{"min 6: 5 chars", []opt{minLen(6)}, "Zq9wX", false},
		{"min 6: 6 chars", []opt{minLen(6)}, "Zq9wXy", true},
		{"min 4 counts characters: 4 two-byte letters", []opt{minLen(4)}, "äöüß", true},
		{"min 4 counts characters: 3 two-byte letters", []opt{minLen(4)}, "äöü", false},
		{"lowercase missing", []opt{minLen(4), func(o *vaultstore.NewStoreOptions) { o.PasswordRequireLowercase = true }}, "QZXW-1234", false},
		{"lowercase present", []opt{minLen(4), func(o *vaultstore.NewStoreOptions) { o.PasswordRequireLowercase = true }}, "QZxW-1234", true},
		{"uppercase missing", []opt{minLen(4), func(o *vaultstore.NewStoreOptions) { o.PasswordRequireUppercase = true }}, "qzxw-1234", false},
		{"uppercase present", []opt{minLen(4), func(o *vaultstore.NewStoreOptions) { o.PasswordRequireUppercase = true }}, "qzXw-1234", true},
		{"numbers missing", []opt{minLen(4), func(o *vaultstore.NewStoreOptions) { o.PasswordRequireNumbers = true }}, "qzxw-QZXW", false},
		{"numbers present", []opt{minLen(4), func(o *vaultstore.NewStoreOptions) { o.PasswordRequireNumbers = true }}, "qzxw-QZX7", true},
		{"symbols missing", []opt{minLen(4), func(o *vaultstore.NewStoreOptions) { o.PasswordRequireSymbols = true }}, "qzxwQZXW1234", false},
		{"symbols present", []opt{minLen(4), func(o *vaultstore.NewStoreOptions) { o.PasswordRequireSymbols = true }}, "qzxwQZXW1234!", true},
		{"all classes present", []opt{minLen(8), func(o *vaultstore.NewStoreOptions) {
			o.PasswordRequireLowercase, o.PasswordRequireUppercase, o.PasswordRequireNumbers, o.PasswordRequireSymbols = true, true, true, true
		}}, "qZ7#wX9$", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := newTestStore(t, c.options...)
			check := func(what string, err error) {
				t.Helper()
				if c.ok && err != nil {
					t.Errorf("%s: %v, want success", what, err)
				}
				if !c.ok && !errors.Is(err, vaultstore.ErrPasswordInvalid) {
					t.Errorf("%s: %v, want ErrPasswordInvalid", what, err)
				}
				checkNoSecret(t, what, err, c.password)
			}
			tok, err := s.TokenCreate(ctx, "value", c.password, 20)
			check("TokenCreate", err)
			check("TokenCreateCustom", s.TokenCreateCustom(ctx, "tk_policycustom01", "value", c.password))
			upserted, err := s.TokenUpsert(ctx, "", "value", c.password)
			check("TokenUpsert(\"\")", err)

			// An existing token, written with a password every policy
			// here accepts, updated with the password under test.
			mustCustom(t, s, "tk_policyupdate01", "before", "qZ7#wX9$-Lm4!vR2t")
			check("TokenUpdate", s.TokenUpdate(ctx, "tk_policyupdate01", "after", c.password))
			_, err = s.TokenUpsert(ctx, "tk_policyupdate01", "after", c.password)
			check("TokenUpsert(existing)", err)

			n, _ := s.RecordCount(ctx, vaultstore.RecordQuery().SetSoftDeletedInclude(true))
			if c.ok {
				if n != 4 {
					t.Errorf("%d rows, want 4", n)
				}
				for _, tk := range []string{tok, "tk_policycustom01", upserted, "tk_policyupdate01"} {
					want := "value"
					if tk == "tk_policyupdate01" {
						want = "after"
					}
					if v, err := s.TokenRead(ctx, tk, c.password); err != nil || v != want {
						t.Errorf("TokenRead(%q) = %q, %v, want %q", tk, v, err, want)
					}
				}
			} else {
				if n != 1 {
					t.Errorf("%d rows after rejected writes, want 1", n)
				}
				if v, err := s.TokenRead(ctx, "tk_policyupdate01", "qZ7#wX9$-Lm4!vR2t"); err != nil || v != "before" {
					t.Errorf("rejected update changed the value: %q, %v", v, err)
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Expiry at creation

func TestTokenCreateExpiry(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))

		future, err := s.TokenCreate(ctx, "future", testPassword, 20, expiring(1))
		if err != nil {
			t.Fatal(err)
		}
		if v, err := s.TokenRead(ctx, future, testPassword); err != nil || v != "future" {
			t.Errorf("TokenRead(future expiry) = %q, %v", v, err)
		}
		if got, want := rowOf(t, s, future).GetExpiresAt(), utc(timeIn(1)); got != want && got != utc(timeIn(1).Add(-time.Second)) {
			t.Errorf("expires_at = %q, want about %q", got, want)
		}

		past, err := s.TokenCreate(ctx, "past", testPassword, 20, expiring(-1))
		if err != nil {
			t.Fatal(err)
		}
		if v, err := s.TokenRead(ctx, past, testPassword); !errors.Is(err, vaultstore.ErrTokenExpired) || v != "" {
			t.Errorf("TokenRead(past expiry) = %q, %v, want ErrTokenExpired", v, err)
		}
		if ok, err := s.TokenExists(ctx, past); err != nil || !ok {
			t.Errorf("TokenExists(expired) = %v, %v, want true", ok, err)
		}

		mustCustom(t, s, "tk_custompast0001", "past", testPassword, expiring(-1))
		if _, err := s.TokenRead(ctx, "tk_custompast0001", testPassword); !errors.Is(err, vaultstore.ErrTokenExpired) {
			t.Errorf("TokenRead(custom, past expiry) = %v, want ErrTokenExpired", err)
		}

		// The zero time, given explicitly, means never.
		never, err := s.TokenCreate(ctx, "never", testPassword, 20, vaultstore.TokenCreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := rowOf(t, s, never).GetExpiresAt(); got != vaultstore.MAX_DATETIME {
			t.Errorf("expires_at with zero ExpiresAt = %q, want %q", got, vaultstore.MAX_DATETIME)
		}
		plain, _ := s.TokenCreate(ctx, "plain", testPassword, 20)
		if got := rowOf(t, s, plain).GetExpiresAt(); got != vaultstore.MAX_DATETIME {
			t.Errorf("expires_at without options = %q, want %q", got, vaultstore.MAX_DATETIME)
		}

		// ExpiresAt is an instant: its zone must not shift it.
		west := time.FixedZone("UTC-10", -10*3600)
		east := time.FixedZone("UTC+10", 10*3600)
		soonWest := time.Now().Add(30 * time.Minute).In(west)
		agoEast := time.Now().Add(-30 * time.Minute).In(east)
		tw, err := s.TokenCreate(ctx, "west", testPassword, 20, vaultstore.TokenCreateOptions{ExpiresAt: soonWest})
		if err != nil {
			t.Fatal(err)
		}
		if v, err := s.TokenRead(ctx, tw, testPassword); err != nil || v != "west" {
			t.Errorf("TokenRead(expires in 30 min, given in UTC-10) = %q, %v", v, err)
		}
		if got := rowOf(t, s, tw).GetExpiresAt(); got != utc(soonWest) {
			t.Errorf("expires_at = %q, want %q (UTC)", got, utc(soonWest))
		}
		te, err := s.TokenCreate(ctx, "east", testPassword, 20, vaultstore.TokenCreateOptions{ExpiresAt: agoEast})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.TokenRead(ctx, te, testPassword); !errors.Is(err, vaultstore.ErrTokenExpired) {
			t.Errorf("TokenRead(expired 30 min ago, given in UTC+10) = %v, want ErrTokenExpired", err)
		}
	})
}

// ---------------------------------------------------------------------------
// TokenCreateCustom

func TestTokenCreateCustom(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))

		good := []string{
			"tk_custom00000001",
			"custom-token_without.prefix",
			"tk_" + strings.Repeat("x", 37), // 40 bytes
			"tk_ünïcødé-ключ",
			strings.Repeat("é", 20), // 40 bytes, 20 characters
		}
		for i, tok := range good {
			value := fmt.Sprint("value ", i)
			if err := s.TokenCreateCustom(ctx, tok, value, testPassword); err != nil {
				t.Errorf("TokenCreateCustom(%q): %v", tok, err)
				continue
			}
			if v, err := s.TokenRead(ctx, tok, testPassword); err != nil || v != value {
				t.Errorf("TokenRead(%q) = %q, %v, want %q", tok, v, err, value)
			}
		}

		if err := s.TokenCreateCustom(ctx, "tk_custom00000001", "other", testPassword); !errors.Is(err, vaultstore.ErrTokenAlreadyExists) {
			t.Errorf("same token again: %v, want ErrTokenAlreadyExists", err)
		}
		if v, err := s.TokenRead(ctx, "tk_custom00000001", testPassword); err != nil || v != "value 0" {
			t.Errorf("after rejected duplicate: %q, %v", v, err)
		}

		mustCustom(t, s, "tk_softdeleted001", "v", testPassword)
		if err := s.TokenSoftDelete(ctx, "tk_softdeleted001"); err != nil {
			t.Fatal(err)
		}
		if err := s.TokenCreateCustom(ctx, "tk_softdeleted001", "again", testPassword); !errors.Is(err, vaultstore.ErrTokenAlreadyExists) {
			t.Errorf("soft-deleted token reused: %v, want ErrTokenAlreadyExists", err)
		}

		before, _ := s.RecordCount(ctx, vaultstore.RecordQuery().SetSoftDeletedInclude(true))
		bad := map[string]string{
			"empty":            "",
			"41 bytes":         "tk_" + strings.Repeat("x", 38),
			"41 bytes unicode": "tk_" + strings.Repeat("é", 19),
			"space":            "tk_has space",
			"leading space":    " tk_leading",
			"tab":              "tk_has\ttab",
			"newline":          "tk_has\nnewline",
			"carriage return":  "tk_has\rreturn",
			"NUL":              "tk_has\x00nul",
			"bell":             "tk_has\x07bell",
			"escape":           "tk_has\x1bescape",
			"DEL":              "tk_has\x7fdel",
			"C1 NEL":           "tk_has\u0085nel",
			"C1 CSI":           "tk_has\u009bcsi",
			"invalid UTF-8":    "tk_has\xffbyte",
		}
		for _, name := range slices.Sorted(maps.Keys(bad)) {
			tok := bad[name]
			if err := s.TokenCreateCustom(ctx, tok, "v", testPassword); !errors.Is(err, vaultstore.ErrValidationFailed) {
				t.Errorf("TokenCreateCustom(%s %q) = %v, want ErrValidationFailed", name, tok, err)
			}
		}
		after, _ := s.RecordCount(ctx, vaultstore.RecordQuery().SetSoftDeletedInclude(true))
		if after != before {
			t.Errorf("%d rows after rejected custom tokens, want %d", after, before)
		}

		// The contract says "no whitespace": Unicode whitespace counts.
		// BUG (functions.go, validateTokenInput): only ASCII whitespace,
		// C0/C1 controls, DEL and U+FFFD are refused, so these are stored.
		for _, tok := range []string{"tk_has\u00a0nbsp", "tk_has\u2028ls", "tk_has\u2029ps", "tk_has\u3000sp", "tk_has\u2003em", "tk_has\u1680og"} {
			if err := s.TokenCreateCustom(ctx, tok, "v", testPassword); !errors.Is(err, vaultstore.ErrValidationFailed) {
				t.Errorf("BUG: TokenCreateCustom(%+q) = %v, want ErrValidationFailed: the token holds Unicode whitespace, which the contract forbids (validateTokenInput in functions.go checks only ASCII/C1)", tok, err)
			}
		}

		// Tokens are case-sensitive on every backend.
		mustCustom(t, s, "tk_ABCdef123456", "upper", testPassword)
		if err := s.TokenCreateCustom(ctx, "tk_abcdef123456", "lower", testPassword); err != nil {
			t.Fatalf("tk_abcdef123456 next to tk_ABCdef123456: %v", err)
		}
		for tok, want := range map[string]string{"tk_ABCdef123456": "upper", "tk_abcdef123456": "lower"} {
			if v, err := s.TokenRead(ctx, tok, testPassword); err != nil || v != want {
				t.Errorf("TokenRead(%q) = %q, %v, want %q", tok, v, err, want)
			}
		}
		if _, err := s.TokenRead(ctx, "tk_ABCDEF123456", testPassword); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("TokenRead(tk_ABCDEF123456) = %v, want ErrRecordNotFound", err)
		}
		if err := s.TokenDelete(ctx, "tk_abcdef123456"); err != nil {
			t.Fatal(err)
		}
		if v, err := s.TokenRead(ctx, "tk_ABCdef123456", testPassword); err != nil || v != "upper" {
			t.Errorf("deleting the lowercase token touched the other: %q, %v", v, err)
		}
	})
}

// TestTokenCreateCustomConcurrentSameToken is an acceptance criterion:
// racing creates of one token have exactly one winner.
func TestTokenCreateCustomConcurrentSameToken(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		s := newStore(t, db)
		const racers = 20
		const token = "tk_racer000000001"
		errs := make([]error, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				<-start
				errs[i] = s.TokenCreateCustom(ctx, token, fmt.Sprint("racer ", i), testPassword)
			})
		}
		close(start)
		wg.Wait()
		winner, lost := -1, 0
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Errorf("racers %d and %d both succeeded", winner, i)
				}
				winner = i
			case errors.Is(err, vaultstore.ErrTokenAlreadyExists):
				lost++
			default:
				t.Errorf("racer %d: %v, want nil or ErrTokenAlreadyExists", i, err)
			}
		}
		if winner < 0 || lost != racers-1 {
			t.Errorf("%d winner(s) and %d ErrTokenAlreadyExists, want 1 and %d", racers-lost-countOthers(errs), lost, racers-1)
		}
		if n := countRows(t, db, "SELECT COUNT(*) FROM "+s.GetVaultTableName()); n != 1 {
			t.Errorf("%d rows, want 1", n)
		}
		if winner >= 0 {
			if v, err := s.TokenRead(ctx, token, testPassword); err != nil || v != fmt.Sprint("racer ", winner) {
				t.Errorf("TokenRead = %q, %v, want the winner's value", v, err)
			}
		}
	}
	forEachDatabase(t, func(t *testing.T, b dbBackend) { run(t, b.open(t)) })
}

// countOthers counts errors that are neither nil nor ErrTokenAlreadyExists.
func countOthers(errs []error) int {
	n := 0
	for _, err := range errs {
		if err != nil && !errors.Is(err, vaultstore.ErrTokenAlreadyExists) {
			n++
		}
	}
	return n
}

// ---------------------------------------------------------------------------
// TokenRead

func TestTokenReadErrors(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		const secretValue = "secret-plaintext-Wq8Zr"
		mustCustom(t, s, "tk_readlive000001", secretValue, pwOld)
		mustCustom(t, s, "tk_readsoft000001", secretValue, pwOld)
		mustCustom(t, s, "tk_readexpd000001", secretValue, pwOld, expiring(-1))
		if err := s.TokenSoftDelete(ctx, "tk_readsoft000001"); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name, token, password string
			want                  error
		}{
			{"absent", "tk_readnone000001", pwOld, vaultstore.ErrRecordNotFound},
			{"soft-deleted", "tk_readsoft000001", pwOld, vaultstore.ErrRecordNotFound},
			{"expired", "tk_readexpd000001", pwOld, vaultstore.ErrTokenExpired},
			{"expired, wrong password", "tk_readexpd000001", pwNew, vaultstore.ErrTokenExpired},
			{"wrong password", "tk_readlive000001", pwNew, vaultstore.ErrInvalidPassword},
			{"empty password", "tk_readlive000001", "", vaultstore.ErrInvalidPassword},
			{"empty token", "", pwOld, vaultstore.ErrValidationFailed},
			{"token with newline", "tk_read\nlive", pwOld, vaultstore.ErrValidationFailed},
			{"over-long token", "tk_" + strings.Repeat("r", 38), pwOld, vaultstore.ErrValidationFailed},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				v, err := s.TokenRead(ctx, c.token, c.password)
				if !errors.Is(err, c.want) || v != "" {
					t.Errorf("TokenRead = %q, %v, want %v", v, err, c.want)
				}
				checkNoSecret(t, "TokenRead", err, c.password, secretValue)
			})
		}
		if v, err := s.TokenRead(ctx, "tk_readlive000001", pwOld); err != nil || v != secretValue {
			t.Errorf("TokenRead(right password) = %q, %v", v, err)
		}
	})
}

// TestTokenReadIgnoresPolicy: values written under an older, laxer policy
// stay readable; reads never apply the policy.
func TestTokenReadIgnoresPolicy(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		vault, meta := uniqueTables(t, db)
		open := func(minLength int) *vaultstore.Store {
			s, err := vaultstore.NewStore(vaultstore.NewStoreOptions{
				VaultTableName: vault, VaultMetaTableName: meta, DB: db,
				AutomigrateEnabled: true, CryptoConfig: testCrypto(), PasswordMinLength: minLength,
			})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		lax := open(1)
		mustCustom(t, lax, "tk_legacyshort001", "legacy value", "pw")
		mustCustom(t, lax, "tk_legacyshort002", "legacy value 2", "pw")

		strict := open(0) // default minimum, 16
		if _, err := strict.TokenCreate(ctx, "x", "pw", 20); !errors.Is(err, vaultstore.ErrPasswordInvalid) {
			t.Fatalf("strict store accepted a 2-character password: %v", err)
		}
		if v, err := strict.TokenRead(ctx, "tk_legacyshort001", "pw"); err != nil || v != "legacy value" {
			t.Errorf("TokenRead with a legacy short password = %q, %v", v, err)
		}
		m, err := strict.TokensRead(ctx, []string{"tk_legacyshort001", "tk_legacyshort002"}, "pw")
		if err != nil || m["tk_legacyshort001"] != "legacy value" || m["tk_legacyshort002"] != "legacy value 2" {
			t.Errorf("TokensRead with a legacy short password = %v, %v", m, err)
		}
		if ok, err := strict.TokenExists(ctx, "tk_legacyshort001"); err != nil || !ok {
			t.Errorf("TokenExists = %v, %v", ok, err)
		}
	})
}

// ---------------------------------------------------------------------------
// TokenUpdate and TokenUpsert

func TestTokenUpdate(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		expiresAt := time.Date(2100, 5, 6, 7, 8, 9, 0, time.UTC)
		mustCustom(t, s, "tk_update00000001", "first", pwOld, vaultstore.TokenCreateOptions{ExpiresAt: expiresAt})
		before := rowOf(t, s, "tk_update00000001")

		if err := s.TokenUpdate(ctx, "tk_update00000001", "second", pwNew); err != nil {
			t.Fatalf("TokenUpdate: %v", err)
		}
		if v, err := s.TokenRead(ctx, "tk_update00000001", pwNew); err != nil || v != "second" {
			t.Errorf("TokenRead(new password) = %q, %v", v, err)
		}
		if _, err := s.TokenRead(ctx, "tk_update00000001", pwOld); !errors.Is(err, vaultstore.ErrInvalidPassword) {
			t.Errorf("TokenRead(old password) after update = %v, want ErrInvalidPassword", err)
		}
		after := rowOf(t, s, "tk_update00000001")
		if after.GetID() != before.GetID() || after.GetToken() != before.GetToken() {
			t.Errorf("id/token changed: %v -> %v", before.Data(), after.Data())
		}
		if after.GetExpiresAt() != "2100-05-06 07:08:09" {
			t.Errorf("expires_at after update = %q, want kept 2100-05-06 07:08:09", after.GetExpiresAt())
		}
		if after.GetCreatedAt() != before.GetCreatedAt() {
			t.Errorf("created_at changed: %q -> %q", before.GetCreatedAt(), after.GetCreatedAt())
		}
		if after.GetValue() == before.GetValue() || strings.Contains(after.GetValue(), "second") {
			t.Errorf("stored value not re-encrypted: %q", after.GetValue())
		}
		// Same value, same password: still a fresh encryption, no error
		// (MySQL must not read an unchanged row as absent).
		for range 2 {
			if err := s.TokenUpdate(ctx, "tk_update00000001", "second", pwNew); err != nil {
				t.Errorf("repeated TokenUpdate: %v", err)
			}
		}
		if err := s.TokenUpdate(ctx, "tk_update00000001", "", pwNew); err != nil {
			t.Errorf("TokenUpdate to empty value: %v", err)
		}
		if v, err := s.TokenRead(ctx, "tk_update00000001", pwNew); err != nil || v != "" {
			t.Errorf("after update to empty: %q, %v", v, err)
		}

		mustCustom(t, s, "tk_updsoft0000001", "v", pwOld)
		if err := s.TokenSoftDelete(ctx, "tk_updsoft0000001"); err != nil {
			t.Fatal(err)
		}
		mustCustom(t, s, "tk_updexpd0000001", "v", pwOld, expiring(-1))
		snap := storedRows(t, s)
		cases := []struct {
			name, token, password string
			want                  error
		}{
			{"absent", "tk_updnone0000001", pwNew, vaultstore.ErrRecordNotFound},
			{"soft-deleted", "tk_updsoft0000001", pwNew, vaultstore.ErrRecordNotFound},
			{"expired", "tk_updexpd0000001", pwNew, vaultstore.ErrTokenExpired},
			{"policy", "tk_update00000001", "Zq9", vaultstore.ErrPasswordInvalid},
			{"empty password", "tk_update00000001", "", vaultstore.ErrPasswordInvalid},
			{"empty token", "", pwNew, vaultstore.ErrValidationFailed},
			{"token with tab", "tk_upd\tate", pwNew, vaultstore.ErrValidationFailed},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				err := s.TokenUpdate(ctx, c.token, "rejected-value", c.password)
				if !errors.Is(err, c.want) {
					t.Errorf("TokenUpdate = %v, want %v", err, c.want)
				}
				checkNoSecret(t, "TokenUpdate", err, c.password, "rejected-value")
			})
		}
		if got := storedRows(t, s); !maps.EqualFunc(got, snap, maps.Equal) {
			t.Errorf("rejected updates changed rows:\nbefore %v\nafter  %v", snap, got)
		}
		if _, err := s.TokenRead(ctx, "tk_updexpd0000001", pwOld); !errors.Is(err, vaultstore.ErrTokenExpired) {
			t.Errorf("expired token after rejected update: %v", err)
		}
	})
}

func TestTokenUpsert(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		tok, err := s.TokenUpsert(ctx, "", "created", testPassword)
		if err != nil {
			t.Fatalf("TokenUpsert(\"\"): %v", err)
		}
		if len(tok) != 20 || !strings.HasPrefix(tok, vaultstore.TOKEN_PREFIX) || strings.Trim(tok[3:], crockfordLower) != "" {
			t.Errorf("TokenUpsert(\"\") = %q, want a 20-character generated token", tok)
		}
		if v, err := s.TokenRead(ctx, tok, testPassword); err != nil || v != "created" {
			t.Errorf("TokenRead = %q, %v", v, err)
		}
		got, err := s.TokenUpsert(ctx, tok, "updated", pwNew)
		if err != nil || got != tok {
			t.Fatalf("TokenUpsert(existing) = %q, %v, want %q", got, err, tok)
		}
		if v, err := s.TokenRead(ctx, tok, pwNew); err != nil || v != "updated" {
			t.Errorf("TokenRead after upsert = %q, %v", v, err)
		}
		if n, _ := s.RecordCount(ctx, vaultstore.RecordQuery().SetSoftDeletedInclude(true)); n != 1 {
			t.Errorf("%d rows after create and update upserts, want 1", n)
		}
		if got, err := s.TokenUpsert(ctx, "tk_upsertnone0001", "v", testPassword); !errors.Is(err, vaultstore.ErrRecordNotFound) || got != "" {
			t.Errorf("TokenUpsert(absent) = %q, %v, want ErrRecordNotFound", got, err)
		}
		mustCustom(t, s, "tk_upsertexpd0001", "v", testPassword, expiring(-1))
		if _, err := s.TokenUpsert(ctx, "tk_upsertexpd0001", "v2", testPassword); !errors.Is(err, vaultstore.ErrTokenExpired) {
			t.Errorf("TokenUpsert(expired) = %v, want ErrTokenExpired", err)
		}
		if _, err := s.TokenUpsert(ctx, "", "v", "Zq9"); !errors.Is(err, vaultstore.ErrPasswordInvalid) {
			t.Errorf("TokenUpsert with a weak password = %v, want ErrPasswordInvalid", err)
		}
		if n, _ := s.RecordCount(ctx, vaultstore.RecordQuery().SetSoftDeletedInclude(true)); n != 2 {
			t.Errorf("%d rows, want 2", n)
		}
	})
}

// ---------------------------------------------------------------------------
// TokenDelete, TokenSoftDelete, TokenExists

func TestTokenDeleteSoftDeleteExists(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db)
		all := func() int64 {
			return countRows(t, db, "SELECT COUNT(*) FROM "+s.GetVaultTableName())
		}
		mustCustom(t, s, "tk_del00000000001", "v", testPassword)
		mustCustom(t, s, "tk_del00000000002", "v", testPassword)
		mustCustom(t, s, "tk_del00000000003", "v", testPassword, expiring(-1))

		exists := func(tok string, want bool) {
			t.Helper()
			if ok, err := s.TokenExists(ctx, tok); err != nil || ok != want {
				t.Errorf("TokenExists(%q) = %v, %v, want %v", tok, ok, err, want)
			}
		}
		exists("tk_del00000000001", true)
		exists("tk_del00000000003", true) // expired still exists
		exists("tk_delabsent00001", false)
		exists("tk_DEL00000000001", false)
		if _, err := s.TokenExists(ctx, ""); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("TokenExists(\"\") = %v, want ErrValidationFailed", err)
		}
		if _, err := s.TokenExists(ctx, "tk_a b"); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("TokenExists(with space) = %v, want ErrValidationFailed", err)
		}

		// Hard delete of a live token.
		if err := s.TokenDelete(ctx, "tk_del00000000001"); err != nil {
			t.Fatalf("TokenDelete: %v", err)
		}
		exists("tk_del00000000001", false)
		if all() != 2 {
			t.Errorf("%d rows after hard delete, want 2", all())
		}
		if err := s.TokenDelete(ctx, "tk_del00000000001"); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("TokenDelete(deleted) = %v, want ErrRecordNotFound", err)
		}
		if err := s.TokenDelete(ctx, "tk_delabsent00001"); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("TokenDelete(absent) = %v, want ErrRecordNotFound", err)
		}
		if err := s.TokenDelete(ctx, ""); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("TokenDelete(\"\") = %v, want ErrValidationFailed", err)
		}
		// A hard-deleted token is free again.
		mustCustom(t, s, "tk_del00000000001", "reborn", testPassword)
		if v, err := s.TokenRead(ctx, "tk_del00000000001", testPassword); err != nil || v != "reborn" {
			t.Errorf("recreated token = %q, %v", v, err)
		}

		// Soft delete.
		if err := s.TokenSoftDelete(ctx, "tk_del00000000002"); err != nil {
			t.Fatalf("TokenSoftDelete: %v", err)
		}
		exists("tk_del00000000002", false)
		if _, err := s.TokenRead(ctx, "tk_del00000000002", testPassword); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("TokenRead(soft-deleted) = %v, want ErrRecordNotFound", err)
		}
		if err := s.TokenSoftDelete(ctx, "tk_del00000000002"); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("TokenSoftDelete twice = %v, want ErrRecordNotFound", err)
		}
		if err := s.TokenSoftDelete(ctx, "tk_delabsent00001"); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("TokenSoftDelete(absent) = %v, want ErrRecordNotFound", err)
		}
		if err := s.TokenSoftDelete(ctx, ""); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("TokenSoftDelete(\"\") = %v, want ErrValidationFailed", err)
		}
		if all() != 3 {
			t.Errorf("%d rows after soft delete, want 3 (soft delete keeps the row)", all())
		}
		// Soft-deleting an expired token works; it then does not exist.
		if err := s.TokenSoftDelete(ctx, "tk_del00000000003"); err != nil {
			t.Errorf("TokenSoftDelete(expired) = %v", err)
		}
		exists("tk_del00000000003", false)

		// Hard delete removes soft-deleted rows too.
		if err := s.TokenDelete(ctx, "tk_del00000000002"); err != nil {
			t.Errorf("TokenDelete(soft-deleted) = %v", err)
		}
		if err := s.TokenDelete(ctx, "tk_del00000000003"); err != nil {
			t.Errorf("TokenDelete(expired, soft-deleted) = %v", err)
		}
		if all() != 1 {
			t.Errorf("%d rows left, want 1", all())
		}
	})
}

// ---------------------------------------------------------------------------
// TokenRenew

func TestTokenRenew(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		const tok = "tk_renew000000001"
		mustCustom(t, s, tok, "renewed", testPassword, expiring(-1))
		if _, err := s.TokenRead(ctx, tok, testPassword); !errors.Is(err, vaultstore.ErrTokenExpired) {
			t.Fatalf("before renew: %v, want ErrTokenExpired", err)
		}
		if err := s.TokenRenew(ctx, tok, timeIn(1)); err != nil {
			t.Fatalf("TokenRenew(expired, +1h): %v", err)
		}
		if v, err := s.TokenRead(ctx, tok, testPassword); err != nil || v != "renewed" {
			t.Errorf("after renew: %q, %v", v, err)
		}

		at := time.Date(2100, 1, 2, 3, 4, 5, 999, time.FixedZone("UTC+1", 3600))
		for i := range 3 { // the same time again must not read as "not found" (MySQL)
			if err := s.TokenRenew(ctx, tok, at); err != nil {
				t.Errorf("TokenRenew #%d with the same time: %v", i+1, err)
			}
		}
		if got := rowOf(t, s, tok).GetExpiresAt(); got != "2100-01-02 02:04:05" {
			t.Errorf("expires_at = %q, want 2100-01-02 02:04:05 (UTC)", got)
		}

		for i := range 2 {
			if err := s.TokenRenew(ctx, tok, time.Time{}); err != nil {
				t.Errorf("TokenRenew #%d with the zero time: %v", i+1, err)
			}
		}
		rec, err := s.RecordFindByToken(ctx, tok)
		if err != nil || rec == nil {
			t.Fatalf("RecordFindByToken = %v, %v", rec, err)
		}
		if rec.GetExpiresAt() != vaultstore.MAX_DATETIME {
			t.Errorf("expires_at after renew(zero) = %q, want %q", rec.GetExpiresAt(), vaultstore.MAX_DATETIME)
		}

		if err := s.TokenRenew(ctx, tok, timeIn(-1)); err != nil {
			t.Errorf("TokenRenew into the past: %v", err)
		}
		if _, err := s.TokenRead(ctx, tok, testPassword); !errors.Is(err, vaultstore.ErrTokenExpired) {
			t.Errorf("after renew into the past: %v, want ErrTokenExpired", err)
		}

		if err := s.TokenRenew(ctx, "tk_renewnone00001", timeIn(1)); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("TokenRenew(absent) = %v, want ErrRecordNotFound", err)
		}
		mustCustom(t, s, "tk_renewsoft00001", "v", testPassword, expiring(-1))
		if err := s.TokenSoftDelete(ctx, "tk_renewsoft00001"); err != nil {
			t.Fatal(err)
		}
		if err := s.TokenRenew(ctx, "tk_renewsoft00001", timeIn(1)); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("TokenRenew(soft-deleted) = %v, want ErrRecordNotFound", err)
		}
		if err := s.TokenRenew(ctx, "", timeIn(1)); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("TokenRenew(\"\") = %v, want ErrValidationFailed", err)
		}
	})
}

// ---------------------------------------------------------------------------
// TokensExpiredSoftDelete and TokensExpiredDelete

// seedExpiryMix stores two live, three expired, two expired and
// soft-deleted, and one soft-deleted but unexpired token, and returns the
// tokens of each kind.
func seedExpiryMix(t *testing.T, s *vaultstore.Store) (live, expired, expiredSoft, soft []string) {
	t.Helper()
	ctx := context.Background()
	live = []string{"tk_mixlive0000001", "tk_mixlive0000002"}
	expired = []string{"tk_mixexpd0000001", "tk_mixexpd0000002", "tk_mixexpd0000003"}
	expiredSoft = []string{"tk_mixexsd0000001", "tk_mixexsd0000002"}
	soft = []string{"tk_mixsoft0000001"}
	for _, tok := range live {
		mustCustom(t, s, tok, "live", testPassword, expiring(24))
	}
	for _, tok := range expired {
		mustCustom(t, s, tok, "expired", testPassword, expiring(-1))
	}
	for _, tok := range expiredSoft {
		mustCustom(t, s, tok, "expired", testPassword, expiring(-2))
		if err := s.TokenSoftDelete(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	for _, tok := range soft {
		mustCustom(t, s, tok, "soft", testPassword)
		if err := s.TokenSoftDelete(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	return live, expired, expiredSoft, soft
}

func tokensOf(rows map[string]map[string]string) []string {
	return slices.Sorted(maps.Keys(rows))
}

func TestTokensExpiredSoftDelete(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		live, expired, expiredSoft, soft := seedExpiryMix(t, s)
		before := storedRows(t, s)

		n, err := s.TokensExpiredSoftDelete(ctx)
		if err != nil || n != int64(len(expired)) {
			t.Errorf("TokensExpiredSoftDelete = %d, %v, want %d", n, err, len(expired))
		}
		if n, err := s.TokensExpiredSoftDelete(ctx); err != nil || n != 0 {
			t.Errorf("second TokensExpiredSoftDelete = %d, %v, want 0", n, err)
		}
		after := storedRows(t, s)
		if len(after) != len(before) {
			t.Errorf("%d rows after soft delete, want %d (nothing removed)", len(after), len(before))
		}
		for _, tok := range expired {
			if ok, _ := s.TokenExists(ctx, tok); ok {
				t.Errorf("expired %q still exists after TokensExpiredSoftDelete", tok)
			}
			if after[tok][vaultstore.COLUMN_SOFT_DELETED_AT] == vaultstore.MAX_DATETIME {
				t.Errorf("expired %q not soft-deleted", tok)
			}
			if after[tok][vaultstore.COLUMN_VAULT_VALUE] != before[tok][vaultstore.COLUMN_VAULT_VALUE] {
				t.Errorf("value of %q changed", tok)
			}
		}
		for _, tok := range live {
			if v, err := s.TokenRead(ctx, tok, testPassword); err != nil || v != "live" {
				t.Errorf("live %q after TokensExpiredSoftDelete: %q, %v", tok, v, err)
			}
		}
		// Rows already soft-deleted keep their soft-delete time.
		for _, tok := range append(slices.Clone(expiredSoft), soft...) {
			if !maps.Equal(after[tok], before[tok]) {
				t.Errorf("already soft-deleted %q changed: %v -> %v", tok, before[tok], after[tok])
			}
		}

		// Every expired row goes, soft-deleted or not.
		n, err = s.TokensExpiredDelete(ctx)
		if want := int64(len(expired) + len(expiredSoft)); err != nil || n != want {
			t.Errorf("TokensExpiredDelete after soft delete = %d, %v, want %d", n, err, want)
		}
		want := slices.Sorted(slices.Values(append(slices.Clone(live), soft...)))
		if got := tokensOf(storedRows(t, s)); !slices.Equal(got, want) {
			t.Errorf("rows left %v, want %v", got, want)
		}
	})
}

func TestTokensExpiredDelete(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		live, expired, expiredSoft, soft := seedExpiryMix(t, s)
		before := storedRows(t, s)

		n, err := s.TokensExpiredDelete(ctx)
		if want := int64(len(expired) + len(expiredSoft)); err != nil || n != want {
			t.Errorf("TokensExpiredDelete = %d, %v, want %d", n, err, want)
		}
		if n, err := s.TokensExpiredDelete(ctx); err != nil || n != 0 {
			t.Errorf("second TokensExpiredDelete = %d, %v, want 0", n, err)
		}
		after := storedRows(t, s)
		want := slices.Sorted(slices.Values(append(slices.Clone(live), soft...)))
		if got := tokensOf(after); !slices.Equal(got, want) {
			t.Errorf("rows left %v, want %v", got, want)
		}
		for _, tok := range want {
			if !maps.Equal(after[tok], before[tok]) {
				t.Errorf("%q changed: %v -> %v", tok, before[tok], after[tok])
			}
		}
		if n, err := s.TokensExpiredSoftDelete(ctx); err != nil || n != 0 {
			t.Errorf("TokensExpiredSoftDelete with nothing expired = %d, %v, want 0", n, err)
		}
	})
}

// ---------------------------------------------------------------------------
// TokensRead and TokensReadToResolvedMap

func TestTokensRead(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		const secret = "bulk-secret-Kp4Vn"
		mustCustom(t, s, "tk_bulk0000000001", "one", pwOld)
		mustCustom(t, s, "tk_bulk0000000002", "", pwOld)
		mustCustom(t, s, "tk_bulk0000000003", secret, pwOld)
		mustCustom(t, s, "tk_bulkexpd000001", "expired", pwOld, expiring(-1))
		mustCustom(t, s, "tk_bulksoft000001", "soft", pwOld)
		mustCustom(t, s, "tk_bulkother00001", "other", pwOther)
		if err := s.TokenSoftDelete(ctx, "tk_bulksoft000001"); err != nil {
			t.Fatal(err)
		}

		got, err := s.TokensRead(ctx, []string{
			"tk_bulk0000000001", "tk_bulk0000000002", "tk_bulk0000000003",
			"tk_bulk0000000001", "tk_bulkexpd000001", "tk_bulk0000000003",
		}, pwOld)
		want := map[string]string{"tk_bulk0000000001": "one", "tk_bulk0000000002": "", "tk_bulk0000000003": secret}
		if err != nil || !maps.Equal(got, want) {
			t.Errorf("TokensRead = %v, %v, want %v", got, err, want)
		}
		if _, ok := got["tk_bulkexpd000001"]; ok {
			t.Errorf("expired token in the map")
		}

		if got, err := s.TokensRead(ctx, []string{"tk_bulkexpd000001"}, pwOld); err != nil || len(got) != 0 || got == nil {
			t.Errorf("TokensRead(only expired) = %#v, %v, want empty map", got, err)
		}
		for _, in := range [][]string{nil, {}} {
			got, err := s.TokensRead(ctx, in, pwOld)
			if err != nil || got == nil || len(got) != 0 {
				t.Errorf("TokensRead(%#v) = %#v, %v, want empty non-nil map", in, got, err)
			}
		}

		got, err = s.TokensRead(ctx, []string{"tk_bulk0000000001", "tk_bulkabsent0001", "tk_bulkabsent0002"}, pwOld)
		if !errors.Is(err, vaultstore.ErrRecordNotFound) || got != nil {
			t.Errorf("TokensRead(absent) = %v, %v, want ErrRecordNotFound", got, err)
		} else {
			for _, tok := range []string{"tk_bulkabsent0001", "tk_bulkabsent0002"} {
				if !strings.Contains(err.Error(), tok) {
					t.Errorf("error %q does not name %q", err, tok)
				}
			}
			if strings.Contains(err.Error(), "tk_bulk0000000001") {
				t.Errorf("error %q names a token that was found", err)
			}
		}
		if _, err := s.TokensRead(ctx, []string{"tk_bulk0000000001", "tk_bulksoft000001"}, pwOld); !errors.Is(err, vaultstore.ErrRecordNotFound) || !strings.Contains(fmt.Sprint(err), "tk_bulksoft000001") {
			t.Errorf("TokensRead(soft-deleted) = %v, want ErrRecordNotFound naming it", err)
		}
		for _, bad := range [][]string{{""}, {"tk_bulk0000000001", ""}, {"tk_bulk 0001"}, {"tk_" + strings.Repeat("b", 38)}} {
			if _, err := s.TokensRead(ctx, bad, pwOld); !errors.Is(err, vaultstore.ErrValidationFailed) {
				t.Errorf("TokensRead(%q) = %v, want ErrValidationFailed", bad, err)
			}
		}

		got, err = s.TokensRead(ctx, []string{"tk_bulk0000000001", "tk_bulk0000000003"}, pwNew)
		if !errors.Is(err, vaultstore.ErrInvalidPassword) || got != nil {
			t.Errorf("TokensRead(wrong password) = %v, %v, want ErrInvalidPassword", got, err)
		}
		checkNoSecret(t, "TokensRead(wrong password)", err, pwNew, pwOld, secret)
		// One value under another password fails the whole call.
		if _, err := s.TokensRead(ctx, []string{"tk_bulk0000000001", "tk_bulkother00001"}, pwOld); !errors.Is(err, vaultstore.ErrInvalidPassword) {
			t.Errorf("TokensRead(mixed passwords) = %v, want ErrInvalidPassword", err)
		}
	})
}

func TestTokensReadManyTokens(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		// v2, which binds no token, lets the other rows carry copies of a
		// few ciphertexts the store encrypted.
		s := newStore(t, b.open(t), writeV2)
		const total, templates = 2500, 16
		cipher := make([]string, templates)
		for i := range templates {
			tok := tokenN(i)
			mustCustom(t, s, tok, fmt.Sprint("value ", i), testPassword)
			cipher[i] = rowOf(t, s, tok).GetValue()
		}
		workers := 1
		if b.name != "sqlite" {
			workers = 8
		}
		var wg sync.WaitGroup
		var failed atomic.Bool
		for w := range workers {
			wg.Go(func() {
				for i := templates + w; i < total; i += workers {
					r := vaultstore.NewRecord().SetToken(tokenN(i)).SetValue(cipher[i%templates])
					if err := s.RecordCreate(ctx, r); err != nil {
						if !failed.Swap(true) {
							t.Errorf("RecordCreate(%s): %v", tokenN(i), err)
						}
						return
					}
				}
			})
		}
		wg.Wait()
		if failed.Load() {
			t.FailNow()
		}
		tokens := make([]string, 0, total+10)
		for i := range total {
			tokens = append(tokens, tokenN(i))
		}
		tokens = append(tokens, tokens[:10]...) // duplicates across chunks
		got, err := s.TokensRead(ctx, tokens, testPassword)
		if err != nil {
			t.Fatalf("TokensRead(%d tokens): %v", len(tokens), err)
		}
		if len(got) != total {
			t.Errorf("TokensRead returned %d values, want %d", len(got), total)
		}
		for i := range total {
			if v, ok := got[tokenN(i)]; !ok || v != fmt.Sprint("value ", i%templates) {
				t.Errorf("%s = %q, %v, want %q", tokenN(i), v, ok, fmt.Sprint("value ", i%templates))
				break
			}
		}
		// An absent token in the last chunk is still reported.
		tokens = append(tokens[:total:total], "tk_notthere000001")
		if _, err := s.TokensRead(ctx, tokens, testPassword); !errors.Is(err, vaultstore.ErrRecordNotFound) || !strings.Contains(fmt.Sprint(err), "tk_notthere000001") {
			t.Errorf("TokensRead(%d tokens, last absent) = %v, want ErrRecordNotFound naming it", len(tokens), err)
		}
	})
}

func TestTokensReadToResolvedMap(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		mustCustom(t, s, "tk_resolve0000001", "db-password", testPassword)
		mustCustom(t, s, "tk_resolve0000002", "", testPassword)
		mustCustom(t, s, "tk_resolveexpd001", "gone", testPassword, expiring(-1))
		in := map[string]string{
			"DB_PASSWORD":  "tk_resolve0000001",
			"DB_PASSWORD2": "tk_resolve0000001", // shares the token
			"EMPTY":        "tk_resolve0000002",
			"EXPIRED":      "tk_resolveexpd001",
		}
		got, err := s.TokensReadToResolvedMap(ctx, in, testPassword)
		want := map[string]string{"DB_PASSWORD": "db-password", "DB_PASSWORD2": "db-password", "EMPTY": ""}
		if err != nil || !maps.Equal(got, want) {
			t.Errorf("TokensReadToResolvedMap = %#v, %v, want %#v", got, err, want)
		}
		if _, ok := got["EMPTY"]; !ok {
			t.Errorf("key with an empty value left out")
		}

		in["MISSING"] = "tk_resolvenone001"
		if got, err := s.TokensReadToResolvedMap(ctx, in, testPassword); !errors.Is(err, vaultstore.ErrRecordNotFound) || got != nil {
			t.Errorf("TokensReadToResolvedMap(absent) = %v, %v, want ErrRecordNotFound", got, err)
		} else if !strings.Contains(err.Error(), "tk_resolvenone001") {
			t.Errorf("error %q does not name the absent token", err)
		}
		delete(in, "MISSING")
		if _, err := s.TokensReadToResolvedMap(ctx, in, pwOther); !errors.Is(err, vaultstore.ErrInvalidPassword) {
			t.Errorf("TokensReadToResolvedMap(wrong password) = %v, want ErrInvalidPassword", err)
		}
		if _, err := s.TokensReadToResolvedMap(ctx, map[string]string{"K": ""}, testPassword); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("TokensReadToResolvedMap(empty token) = %v, want ErrValidationFailed", err)
		}
		for _, empty := range []map[string]string{nil, {}} {
			if got, err := s.TokensReadToResolvedMap(ctx, empty, testPassword); err != nil || len(got) != 0 {
				t.Errorf("TokensReadToResolvedMap(%#v) = %#v, %v, want empty", empty, got, err)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// TokensChangePassword

func TestTokensChangePasswordBasic(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		mustCustom(t, s, "tk_rekeylive00001", "live 1", pwOld)
		mustCustom(t, s, "tk_rekeylive00002", "", pwOld)
		mustCustom(t, s, "tk_rekeysoft00001", "soft", pwOld)
		mustCustom(t, s, "tk_rekeyexpd00001", "expired", pwOld, expiring(-1))
		mustCustom(t, s, "tk_rekeyothr00001", "other", pwOther)
		mustCustom(t, s, "tk_rekeyothr00002", "other soft", pwOther)
		mustCreateRecord(t, s, "tk_rekeyraw000001", "not a ciphertext at all")
		for _, tok := range []string{"tk_rekeysoft00001", "tk_rekeyothr00002"} {
			if err := s.TokenSoftDelete(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		before := storedRows(t, s)

		// A new password that breaks the policy changes nothing.
		n, err := s.TokensChangePassword(ctx, pwOld, "Zq9")
		if !errors.Is(err, vaultstore.ErrPasswordInvalid) || n != 0 {
			t.Errorf("TokensChangePassword(weak new password) = %d, %v, want 0, ErrPasswordInvalid", n, err)
		}
		checkNoSecret(t, "TokensChangePassword", err, pwOld, "Zq9")
		if got := storedRows(t, s); !maps.EqualFunc(got, before, maps.Equal) {
			t.Errorf("rejected rotation changed rows")
		}

		n, err = s.TokensChangePassword(ctx, pwOld, pwNew)
		if err != nil || n != 4 {
			t.Errorf("TokensChangePassword = %d, %v, want 4 (2 live, 1 soft-deleted, 1 expired)", n, err)
		}
		after := storedRows(t, s)
		for _, tok := range []string{"tk_rekeyothr00001", "tk_rekeyothr00002", "tk_rekeyraw000001"} {
			if !maps.Equal(after[tok], before[tok]) {
				t.Errorf("%q not under the old password changed:\n%v\n%v", tok, before[tok], after[tok])
			}
		}
		for _, tok := range []string{"tk_rekeylive00001", "tk_rekeylive00002", "tk_rekeysoft00001", "tk_rekeyexpd00001"} {
			if after[tok][vaultstore.COLUMN_VAULT_VALUE] == before[tok][vaultstore.COLUMN_VAULT_VALUE] {
				t.Errorf("%q was not re-encrypted", tok)
			}
			for _, c := range []string{vaultstore.COLUMN_EXPIRES_AT, vaultstore.COLUMN_SOFT_DELETED_AT, vaultstore.COLUMN_ID} {
				if after[tok][c] != before[tok][c] {
					t.Errorf("%q: %s changed %q -> %q", tok, c, before[tok][c], after[tok][c])
				}
			}
		}
		for tok, want := range map[string]string{"tk_rekeylive00001": "live 1", "tk_rekeylive00002": ""} {
			if v, err := s.TokenRead(ctx, tok, pwNew); err != nil || v != want {
				t.Errorf("TokenRead(%q, new) = %q, %v, want %q", tok, v, err, want)
			}
			if _, err := s.TokenRead(ctx, tok, pwOld); !errors.Is(err, vaultstore.ErrInvalidPassword) {
				t.Errorf("TokenRead(%q, old) = %v, want ErrInvalidPassword", tok, err)
			}
		}
		if v, err := s.TokenRead(ctx, "tk_rekeyothr00001", pwOther); err != nil || v != "other" {
			t.Errorf("record under another password: %q, %v", v, err)
		}
		// The soft-deleted row: restore it, then read it. (v3 binds the
		// token, so its value cannot be read through a copy.)
		copyTok := "tk_rekeysoft00001"
		if err := s.RecordUpdate(ctx, rowOf(t, s, copyTok).SetSoftDeletedAt(vaultstore.MAX_DATETIME)); err != nil {
			t.Fatalf("restoring the soft-deleted record: %v", err)
		}
		if v, err := s.TokenRead(ctx, copyTok, pwNew); err != nil || v != "soft" {
			t.Errorf("soft-deleted value with the new password: %q, %v", v, err)
		}
		if _, err := s.TokenRead(ctx, copyTok, pwOld); !errors.Is(err, vaultstore.ErrInvalidPassword) {
			t.Errorf("soft-deleted value with the old password: %v, want ErrInvalidPassword", err)
		}
		// The expired row: renew it and read.
		if err := s.TokenRenew(ctx, "tk_rekeyexpd00001", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if v, err := s.TokenRead(ctx, "tk_rekeyexpd00001", pwNew); err != nil || v != "expired" {
			t.Errorf("expired value after renew, new password: %q, %v", v, err)
		}

		// Nothing is left under the old password.
		if n, err := s.TokensChangePassword(ctx, pwOld, pwNew); err != nil || n != 0 {
			t.Errorf("second TokensChangePassword = %d, %v, want 0", n, err)
		}
		// Back again: the count is exact the other way too.
		if n, err := s.TokensChangePassword(ctx, pwNew, pwOld); err != nil || n != 4 {
			t.Errorf("TokensChangePassword back = %d, %v, want 4", n, err)
		}
	})
}

// TestTokensChangePasswordFromLegacyPassword: the old password is not
// checked against the policy, so short legacy passwords can be rotated away.
func TestTokensChangePasswordFromLegacyPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openMemorySQLite(t)
	vault, meta := uniqueTables(t, db)
	open := func(minLength int) *vaultstore.Store {
		s, err := vaultstore.NewStore(vaultstore.NewStoreOptions{VaultTableName: vault, VaultMetaTableName: meta, DB: db, AutomigrateEnabled: true, CryptoConfig: testCrypto(), PasswordMinLength: minLength})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	mustCustom(t, open(1), "tk_legacyrekey001", "legacy", "pw")
	s := open(0)
	if n, err := s.TokensChangePassword(ctx, "pw", pwNew); err != nil || n != 1 {
		t.Errorf("TokensChangePassword(legacy \"pw\") = %d, %v, want 1", n, err)
	}
	if v, err := s.TokenRead(ctx, "tk_legacyrekey001", pwNew); err != nil || v != "legacy" {
		t.Errorf("after rotation: %q, %v", v, err)
	}
}

// ---------------------------------------------------------------------------
// Concurrency

// TestTokenConcurrentLifecycles runs create/read/update/delete cycles from
// several goroutines against one store; every goroutine must read back its
// own last write.
func TestTokenConcurrentLifecycles(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		s := newStore(t, db)
		const goroutines, cycles = 8, 25
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				fail := func(format string, args ...any) {
					t.Errorf("goroutine %d: "+format, append([]any{g}, args...)...)
				}
				for c := range cycles {
					v1 := fmt.Sprintf("g%d c%d created", g, c)
					tok, err := s.TokenCreate(ctx, v1, testPassword, 24)
					if err != nil {
						fail("cycle %d TokenCreate: %v", c, err)
						return
					}
					if v, err := s.TokenRead(ctx, tok, testPassword); err != nil || v != v1 {
						fail("cycle %d read after create = %q, %v, want %q", c, v, err, v1)
						return
					}
					v2 := fmt.Sprintf("g%d c%d updated", g, c)
					if err := s.TokenUpdate(ctx, tok, v2, pwNew); err != nil {
						fail("cycle %d TokenUpdate: %v", c, err)
						return
					}
					if v, err := s.TokenRead(ctx, tok, pwNew); err != nil || v != v2 {
						fail("cycle %d read after update = %q, %v, want %q", c, v, err, v2)
						return
					}
					v3 := fmt.Sprintf("g%d c%d upserted", g, c)
					if got, err := s.TokenUpsert(ctx, tok, v3, testPassword); err != nil || got != tok {
						fail("cycle %d TokenUpsert = %q, %v", c, got, err)
						return
					}
					m, err := s.TokensRead(ctx, []string{tok}, testPassword)
					if err != nil || m[tok] != v3 {
						fail("cycle %d TokensRead after upsert = %v, %v, want %q", c, m, err, v3)
						return
					}
					if c%2 == 0 {
						err = s.TokenDelete(ctx, tok)
					} else {
						err = s.TokenSoftDelete(ctx, tok)
					}
					if err != nil {
						fail("cycle %d delete: %v", c, err)
						return
					}
					if ok, err := s.TokenExists(ctx, tok); err != nil || ok {
						fail("cycle %d TokenExists after delete = %v, %v", c, ok, err)
						return
					}
					if _, err := s.TokenRead(ctx, tok, testPassword); !errors.Is(err, vaultstore.ErrRecordNotFound) {
						fail("cycle %d TokenRead after delete = %v, want ErrRecordNotFound", c, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		// Half the cycles hard-deleted, half soft-deleted.
		if n := countRows(t, db, "SELECT COUNT(*) FROM "+s.GetVaultTableName()); n != goroutines*(cycles/2) {
			t.Errorf("%d rows left, want %d soft-deleted", n, goroutines*(cycles/2))
		}
	}
	forEachDatabase(t, func(t *testing.T, b dbBackend) { run(t, b.open(t)) })
}

// ---------------------------------------------------------------------------
// Damaged values and out-of-range expiry times

// TestTokenReadDamagedValue: a stored value that is not a ciphertext, or one
// that was altered, is ErrDecryptionFailed (and, for v1/v2, may also match
// ErrInvalidPassword), never a plaintext.
func TestTokenReadDamagedValue(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		// v2 so that the damaged copies can live under other tokens; v3
		// damage is covered byte by byte in encdec_test.go.
		s := newStore(t, b.open(t), writeV2)
		mustCustom(t, s, "tk_damagesrc00001", "original", testPassword)
		good := rowOf(t, s, "tk_damagesrc00001").GetValue()
		// Flip one character in the middle of the ciphertext.
		mid := len(good) / 2
		flipped := byte('A')
		if good[mid] == 'A' {
			flipped = 'B'
		}
		tampered := good[:mid] + string(flipped) + good[mid+1:]
		cases := map[string]string{
			"tampered":         tampered,
			"truncated":        good[:len(good)-4],
			"not a ciphertext": "not a ciphertext at all",
			"unknown format":   "v9:" + good[3:],
			"empty":            "",
		}
		for _, name := range slices.Sorted(maps.Keys(cases)) {
			t.Run(name, func(t *testing.T) {
				tok := "tk_damaged" + fmt.Sprintf("%07d", len(name))
				_ = s.TokenDelete(ctx, tok)
				mustCreateRecord(t, s, tok, cases[name])
				v, err := s.TokenRead(ctx, tok, testPassword)
				if !errors.Is(err, vaultstore.ErrDecryptionFailed) || v != "" {
					t.Errorf("TokenRead(%s) = %q, %v, want ErrDecryptionFailed", name, v, err)
				}
				checkNoSecret(t, "TokenRead(damaged)", err, testPassword, "original")
				if _, err := s.TokensRead(ctx, []string{"tk_damagesrc00001", tok}, testPassword); !errors.Is(err, vaultstore.ErrDecryptionFailed) {
					t.Errorf("TokensRead with a %s value = %v, want ErrDecryptionFailed", name, err)
				}
			})
		}
	})
}

// TestTokenExpiryBeyondMaxDatetime: the store's "never" is
// 9999-12-31 23:59:59. An ExpiresAt later than that must either be refused
// (ErrValidationFailed) or mean "not expired"; a token created with an
// expiry in year 10000 must not read as already expired.
func TestTokenExpiryBeyondMaxDatetime(t *testing.T) {
	t.Parallel()
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))

		tok, err := s.TokenCreate(ctx, "far", testPassword, 20, vaultstore.TokenCreateOptions{ExpiresAt: far})
		switch {
		case errors.Is(err, vaultstore.ErrValidationFailed):
			// Refused: fine.
		case err != nil:
			t.Errorf("BUG: TokenCreate(ExpiresAt year 10000) = %v; want ErrValidationFailed or success (store_token_methods.go checkWrite/formatTimestamp do not bound the year)", err)
		default:
			if v, err := s.TokenRead(ctx, tok, testPassword); err != nil || v != "far" {
				t.Errorf("BUG: TokenCreate(ExpiresAt year 10000) succeeded but TokenRead = %q, %v; want the value (expires_at stored as %q, compared as text against now by isExpired)", v, err, rowOf(t, s, tok).GetExpiresAt())
			}
		}

		mustCustom(t, s, "tk_renewfar000001", "renew far", testPassword)
		err = s.TokenRenew(ctx, "tk_renewfar000001", far)
		switch {
		case errors.Is(err, vaultstore.ErrValidationFailed):
		case err != nil:
			t.Errorf("BUG: TokenRenew(year 10000) = %v; want ErrValidationFailed or success", err)
		default:
			if v, err := s.TokenRead(ctx, "tk_renewfar000001", testPassword); err != nil || v != "renew far" {
				t.Errorf("BUG: TokenRenew(year 10000) succeeded but TokenRead = %q, %v; want the value (expires_at stored as %q)", v, err, rowOf(t, s, "tk_renewfar000001").GetExpiresAt())
			}
		}
	})
}

// ---------------------------------------------------------------------------
// Interleavings with other clients

// TestTokenUpdateRenewSameTokenConcurrently: updates and renewals of one
// token from several goroutines all succeed; the store is documented as
// safe for concurrent use, and neither call has a failure mode for it.
func TestTokenUpdateRenewSameTokenConcurrently(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		s := newStore(t, db)
		const tok = "tk_samerow0000001"
		mustCustom(t, s, tok, "v", testPassword)
		var wg sync.WaitGroup
		var failures atomic.Int64
		for g := range 6 {
			wg.Go(func() {
				for i := range 40 {
					var err error
					if g%2 == 0 {
						err = s.TokenUpdate(ctx, tok, fmt.Sprint(g, "/", i), testPassword)
					} else {
						err = s.TokenRenew(ctx, tok, timeIn(1+i))
					}
					if err != nil && failures.Add(1) <= 3 {
						t.Errorf("goroutine %d op %d: %v", g, i, err)
					}
				}
			})
		}
		wg.Wait()
		if n := failures.Load(); n > 0 {
			t.Errorf("BUG: %d of 240 concurrent TokenUpdate/TokenRenew calls on one token failed "+
				"(on MariaDB: Error 1213 deadlock; TokenUpdate's UPDATE filters on expires_at and may lock the expires_at index before the row, "+
				"TokenRenew locks the row and then changes expires_at)", n)
		}
	}
	forEachDatabase(t, func(t *testing.T, b dbBackend) { run(t, b.open(t)) })
}
