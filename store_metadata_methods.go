package vaultstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"gorm.io/gorm"
)

// Per-token metadata: labels an application attaches to a token, kept in
// the meta table next to the record's other rows:
//
//	object_type  object_id         meta_key       meta_value
//	record       r_<record id>     md.<key>       <value>
//	record       r_<record id>     password_id    p_<32 digits>   (password identities)
//	record       r_<record id>     fingerprint    <fingerprint>   (FingerprintEnabled)
//
// Metadata keys are [a-z0-9_.-], so "md." (which no other key of a record
// starts with) keeps them apart from the store's own keys. Metadata is
// stored as given, not encrypted: it is for labels that the database may
// see (a tenant, a purpose, a source system), never for secrets.

// Bounds on metadata. Anything beyond them is ErrValidationFailed, naming
// the rule.
const (
	// MaxMetadataKeyLength is the longest metadata key, in characters
	// from [a-z0-9_.-].
	MaxMetadataKeyLength = 64
	// MaxMetadataValueSize is the largest metadata value, in bytes of
	// UTF-8.
	MaxMetadataValueSize = 1024
	// MaxMetadataPairs is how many metadata keys one token may carry.
	MaxMetadataPairs = 32
)

// META_KEY_METADATA_PREFIX starts the meta_key of every metadata row: the
// metadata key "tenant" is stored as "md.tenant".
const META_KEY_METADATA_PREFIX = "md."

// metaKeyWidth is the width of the meta table's meta_key column, wide
// enough for the prefix and the longest metadata key. Tables made by older
// releases (varchar(50)) are widened by AutoMigrate.
const metaKeyWidth = 100

// Bounds on TokensFindByMetadata's page size.
const (
	// DefaultFindLimit is the page size when FindOptions.Limit is zero.
	DefaultFindLimit = 100
	// MaxFindLimit is the largest FindOptions.Limit.
	MaxFindLimit = 10000
)

// FindOptions page through the results of a search.
type FindOptions struct {
	// Limit is the most tokens returned: zero means DefaultFindLimit, at
	// most MaxFindLimit.
	Limit int
	// After is a cursor: only tokens after it, in token order, are
	// returned. Pass the last token of a page to get the next one; "" starts
	// at the beginning.
	After string
}

// validateMetadataKey checks one key against the key rules.
func validateMetadataKey(key string) error {
	if key == "" || len(key) > MaxMetadataKeyLength {
		return validationErrorf("metadata key %q: keys are 1 to %d characters", truncateForError(key), MaxMetadataKeyLength)
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return validationErrorf("metadata key %q: keys may hold only a-z, 0-9, '_', '.' and '-'", truncateForError(key))
		}
	}
	return nil
}

// validateMetadataValue checks one value. The value itself never goes into
// the error: metadata is not secret, but it is the caller's data.
func validateMetadataValue(key, value string) error {
	switch {
	case len(value) > MaxMetadataValueSize:
		return validationErrorf("metadata value of %q is %d bytes, more than %d", key, len(value), MaxMetadataValueSize)
	case !utf8.ValidString(value):
		return validationErrorf("metadata value of %q is not valid UTF-8", key)
	case strings.IndexByte(value, 0) >= 0:
		return validationErrorf("metadata value of %q contains a NUL byte", key)
	}
	return nil
}

// truncateForError keeps a rejected key short in an error message.
func truncateForError(s string) string {
	if len(s) > MaxMetadataKeyLength+8 {
		return s[:MaxMetadataKeyLength+8] + "…"
	}
	return s
}

// validateMetadata checks every pair of metadata, in key order so that the
// error is the same on every call. Empty values are allowed (they mean
// "absent"); the pair count is checked by the caller, which knows what is
// stored already.
func validateMetadata(metadata map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(metadata)) {
		if err := validateMetadataKey(k); err != nil {
			return err
		}
		if err := validateMetadataValue(k, metadata[k]); err != nil {
			return err
		}
	}
	return nil
}

