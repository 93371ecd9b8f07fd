package vaultstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/vaultstore/vaultstore"
)

// TestVerifyValue: live, soft-deleted and expired values open; a wrong
// password is ErrInvalidPassword, a damaged v3 value ErrDecryptionFailed
// alone, an absent token ErrRecordNotFound, and no error holds the value.
func TestVerifyValue(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		const secret = "verify-secret-value-8812"
		mustCustom(t, s, "tk_verify_live", secret, pwOld)
		mustCustom(t, s, "tk_verify_soft", secret, pwOld)
		mustCustom(t, s, "tk_verify_expired", secret, pwOld, expiring(-1))
		mustCustom(t, s, "tk_verify_damaged", secret, pwOld)
		if err := s.TokenSoftDelete(ctx, "tk_verify_soft"); err != nil {
			t.Fatal(err)
		}
		// Damage the ciphertext's last character (inside the tag).
		rec := rowOf(t, s, "tk_verify_damaged")
		v := rec.GetValue()
		last := byte('A')
		if v[len(v)-2] == 'A' {
			last = 'B'
		}
		rec.SetValue(v[:len(v)-2] + string(last) + v[len(v)-1:])
		if err := s.RecordUpdate(ctx, rec); err != nil {
			t.Fatal(err)
		}

		for _, token := range []string{"tk_verify_live", "tk_verify_soft", "tk_verify_expired"} {
			if err := s.VerifyValue(ctx, token, pwOld); err != nil {
				t.Errorf("VerifyValue(%s, right password) = %v, want nil", token, err)
			}
			err := s.VerifyValue(ctx, token, pwOther)
			if !errors.Is(err, vaultstore.ErrInvalidPassword) {
				t.Errorf("VerifyValue(%s, other password) = %v, want ErrInvalidPassword", token, err)
			}
			checkNoSecret(t, "VerifyValue", err, secret)
		}
		err := s.VerifyValue(ctx, "tk_verify_damaged", pwOld)
		if !errors.Is(err, vaultstore.ErrDecryptionFailed) || errors.Is(err, vaultstore.ErrInvalidPassword) {
			t.Errorf("VerifyValue(damaged) = %v, want ErrDecryptionFailed and not ErrInvalidPassword", err)
		}
		checkNoSecret(t, "VerifyValue", err, secret)
		if err := s.VerifyValue(ctx, "tk_verify_absent", pwOld); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("VerifyValue(absent) = %v, want ErrRecordNotFound", err)
		}
		if err := s.VerifyValue(ctx, "", pwOld); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("VerifyValue(\"\") = %v, want ErrValidationFailed", err)
		}
	})
}
