package vaultstore_test

import (
	"testing"

	"github.com/vaultstore/vaultstore"
)

func TestCryptoPresets(t *testing.T) {
	for name, c := range map[string]struct {
		got                     *vaultstore.CryptoConfig
		iterations, memory, par int
	}{
		"default":       {vaultstore.DefaultCryptoConfig(), 3, 65536, 4},
		"high security": {vaultstore.HighSecurityCryptoConfig(), 4, 131072, 4},
		"lightweight":   {vaultstore.LightweightCryptoConfig(), 2, 32768, 2},
	} {
		g := c.got
		if g.Iterations != c.iterations || g.Memory != c.memory || g.Parallelism != c.par ||
			g.KeyLength != 32 || g.SaltSize != 16 || g.NonceSize != 12 || g.TagSize != 16 {
			t.Errorf("%s preset = %+v", name, *g)
		}
	}
	if vaultstore.TOKEN_MIN_TOTAL_LENGTH != 15 || vaultstore.TOKEN_MAX_TOTAL_LENGTH != 40 {
		t.Error("token length bounds changed")
	}
	// Presets are fresh values: changing one does not change the next.
	vaultstore.DefaultCryptoConfig().Memory = 1
	if vaultstore.DefaultCryptoConfig().Memory != 65536 {
		t.Error("DefaultCryptoConfig returns shared state")
	}
}