// metadataForCreate validates the metadata of a new token and returns the
// pairs to store (empty values left out).
func metadataForCreate(metadata map[string]string) (map[string]string, error) {
	if err := validateMetadata(metadata); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(metadata))
	for k, v := range metadata {
		if v != "" {
			out[k] = v
		}
	}
	if len(out) > MaxMetadataPairs {
		return nil, validationErrorf("metadata has %d pairs, more than %d per token", len(out), MaxMetadataPairs)
	}
	return out, nil
}

// recordObjectID is the meta table's object id of the record id.
func recordObjectID(id string) string { return RECORD_META_ID_PREFIX + id }

// recordMetaRecord is the condition on the meta table that selects rows of
// records, with the object type as a literal: the lookup index is partial
// (WHERE object_type = 'record') on SQLite and PostgreSQL, and a planner
// can only use it when the query says so in its text.
const recordMetaRecord = COLUMN_OBJECT_TYPE + " = '" + OBJECT_TYPE_RECORD + "'"

// writeMetadata stores metadata for the record id through db (a
// transaction), replacing values of keys already set.
func (s *Store) writeMetadata(db *gorm.DB, id string, metadata map[string]string) error {
	if len(metadata) == 0 {
		return nil
	}
	rows := make([]gormVaultMeta, 0, len(metadata))
	for _, k := range slices.Sorted(maps.Keys(metadata)) {
		rows = append(rows, gormVaultMeta{ObjectType: OBJECT_TYPE_RECORD, ObjectID: recordObjectID(id), Key: META_KEY_METADATA_PREFIX + k, Value: metadata[k]})
	}
	if err := db.Table(s.metaTable).Clauses(metaOnConflict(true)).Create(&rows).Error; err != nil {
		return fmt.Errorf("vaultstore: failed to store metadata: %w", err)
	}
	return nil
}

// readMetadata returns the metadata of the record id, read through db.
func (s *Store) readMetadata(db *gorm.DB, id string) (map[string]string, error) {
	var rows []gormVaultMeta
	err := db.Table(s.metaTable).Select(COLUMN_META_KEY, COLUMN_META_VALUE).
		Where(recordMetaRecord).
		Where(COLUMN_OBJECT_ID+" = ?", recordObjectID(id)).
		Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("vaultstore: failed to read metadata: %w", err)
	}
	out := map[string]string{}
	for _, r := range rows {
		if k, ok := strings.CutPrefix(r.Key, META_KEY_METADATA_PREFIX); ok {
			out[k] = r.Value
		}
	}
	return out, nil
}

// TokenMetadata returns the metadata of token: an empty map when it has
// none. An absent or soft-deleted token is ErrRecordNotFound; an expired
// one still has its metadata.
func (s *Store) TokenMetadata(ctx context.Context, token string) (metadata map[string]string, err error) {
	ctx, op := s.observe(ctx, opTokenMetadata, token)
	defer op.end(&err)
	row, err := s.liveRow(ctx, token)
	if err != nil {
		return nil, err
	}
	if err := s.ensureMetaTable(ctx); err != nil {
		return nil, err
	}
	return s.readMetadata(s.db.WithContext(ctx), row.ID)
}

