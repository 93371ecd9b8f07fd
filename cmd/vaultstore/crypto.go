package main

import (
	"strconv"
	"strings"

	"github.com/vaultstore/vaultstore"
)

// parseCrypto reads --crypto: a preset name, or custom Argon2id parameters
// "t=ITERATIONS,m=MEMORY_KIB,p=PARALLELISM" with the default sizes (meant
// for tests and small machines; stored v3 values carry their parameters, so
// only writes use them).
func parseCrypto(s string) (*vaultstore.CryptoConfig, error) {
	switch s {
	case "", "default":
		return vaultstore.DefaultCryptoConfig(), nil
	case "lightweight":
		return vaultstore.LightweightCryptoConfig(), nil
	case "high":
		return vaultstore.HighSecurityCryptoConfig(), nil
	}
	c := vaultstore.DefaultCryptoConfig()
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(val)
		if !ok || err != nil || n < 1 || seen[key] {
			return nil, usagef("--crypto %q: want default, lightweight, high or t=N,m=KIB,p=N", s)
		}
		seen[key] = true
		switch key {
		case "t":
			c.Iterations = n
		case "m":
			c.Memory = n
		case "p":
			c.Parallelism = n
		default:
			return nil, usagef("--crypto %q: unknown parameter %q (want t, m and p)", s, key)
		}
	}
	if len(seen) != 3 {
		return nil, usagef("--crypto %q: custom parameters need all of t, m and p", s)
	}
	return c, nil
}
