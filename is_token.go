package vaultstore

import "strings"

// IsToken reports whether s has the token prefix. It does not check length
// or that the token exists; use it to tell tokens from plain values.
func IsToken(s string) bool {
	return strings.HasPrefix(s, TOKEN_PREFIX)
}

// IsTokenValidLength reports whether s has the token prefix and a total
// length within TOKEN_MIN_TOTAL_LENGTH..TOKEN_MAX_TOTAL_LENGTH.
func IsTokenValidLength(s string) bool {
	return len(s) >= TOKEN_MIN_TOTAL_LENGTH && len(s) <= TOKEN_MAX_TOTAL_LENGTH && IsToken(s)
}