// TokenMetadataSet sets the given metadata keys of token to their values,
// leaving other keys alone; an empty value removes its key. Keys are 1 to
// MaxMetadataKeyLength characters from [a-z0-9_.-], values at most
// MaxMetadataValueSize bytes of UTF-8 without NUL, and a token carries at
// most MaxMetadataPairs keys; anything else is ErrValidationFailed and
// nothing changes. An absent or soft-deleted token is ErrRecordNotFound.
//
// Metadata is stored unencrypted, in the meta table: never put secrets in
// it. The change is one transaction, which also refreshes the token's
// updated_at; concurrent changes to one token's metadata are serialised on
// its vault row, so the bound on pairs holds under concurrency.
func (s *Store) TokenMetadataSet(ctx context.Context, token string, metadata map[string]string) (err error) {
	ctx, op := s.observe(ctx, opTokenMetadataSet, token)
	defer op.end(&err)
	if err := validateTokenInput(token); err != nil {
		return err
	}
	if err := validateMetadata(metadata); err != nil {
		return err
	}
	row, err := s.liveRow(ctx, token)
	if err != nil {
		return err
	}
	if len(metadata) == 0 {
		return nil
	}
	if err := s.ensureMetaTable(ctx); err != nil {
		return err
	}
	set := map[string]string{}
	var remove []string
	for k, v := range metadata {
		if v == "" {
			remove = append(remove, META_KEY_METADATA_PREFIX+k)
		} else {
			set[k] = v
		}
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Lock the record first, in the order every writer takes (vault
		// row, then meta rows), and make sure it is still live.
		now := nowString()
		res := tx.Table(s.vaultTable).
			Where(COLUMN_ID+" = ?", row.ID).
			Where(COLUMN_SOFT_DELETED_AT+" > ?", now).
			Update(COLUMN_UPDATED_AT, now)
		if res.Error != nil {
			return fmt.Errorf("vaultstore: failed to update token: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			// MySQL counts only changed rows: updated_at may have been
			// this second already.
			var n int64
			err := tx.Table(s.vaultTable).Where(COLUMN_ID+" = ?", row.ID).Where(COLUMN_SOFT_DELETED_AT+" > ?", now).Count(&n).Error
			if err != nil {
				return fmt.Errorf("vaultstore: failed to read token: %w", err)
			}
			if n == 0 {
				return fmt.Errorf("%w: token %q", ErrRecordNotFound, token)
			}
		}
		if len(remove) > 0 {
			err := tx.Table(s.metaTable).
				Where(recordMetaRecord).
				Where(COLUMN_OBJECT_ID+" = ? AND "+COLUMN_META_KEY+" IN ?", recordObjectID(row.ID), remove).
				Delete(&gormVaultMeta{}).Error
			if err != nil {
				return fmt.Errorf("vaultstore: failed to remove metadata: %w", err)
			}
		}
		if err := s.writeMetadata(tx, row.ID, set); err != nil {
			return err
		}
		stored, err := s.readMetadata(tx, row.ID)
		if err != nil {
			return err
		}
		if len(stored) > MaxMetadataPairs {
			return validationErrorf("token %q would carry %d metadata pairs, more than %d", token, len(stored), MaxMetadataPairs)
		}
		return nil
	})
}

// TokensFindByMetadata returns the live (not soft-deleted) tokens whose
// metadata key holds value, in token order, at most options.Limit of them
// after options.After. Expired tokens are included: they still exist and
// can be renewed (TokensExpiredDelete removes them).
//
// The search is served by an index on the meta table (object type, key,
// value) and the vault table's primary key: its cost grows with the number
// of tokens that carry the label, never with the size of the vault. A bad
// key, an empty or oversized value, a negative or too large limit, or a
// malformed cursor is ErrValidationFailed.
func (s *Store) TokensFindByMetadata(ctx context.Context, key, value string, options ...FindOptions) (tokens []string, err error) {
	ctx, op := s.observe(ctx, opTokensFindByMetadata)
	defer func() { op.setCount(int64(len(tokens))); op.end(&err) }()
	if err := validateMetadataKey(key); err != nil {
		return nil, err
	}
	if value == "" {
		return nil, validationErrorf("metadata value to find is empty; empty values are not stored")
	}
	if err := validateMetadataValue(key, value); err != nil {
		return nil, err
	}
	limit, after, err := findOptions(options)
	if err != nil {
		return nil, err
	}
	if err := s.ensureMetaTable(ctx); err != nil {
		return nil, err
	}
	if err := s.db.WithContext(ctx).Raw(s.findByMetadataSQL(limit), META_KEY_METADATA_PREFIX+key, value, nowString(), after).Scan(&tokens).Error; err != nil {
		return nil, fmt.Errorf("vaultstore: failed to find tokens by metadata: %w", err)
	}
	if tokens == nil {
		tokens = []string{}
	}
	return tokens, nil
}

// findByMetadataSQL is the search of TokensFindByMetadata; its arguments
// are the meta key, the value, now and the cursor. The meta table leads:
// its lookup index finds the label's rows, and each record is then read by
// primary key.
func (s *Store) findByMetadataSQL(limit int) string {
	q := s.quoteIdent
	return fmt.Sprintf("SELECT v.%[1]s FROM %[2]s m JOIN %[3]s v ON v.%[4]s = SUBSTR(m.%[5]s, %[6]d)"+
		" WHERE m.%[7]s AND m.%[8]s = ? AND m.%[9]s = ? AND v.%[10]s > ? AND v.%[1]s > ? ORDER BY v.%[1]s LIMIT %[11]d",
		q(COLUMN_VAULT_TOKEN), q(s.metaTable), q(s.vaultTable), q(COLUMN_ID), q(COLUMN_OBJECT_ID), len(RECORD_META_ID_PREFIX)+1,
		recordMetaRecord, q(COLUMN_META_KEY), q(COLUMN_META_VALUE), q(COLUMN_SOFT_DELETED_AT), limit)
}

// findOptions validates the options of a search and returns its limit and
// cursor.
func findOptions(options []FindOptions) (int, string, error) {
	if len(options) > 1 {
		return 0, "", validationErrorf("at most one FindOptions may be given, got %d", len(options))
	}
	var o FindOptions
	if len(options) == 1 {
		o = options[0]
	}
	switch {
	case o.Limit == 0:
		o.Limit = DefaultFindLimit
	case o.Limit < 0 || o.Limit > MaxFindLimit:
		return 0, "", validationErrorf("FindOptions.Limit %d is outside 0..%d", o.Limit, MaxFindLimit)
	}
	if o.After != "" {
		if err := validateTokenInput(o.After); err != nil {
			return 0, "", err
		}
	}
	return o.Limit, o.After, nil
}

// ensureRecordMetaSchema gives the meta table what per-record rows need:
// a meta_key column wide enough for metadata keys, and the lookup index
// that serves TokensFindByMetadata and TokensFindByValue. It runs inside
// ensureMetaTable; each step changes nothing when it is already done.
func (s *Store) ensureRecordMetaSchema(ctx context.Context) error {
	if err := s.widenMetaKey(ctx); err != nil {
		return err
	}
	return s.ensureMetaLookupIndex(ctx)
}

// widenMetaKey widens a meta_key column narrower than metaKeyWidth, as
// older releases made it (varchar(50)). SQLite does not enforce varchar
// lengths and is left alone. On PostgreSQL widening a varchar rewrites
// nothing; MySQL keeps the column's character set, collation and
// nullability, and rebuilds the meta table once.
func (s *Store) widenMetaKey(ctx context.Context) error {
	if s.dialect == dialectSQLite {
		return nil
	}
	schema := "current_schema()"
	if s.dialect == dialectMySQL {
		schema = "DATABASE()"
	}
	var cols []struct {
		Width    *int64 `gorm:"column:width"`
		Nullable string `gorm:"column:nullable"`
		Charset  string `gorm:"column:charset"`
		Collate  string `gorm:"column:collate"`
	}
	err := s.db.WithContext(ctx).Raw("SELECT character_maximum_length AS width, is_nullable AS nullable, COALESCE(character_set_name, '') AS charset, COALESCE(collation_name, '') AS "+s.quoteIdent("collate")+
		" FROM information_schema.columns WHERE table_schema = "+schema+" AND table_name = ? AND column_name = ?", s.metaTable, COLUMN_META_KEY).Scan(&cols).Error
	if err != nil {
		return fmt.Errorf("vaultstore: failed to read the columns of %s: %w", s.metaTable, err)
	}
	if len(cols) != 1 || cols[0].Width == nil || *cols[0].Width >= metaKeyWidth {
		return nil // absent, text, or wide enough
	}
	q := s.quoteIdent
	var stmt string
	if s.dialect == dialectPostgres {
		stmt = fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE varchar(%d)", q(s.metaTable), q(COLUMN_META_KEY), metaKeyWidth)
	} else {
		c := cols[0]
		null := "NULL"
		if c.Nullable == "NO" {
			null = "NOT NULL"
		}
		// Names read from information_schema, checked before use.
		for _, name := range []string{c.Charset, c.Collate} {
			if strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
				return fmt.Errorf("vaultstore: column %s of %s has an unexpected character set or collation", COLUMN_META_KEY, s.metaTable)
			}
		}
		charset := ""
		if c.Charset != "" && c.Collate != "" {
			charset = fmt.Sprintf(" CHARACTER SET %s COLLATE %s", c.Charset, c.Collate)
		}
		stmt = fmt.Sprintf("ALTER TABLE %s MODIFY COLUMN %s varchar(%d)%s %s", q(s.metaTable), q(COLUMN_META_KEY), metaKeyWidth, charset, null)
	}
	if err := s.db.WithContext(ctx).Exec(stmt).Error; err != nil {
		return fmt.Errorf("vaultstore: failed to widen %s of %s: %w", COLUMN_META_KEY, s.metaTable, err)
	}
	return nil
}

