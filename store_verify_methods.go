package vaultstore

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// VerifyValue reports whether the value stored under token opens with
// password, without returning it. Unlike TokenRead it looks at the row
// whatever its state: soft-deleted and expired values are checked too, so
// that an operator can confirm that every row of a vault still opens before
// and after a rotation (the vaultstore command's verify does this).
//
// It returns nil when the value opens, an error matching ErrInvalidPassword
// when the password does not open it (v1 and v2 failures match
// ErrDecryptionFailed too, since those formats cannot tell a wrong password
// from damage), ErrDecryptionFailed alone when the value is malformed, does
// not authenticate or is refused by the store's read policy, and
// ErrRecordNotFound when no row has the token. The plaintext is discarded;
// no error contains it.
func (s *Store) VerifyValue(ctx context.Context, token, password string) (err error) {
	ctx, op := s.observe(ctx, opVerifyValue, token)
	defer op.end(&err)
	if err := validateTokenInput(token); err != nil {
		return err
	}
	var row gormVaultRecord
	err = s.vault(ctx).Select(COLUMN_VAULT_VALUE).Where(COLUMN_VAULT_TOKEN+" = ?", token).Take(&row).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("%w: token %q", ErrRecordNotFound, token)
	case err != nil:
		return fmt.Errorf("vaultstore: failed to read token: %w", err)
	}
	// decryptOnce: verifying a whole vault must not fill the key cache with
	// one v2 key per value.
	if _, err := s.decryptOnce(ctx, row.Value, password, token); err != nil {
		return fmt.Errorf("token %q: %w", token, err)
	}
	return nil
}
