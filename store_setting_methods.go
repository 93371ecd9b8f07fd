package vaultstore

import (
	"context"
	"fmt"
)

// maxSettingKeyLength is the width of the meta_key column.
const maxSettingKeyLength = 50

// GetVaultSetting returns the value of the vault setting key. A missing
// setting, or a database without a meta table, is ErrRecordNotFound.
func (s *Store) GetVaultSetting(ctx context.Context, key string) (value string, err error) {
	ctx, op := s.observe(ctx, opGetVaultSetting)
	defer op.end(&err)
	if err := validateSettingKey(key); err != nil {
		return "", err
	}
	var rows []gormVaultMeta
	err = s.meta(ctx).
		Where(COLUMN_OBJECT_TYPE+" = ? AND "+COLUMN_OBJECT_ID+" = ? AND "+COLUMN_META_KEY+" = ?", OBJECT_TYPE_VAULT_SETTINGS, VAULT_SETTINGS_ID, key).
		Order(COLUMN_ID + " DESC").Limit(1).Find(&rows).Error
	if err != nil {
		// Reads must work on a database that has only the vault table.
		if cols, cerr := s.tableColumns(ctx, s.metaTable); cerr == nil && len(cols) == 0 {
			return "", fmt.Errorf("%w: vault setting %q", ErrRecordNotFound, key)
		}
		return "", fmt.Errorf("vaultstore: failed to read vault setting %q: %w", key, err)
	}
	if len(rows) == 0 {
		return "", fmt.Errorf("%w: vault setting %q", ErrRecordNotFound, key)
	}
	return rows[0].Value, nil
}

// SetVaultSetting sets the vault setting key to value in one atomic upsert:
// concurrent writers of one key leave exactly one row, holding one of their
// values. The meta table is created first if the database has none.
func (s *Store) SetVaultSetting(ctx context.Context, key, value string) (err error) {
	ctx, op := s.observe(ctx, opSetVaultSetting)
	defer op.end(&err)
	if err := validateSettingKey(key); err != nil {
		return err
	}
	if err := s.ensureMetaTable(ctx); err != nil {
		return err
	}
	row := gormVaultMeta{ObjectType: OBJECT_TYPE_VAULT_SETTINGS, ObjectID: VAULT_SETTINGS_ID, Key: key, Value: value}
	err = s.meta(ctx).Clauses(metaOnConflict(true)).Create(&row).Error
	if err != nil {
		return fmt.Errorf("vaultstore: failed to write vault setting %q: %w", key, err)
	}
	return nil
}

func validateSettingKey(key string) error {
	if key == "" {
		return validationErrorf("setting key is empty")
	}
	if len(key) > maxSettingKeyLength {
		return validationErrorf("setting key is longer than %d bytes", maxSettingKeyLength)
	}
	return nil
}