// metaLookupPrefix is how many characters of meta_value MySQL's lookup
// index holds: MySQL cannot index a TEXT column whole. 255 characters of
// utf8mb4 are 1,020 bytes, well within InnoDB's 3,072-byte key limit
// together with the other columns; a longer value is found through its
// prefix and then compared whole.
const metaLookupPrefix = 255

// ensureMetaLookupIndex creates the meta table's lookup index unless an
// index of its name exists:
//
//	SQLite, PostgreSQL:  (meta_key, meta_value, object_id) WHERE object_type = 'record'
//	MySQL:               (object_type, meta_key, meta_value(255), object_id)
//
// The partial index holds only record rows, whose values are bounded, so
// a large vault setting can never exceed PostgreSQL's limit on the size of
// an index entry; MySQL has no partial indexes, and bounds the entry with
// a prefix instead. object_id last makes the index covering where it can
// be: the search reads the record id from the index.
func (s *Store) ensureMetaLookupIndex(ctx context.Context) error {
	name := "idx_" + s.metaTable + "_lookup"
	exists := func() (bool, error) {
		indexes, err := s.tableIndexes(ctx, s.metaTable)
		if err != nil {
			return false, err
		}
		return slices.ContainsFunc(indexes, func(ix indexInfo) bool { return ix.name == name }), nil
	}
	if ok, err := exists(); err != nil || ok {
		return err
	}
	q := s.quoteIdent
	var stmt string
	if s.dialect == dialectMySQL {
		stmt = fmt.Sprintf("CREATE INDEX %s ON %s (%s, %s, %s(%d), %s)", q(name), q(s.metaTable),
			q(COLUMN_OBJECT_TYPE), q(COLUMN_META_KEY), q(COLUMN_META_VALUE), metaLookupPrefix, q(COLUMN_OBJECT_ID))
	} else {
		stmt = fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (%s, %s, %s) WHERE %s", q(name), q(s.metaTable),
			q(COLUMN_META_KEY), q(COLUMN_META_VALUE), q(COLUMN_OBJECT_ID), recordMetaRecord)
	}
	if err := s.db.WithContext(ctx).Exec(stmt).Error; err != nil {
		if ok, herr := exists(); herr == nil && ok {
			return nil // another process made it meanwhile
		}
		return fmt.Errorf("vaultstore: failed to create index %s: %w", name, err)
	}
	return nil
}

