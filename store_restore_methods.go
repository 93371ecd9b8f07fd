package vaultstore

import (
	"context"
	"fmt"
)

// TokenRestore makes a soft-deleted token live again, with the value,
// expiry and metadata it had: only soft_deleted_at (back to MAX_DATETIME,
// "never") and updated_at change. An expired token comes back expired; renew
// it to read it. A token that is absent, or live (not soft-deleted), is
// ErrRecordNotFound.
func (s *Store) TokenRestore(ctx context.Context, token string) (err error) {
	ctx, op := s.observe(ctx, opTokenRestore, token)
	defer op.end(&err)
	if s.auditTx() {
		return s.auditedWrite(ctx, op, false, func(b *Store) error { return b.TokenRestore(ctx, token) })
	}
	if err := validateTokenInput(token); err != nil {
		return err
	}
	return s.restoreWhere(ctx, COLUMN_VAULT_TOKEN, token)
}

// RecordRestoreByID makes the soft-deleted record with id live again, as
// TokenRestore does for a token. A record that is absent, or live, is
// ErrRecordNotFound; an empty id is ErrValidationFailed.
func (s *Store) RecordRestoreByID(ctx context.Context, id string) (err error) {
	ctx, op := s.observe(ctx, opRecordRestoreByID)
	op.records = []string{id}
	defer op.end(&err)
	if s.auditTx() {
		return s.auditedWrite(ctx, op, false, func(b *Store) error { return b.RecordRestoreByID(ctx, id) })
	}
	if id == "" {
		return validationErrorf("record id is empty")
	}
	return s.restoreWhere(ctx, COLUMN_ID, id)
}

// restoreWhere is one UPDATE whose condition is the soft delete itself, so
// two concurrent restores cannot both succeed, and a record that is live is
// never touched. Nothing else about the record is stored apart from it:
// metadata, fingerprints and password identity links stay in the meta table
// through a soft delete, and are live again with the record.
func (s *Store) restoreWhere(ctx context.Context, column, key string) error {
	now := nowString()
	res := s.vault(ctx).
		Where(column+" = ?", key).
		Where(COLUMN_SOFT_DELETED_AT+" <= ?", now).
		Updates(map[string]any{COLUMN_SOFT_DELETED_AT: MAX_DATETIME, COLUMN_UPDATED_AT: now})
	if res.Error != nil {
		return fmt.Errorf("vaultstore: failed to restore record: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%w: no soft-deleted record with %s %q", ErrRecordNotFound, column, key)
	}
	return nil
}
