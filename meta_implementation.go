package vaultstore

import (
	"fmt"
	"maps"
	"strconv"
)

// Meta is the MetaInterface implementation returned by NewMeta. The id is
// kept as its decimal string in Data, like every other column.
type Meta struct {
	data    map[string]string
	changed map[string]struct{}
}

var _ MetaInterface = (*Meta)(nil)

// NewMeta returns an empty meta row.
func NewMeta() MetaInterface {
	return &Meta{data: map[string]string{}}
}

// NewMetaFromExistingData returns a meta row holding a copy of data, with
// nothing marked changed.
func NewMetaFromExistingData(data map[string]string) MetaInterface {
	m := &Meta{data: maps.Clone(data)}
	if m.data == nil {
		m.data = map[string]string{}
	}
	return m
}

// Data returns a copy of all columns.
func (m *Meta) Data() map[string]string { return maps.Clone(m.data) }

// DataChanged returns a copy of the columns set since the row was made.
func (m *Meta) DataChanged() map[string]string {
	out := make(map[string]string, len(m.changed))
	for k := range m.changed {
		out[k] = m.data[k]
	}
	return out
}

// String identifies the row without its value, which may be a secret such
// as a password hash.
func (m *Meta) String() string {
	return fmt.Sprintf("vaultstore.Meta{object_type=%q object_id=%q key=%q}", m.GetObjectType(), m.GetObjectID(), m.GetKey())
}

func (m *Meta) set(key, value string) *Meta {
	if m.data == nil {
		m.data = map[string]string{}
	}
	if m.changed == nil {
		m.changed = map[string]struct{}{}
	}
	m.data[key] = value
	m.changed[key] = struct{}{}
	return m
}

// GetID returns the row id, or 0 when it is unset or not a number.
func (m *Meta) GetID() uint {
	id, err := strconv.ParseUint(m.data[COLUMN_ID], 10, 0)
	if err != nil {
		return 0
	}
	return uint(id)
}

func (m *Meta) GetObjectType() string { return m.data[COLUMN_OBJECT_TYPE] }
func (m *Meta) GetObjectID() string   { return m.data[COLUMN_OBJECT_ID] }
func (m *Meta) GetKey() string        { return m.data[COLUMN_META_KEY] }
func (m *Meta) GetValue() string      { return m.data[COLUMN_META_VALUE] }

func (m *Meta) SetID(id uint) MetaInterface {
	return m.set(COLUMN_ID, strconv.FormatUint(uint64(id), 10))
}
func (m *Meta) SetObjectType(v string) MetaInterface { return m.set(COLUMN_OBJECT_TYPE, v) }
func (m *Meta) SetObjectID(v string) MetaInterface   { return m.set(COLUMN_OBJECT_ID, v) }
func (m *Meta) SetKey(v string) MetaInterface        { return m.set(COLUMN_META_KEY, v) }
func (m *Meta) SetValue(v string) MetaInterface      { return m.set(COLUMN_META_VALUE, v) }