// tokenExtras is what a new token stores besides its vault row: metadata
// and, with FingerprintEnabled, the fingerprint of its value, and whether a
// create deduplicates. The methods are nil-safe, so that a caller with
// nothing extra passes nil.
type tokenExtras struct {
	metadata    map[string]string
	fingerprint string // "" when fingerprints are off
	dedup       bool
	// value and password are kept for a deduplicating create, which
	// compares candidates with the value inside its transaction.
	value, password string
	found           string // the equal token a deduplicating create found
}

// tokenExtrasFor validates and prepares the extras of a token write with
// options (at most one, as checkWrite has checked). custom is set for
// TokenCreateCustom, which cannot deduplicate: it has no token to return
// but the caller's.
func (s *Store) tokenExtrasFor(ctx context.Context, value, password string, options []TokenCreateOptions, custom bool) (*tokenExtras, error) {
	var o TokenCreateOptions
	if len(options) > 0 {
		o = options[0]
	}
	metadata, err := metadataForCreate(o.Metadata)
	if err != nil {
		return nil, err
	}
	switch {
	case o.Deduplicate && custom:
		return nil, validationErrorf("Deduplicate applies to TokenCreate only; TokenCreateCustom stores the token it is given")
	case o.Deduplicate && !s.fingerprintEnabled:
		return nil, validationErrorf("Deduplicate needs NewStoreOptions.FingerprintEnabled")
	}
	fp, err := s.fingerprintOf(ctx, value, password)
	if err != nil {
		return nil, err
	}
	if len(metadata) == 0 && fp == "" {
		return nil, nil
	}
	e := &tokenExtras{metadata: metadata, fingerprint: fp, dedup: o.Deduplicate}
	if e.dedup {
		e.value, e.password = value, password
	}
	return e, nil
}

