package vaultstore_test

import (
	"strings"
	"testing"

	"github.com/vaultstore/vaultstore"
)

func TestIsToken(t *testing.T) {
	cases := []struct {
		in           string
		token, valid bool
	}{
		{"tk_", true, false},
		{"tk_" + strings.Repeat("a", 11), true, false},
		{"tk_" + strings.Repeat("a", 12), true, true},
		{"tk_" + strings.Repeat("a", 37), true, true},
		{"tk_" + strings.Repeat("a", 38), true, false},
		{"TK_" + strings.Repeat("a", 20), false, false},
		{"plain value", false, false},
		{"", false, false},
	}
	for _, c := range cases {
		if got := vaultstore.IsToken(c.in); got != c.token {
			t.Errorf("IsToken(%q) = %v", c.in, got)
		}
		if got := vaultstore.IsTokenValidLength(c.in); got != c.valid {
			t.Errorf("IsTokenValidLength(%q) = %v", c.in, got)
		}
	}
}
