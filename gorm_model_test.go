package vaultstore

import "testing"

func TestToRecordSelectsColumns(t *testing.T) {
	row := gormVaultRecord{ID: "1", Token: "tk_a", Value: "v", Created: "2020-01-01 00:00:00", Updated: "2020-01-01 00:00:00"}
	full := row.toRecord(nil)
	if full.GetExpiresAt() != MAX_DATETIME || full.GetSoftDeletedAt() != MAX_DATETIME {
		t.Errorf("NULL expiry or soft delete does not read as never: %v", full.Data())
	}
	if len(full.Data()) != 7 {
		t.Errorf("full record has %d columns", len(full.Data()))
	}
	part := row.toRecord([]string{COLUMN_VAULT_TOKEN})
	if d := part.Data(); len(d) != 1 || d[COLUMN_VAULT_TOKEN] != "tk_a" {
		t.Errorf("selected record = %v", d)
	}
	if v, err := dbTimestamp("2020-01-01 00:00:00").Value(); err != nil || v != "2020-01-01 00:00:00" {
		t.Errorf("Value() = %v, %v", v, err)
	}
}
