package vaultstore

import (
	"database/sql/driver"
	"fmt"
	"time"

	"gorm.io/gorm/clause"
)

// gormVaultRecord is one vault row as GORM reads and writes it. The table
// name is always given with Table, since callers choose it. Field names avoid
// CreatedAt/UpdatedAt so GORM applies none of its automatic timestamps: the
// store sets every timestamp itself, in the stored layout.
type gormVaultRecord struct {
	ID          string      `gorm:"column:id;primaryKey"`
	Token       string      `gorm:"column:vault_token"`
	Value       string      `gorm:"column:vault_value"`
	Created     dbTimestamp `gorm:"column:created_at"`
	Updated     dbTimestamp `gorm:"column:updated_at"`
	Expires     dbTimestamp `gorm:"column:expires_at"`
	SoftDeleted dbTimestamp `gorm:"column:soft_deleted_at"`
}

// toRecord converts a row to a Record. When only some columns were selected,
// only those are put in the record, so a caller cannot mistake an unselected
// column for an empty one.
func (g *gormVaultRecord) toRecord(columns []string) *Record {
	all := map[string]string{
		COLUMN_ID:              g.ID,
		COLUMN_VAULT_TOKEN:     g.Token,
		COLUMN_VAULT_VALUE:     g.Value,
		COLUMN_CREATED_AT:      string(g.Created),
		COLUMN_UPDATED_AT:      string(g.Updated),
		COLUMN_EXPIRES_AT:      string(g.Expires),
		COLUMN_SOFT_DELETED_AT: string(g.SoftDeleted),
	}
	// A NULL left by an older release reads as "never" for the two columns
	// where that is the meaning of an unset value.
	for _, c := range []string{COLUMN_EXPIRES_AT, COLUMN_SOFT_DELETED_AT} {
		if all[c] == "" {
			all[c] = MAX_DATETIME
		}
	}
	if len(columns) == 0 {
		return &Record{data: all}
	}
	data := make(map[string]string, len(columns))
	for _, c := range columns {
		data[c] = all[c]
	}
	return &Record{data: data}
}

// dbText is a text column read whatever the driver returns for it: string,
// or []byte from MySQL. NULL, which tables of older releases allow, reads as
// "", as it did through GORM.
type dbText string

func (t *dbText) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*t = ""
	case string:
		*t = dbText(v)
	case []byte:
		*t = dbText(v)
	default:
		return fmt.Errorf("vaultstore: cannot read text from %T", src)
	}
	return nil
}

// gormVaultMeta is one meta row.
type gormVaultMeta struct {
	ID         uint64 `gorm:"column:id;primaryKey;autoIncrement"`
	ObjectType string `gorm:"column:object_type"`
	ObjectID   string `gorm:"column:object_id"`
	Key        string `gorm:"column:meta_key"`
	Value      string `gorm:"column:meta_value"`
}

// metaOnConflict resolves a meta insert that meets an existing row on the
// table's unique (object type, object id, key) index: with the new value
// when update is set, otherwise by leaving the existing row alone.
func metaOnConflict(update bool) clause.OnConflict {
	c := clause.OnConflict{Columns: []clause.Column{{Name: COLUMN_OBJECT_TYPE}, {Name: COLUMN_OBJECT_ID}, {Name: COLUMN_META_KEY}}}
	if update {
		c.DoUpdates = clause.AssignmentColumns([]string{COLUMN_META_VALUE})
	} else {
		c.DoNothing = true
	}
	return c
}

// dbTimestamp is a timestamp column read into the stored layout whatever
// the driver returns for it: SQLite and MySQL without parseTime give text,
// PostgreSQL and MySQL with parseTime give time.Time. It is written as text,
// which every supported database converts to its datetime type.
type dbTimestamp string

func (t *dbTimestamp) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*t = ""
	case time.Time:
		// The column has no zone: keep the wall clock the driver decoded.
		*t = dbTimestamp(v.Format(timestampLayout))
	case string:
		*t = dbTimestamp(normalizeStoredTimestamp(v))
	case []byte:
		*t = dbTimestamp(normalizeStoredTimestamp(string(v)))
	default:
		return fmt.Errorf("vaultstore: cannot read a timestamp from %T", src)
	}
	return nil
}

func (t dbTimestamp) Value() (driver.Value, error) { return string(t), nil }
