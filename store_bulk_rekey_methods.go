package vaultstore

import (
	"context"
	"fmt"
)

// rekeyBatchSize is how many rows one keyset page of a rotation reads.
const rekeyBatchSize = 256

// rekeyRetries bounds how often a row that changed under a rotation is read
// again before the rotation gives up on it for this run.
const rekeyRetries = 3

// TokensChangePassword re-encrypts, with newPassword, every record whose
// value opens with oldPassword, soft-deleted and expired ones included, and
// returns how many it changed. Records that do not open with oldPassword,
// or cannot be parsed, are left byte-identical.
//
// Rows are read in pages ordered by id (keyset pagination, never OFFSET),
// so rows rewritten during the scan are neither skipped nor visited twice,
// and each row is written with a compare-and-set on its old value, so a
// concurrent TokenUpdate is never overwritten. Every record opens with the
// old or the new password at every moment; after a cancellation or a crash
// a new call with the same passwords finishes the rest, and the count
// returned with a cancellation error is exact for what was written.
//
// newPassword must meet the policy (ErrPasswordInvalid); oldPassword is not
// checked, so legacy passwords can be rotated away.
func (s *Store) TokensChangePassword(ctx context.Context, oldPassword, newPassword string) (int, error) {
	if err := s.policy.check(newPassword); err != nil {
		return 0, err
	}
	changed := 0
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return changed, err
		}
		var rows []gormVaultRecord
		q := s.vault(ctx).Select(COLUMN_ID, COLUMN_VAULT_TOKEN, COLUMN_VAULT_VALUE).Order(COLUMN_ID + " ASC").Limit(rekeyBatchSize)
		if after != "" {
			q = q.Where(COLUMN_ID+" > ?", after)
		}
		if err := q.Find(&rows).Error; err != nil {
			return changed, fmt.Errorf("vaultstore: failed to read records to re-encrypt: %w", err)
		}
		if len(rows) == 0 {
			return changed, nil
		}
		after = rows[len(rows)-1].ID
		for i := range rows {
			if err := ctx.Err(); err != nil {
				return changed, err
			}
			ok, err := s.rekeyRow(ctx, &rows[i], oldPassword, newPassword)
			if err != nil {
				return changed, err
			}
			if ok {
				changed++
			}
		}
	}
}

// rekeyRow re-encrypts one row if it opens with oldPassword. When the row
// changed since it was read, it is read again: the new value may be under
// the old password too.
func (s *Store) rekeyRow(ctx context.Context, row *gormVaultRecord, oldPassword, newPassword string) (bool, error) {
	for range rekeyRetries {
		plain, err := s.decrypt(ctx, row.Value, oldPassword, row.Token)
		if err != nil {
			return false, nil
		}
		sealed, err := s.encrypt(ctx, plain, newPassword, row.Token)
		if err != nil {
			return false, err
		}
		ok, err := s.compareAndSetValue(s.db.WithContext(ctx), row.ID, row.Value, sealed)
		if err != nil {
			return false, fmt.Errorf("vaultstore: failed to write re-encrypted record %q: %w", row.ID, err)
		}
		if ok {
			return true, nil
		}
		var fresh []gormVaultRecord
		if err := s.vault(ctx).Select(COLUMN_ID, COLUMN_VAULT_TOKEN, COLUMN_VAULT_VALUE).Where(COLUMN_ID+" = ?", row.ID).Limit(1).Find(&fresh).Error; err != nil {
			return false, fmt.Errorf("vaultstore: failed to re-read record %q: %w", row.ID, err)
		}
		if len(fresh) == 0 {
			return false, nil // deleted meanwhile
		}
		*row = fresh[0]
	}
	return false, fmt.Errorf("vaultstore: record %q kept changing during re-encryption", row.ID)
}