// needTx reports whether the token's insert must be a transaction with
// more than its vault row.
func (e *tokenExtras) needTx() bool {
	return e != nil && (len(e.metadata) > 0 || e.fingerprint != "")
}

// tokenOr is the token a create returns: the equal one a deduplicating
// create found, or the new one.
func (e *tokenExtras) tokenOr(token string) string {
	if e != nil && e.found != "" {
		return e.found
	}
	return token
}

// insertTokenWithExtras inserts row, its password identity link (when
// identity is set) and its extras in one transaction.
func (s *Store) insertTokenWithExtras(ctx context.Context, row *gormVaultRecord, identity string, extras *tokenExtras) error {
	// Before the transaction: on a pool of one connection, the check
	// could not run beside it.
	if err := s.ensureMetaTable(ctx); err != nil {
		return err
	}
	if extras.dedup {
		return s.insertDeduplicated(ctx, row, identity, extras, extras.password, extras.value)
	}
	var insertErr error
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		insertErr = s.insertRowAndExtras(tx, row, identity, extras)
		return insertErr
	})
	if insertErr != nil {
		return s.classifyInsertError(ctx, row, insertErr)
	}
	return err
}

// insertRowAndExtras writes row, its identity link and its extras through
// tx.
func (s *Store) insertRowAndExtras(tx *gorm.DB, row *gormVaultRecord, identity string, extras *tokenExtras) error {
	if err := tx.Table(s.vaultTable).Create(row).Error; err != nil {
		return err
	}
	if identity != "" {
		if err := s.linkRecords(tx, identity, row.ID); err != nil {
			return err
		}
	}
	if err := s.writeMetadata(tx, row.ID, extras.metadata); err != nil {
		return err
	}
	if extras.fingerprint == "" {
		return nil
	}
	// The record is new, so its fingerprint is too: a plain insert.
	q := s.quoteIdent
	err := tx.Exec(fmt.Sprintf("INSERT INTO %s (%s, %s, %s, %s) VALUES (?, ?, ?, ?)", q(s.metaTable), q(COLUMN_OBJECT_TYPE), q(COLUMN_OBJECT_ID), q(COLUMN_META_KEY), q(COLUMN_META_VALUE)),
		OBJECT_TYPE_RECORD, recordObjectID(row.ID), META_KEY_FINGERPRINT, extras.fingerprint).Error
	if err != nil {
		return fmt.Errorf("vaultstore: failed to store a fingerprint: %w", err)
	}
	return nil
}
