package vaultstore

import (
	"fmt"
	"maps"
)

// Record is the RecordInterface implementation returned by NewRecord and by
// the store's record methods. Its String method shows the id and token but
// never the stored value.
type Record struct {
	data    map[string]string
	changed map[string]struct{}
}

var _ RecordInterface = (*Record)(nil)

// NewRecord returns a record with a fresh id, created and updated now, that
// never expires and is not soft-deleted. The token and value are empty.
//
// It panics only if the operating system's random source fails, which
// crypto/rand itself treats as fatal.
func NewRecord() RecordInterface {
	id, err := newRecordID()
	if err != nil {
		panic(err)
	}
	now := nowString()
	return (&Record{}).
		SetID(id).
		SetCreatedAt(now).
		SetUpdatedAt(now).
		SetExpiresAt(MAX_DATETIME).
		SetSoftDeletedAt(MAX_DATETIME)
}

// NewRecordFromExistingData returns a record holding a copy of data, as if it
// had been loaded from the database: nothing is marked changed.
func NewRecordFromExistingData(data map[string]string) RecordInterface {
	r := &Record{data: maps.Clone(data)}
	if r.data == nil {
		r.data = map[string]string{}
	}
	return r
}

// Data returns a copy of all columns.
func (r *Record) Data() map[string]string {
	if r.data == nil {
		return map[string]string{}
	}
	return maps.Clone(r.data)
}

// DataChanged returns a copy of the columns set since the record was loaded
// or last written.
func (r *Record) DataChanged() map[string]string {
	out := make(map[string]string, len(r.changed))
	for k := range r.changed {
		out[k] = r.data[k]
	}
	return out
}

// String identifies the record without its value, so that printing a record
// in a log does not leak ciphertext or, for raw records, a plaintext.
func (r *Record) String() string {
	return fmt.Sprintf("vaultstore.Record{id=%q token=%q}", r.GetID(), r.GetToken())
}

// GoString is String, so that %#v does not print the value either.
func (r *Record) GoString() string { return r.String() }

func (r *Record) get(key string) string { return r.data[key] }

func (r *Record) set(key, value string) *Record {
	if r.data == nil {
		r.data = map[string]string{}
	}
	if r.changed == nil {
		r.changed = map[string]struct{}{}
	}
	r.data[key] = value
	r.changed[key] = struct{}{}
	return r
}

// markClean forgets which columns were changed, after the store wrote them.
func (r *Record) markClean() { r.changed = nil }

func (r *Record) GetCreatedAt() string     { return r.get(COLUMN_CREATED_AT) }
func (r *Record) GetExpiresAt() string     { return r.get(COLUMN_EXPIRES_AT) }
func (r *Record) GetSoftDeletedAt() string { return r.get(COLUMN_SOFT_DELETED_AT) }
func (r *Record) GetID() string            { return r.get(COLUMN_ID) }
func (r *Record) GetToken() string         { return r.get(COLUMN_VAULT_TOKEN) }
func (r *Record) GetUpdatedAt() string     { return r.get(COLUMN_UPDATED_AT) }
func (r *Record) GetValue() string         { return r.get(COLUMN_VAULT_VALUE) }

func (r *Record) SetCreatedAt(v string) RecordInterface     { return r.set(COLUMN_CREATED_AT, v) }
func (r *Record) SetExpiresAt(v string) RecordInterface     { return r.set(COLUMN_EXPIRES_AT, v) }
func (r *Record) SetSoftDeletedAt(v string) RecordInterface { return r.set(COLUMN_SOFT_DELETED_AT, v) }
func (r *Record) SetID(v string) RecordInterface            { return r.set(COLUMN_ID, v) }
func (r *Record) SetToken(v string) RecordInterface         { return r.set(COLUMN_VAULT_TOKEN, v) }
func (r *Record) SetUpdatedAt(v string) RecordInterface     { return r.set(COLUMN_UPDATED_AT, v) }
func (r *Record) SetValue(v string) RecordInterface         { return r.set(COLUMN_VAULT_VALUE, v) }
