package vaultstore

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// RecordCount returns how many records match query. Limit, offset, order
// and columns do not affect the count.
func (s *Store) RecordCount(ctx context.Context, q RecordQueryInterface) (n int64, err error) {
	ctx, op := s.observe(ctx, opRecordCount)
	defer endCount(op, &n, &err)
	query, err := checkedQuery(q)
	if err != nil {
		return 0, err
	}
	if err := s.filtered(ctx, query).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("vaultstore: failed to count records: %w", err)
	}
	return n, nil
}

// RecordList returns the records matching query, ordered by id unless the
// query names another order. Only the selected columns are present in each
// record when the query sets columns.
//
// The statement is written from the validated copy of the query and run
// through database/sql, scanning each row straight into its record: GORM's
// reflection per row cost more than the database's work on long lists.
func (s *Store) RecordList(ctx context.Context, q RecordQueryInterface) (records []RecordInterface, err error) {
	ctx, op := s.observe(ctx, opRecordList)
	defer endRead(op, &records, &err)
	query, err := checkedQuery(q)
	if err != nil {
		return nil, err
	}
	columns := vaultColumns
	if query.IsColumnsSet() {
		columns = query.GetColumns()
	}
	text, args := s.listSQL(query, columns)
	begin := time.Now()
	rows, err := s.query(ctx, text, args...)
	if err != nil {
		s.traceSQL(ctx, text, begin, 0, err)
		return nil, fmt.Errorf("vaultstore: failed to list records: %w", err)
	}
	defer rows.Close()
	var out []RecordInterface
	if query.IsLimitSet() && query.GetLimit() > 0 {
		out = make([]RecordInterface, 0, min(query.GetLimit(), 1024))
	}
	// Each row is scanned into one reused row value; text columns go
	// through dbText, which reads a legacy NULL as "" as GORM did.
	var id, token, value dbText
	var row gormVaultRecord
	dest := make([]any, len(columns))
	for i, c := range columns {
		switch c {
		case COLUMN_ID:
			dest[i] = &id
		case COLUMN_VAULT_TOKEN:
			dest[i] = &token
		case COLUMN_VAULT_VALUE:
			dest[i] = &value
		case COLUMN_CREATED_AT:
			dest[i] = &row.Created
		case COLUMN_UPDATED_AT:
			dest[i] = &row.Updated
		case COLUMN_EXPIRES_AT:
			dest[i] = &row.Expires
		case COLUMN_SOFT_DELETED_AT:
			dest[i] = &row.SoftDeleted
		}
	}
	var selected []string
	if query.IsColumnsSet() {
		selected = columns
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			s.traceSQL(ctx, text, begin, int64(len(out)), err)
			return nil, fmt.Errorf("vaultstore: failed to list records: %w", err)
		}
		row.ID, row.Token, row.Value = string(id), string(token), string(value)
		out = append(out, row.toRecord(selected))
	}
	err = rows.Err()
	s.traceSQL(ctx, text, begin, int64(len(out)), err)
	if err != nil {
		return nil, fmt.Errorf("vaultstore: failed to list records: %w", err)
	}
	if out == nil {
		out = []RecordInterface{}
	}
	return out, nil
}

// listSQL writes the SELECT of a validated query: whitelisted column names
// quoted for the dialect, every value a bound parameter, limit and offset
// as the validated integers they are.
func (s *Store) listSQL(q *recordQuery, columns []string) (string, []any) {
	qi := s.quoteIdent
	var sb strings.Builder
	var args []any
	sb.WriteString("SELECT ")
	for i, c := range columns {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(s.selectColumn(c))
	}
	sb.WriteString(" FROM ")
	sb.WriteString(qi(s.vaultTable))
	where := " WHERE "
	cond := func(column, op string, values ...string) {
		sb.WriteString(where)
		where = " AND "
		sb.WriteString(qi(column))
		sb.WriteString(op)
		if op == " IN " {
			sb.WriteString("(")
		}
		for i, v := range values {
			if i > 0 {
				sb.WriteString(", ")
			}
			args = append(args, v)
			sb.WriteString(s.placeholder(len(args)))
		}
		if op == " IN " {
			sb.WriteString(")")
		}
	}
	if q.IsIDSet() {
		cond(COLUMN_ID, " = ", q.GetID())
	}
	if q.IsIDInSet() {
		cond(COLUMN_ID, " IN ", q.GetIDIn()...)
	}
	if q.IsTokenSet() {
		cond(COLUMN_VAULT_TOKEN, " = ", q.GetToken())
	}
	if q.IsTokenInSet() {
		cond(COLUMN_VAULT_TOKEN, " IN ", q.GetTokenIn()...)
	}
	if !q.GetSoftDeletedInclude() {
		if s.dialect == dialectSQLite {
			// The column's declared type gives it NUMERIC affinity, so
			// SQLite tries to read both sides of the comparison as a
			// number on every row it visits, also on every row an OFFSET
			// skips. Compared as text, as the stored layout is meant to
			// be, a page deep into a table costs a fifth less. Lists walk
			// the id (or a filter's) index, never this column's.
			sb.WriteString(where + "CAST(" + qi(COLUMN_SOFT_DELETED_AT) + " AS TEXT) > ")
			where = " AND "
			args = append(args, nowString())
			sb.WriteString(s.placeholder(len(args)))
		} else {
			cond(COLUMN_SOFT_DELETED_AT, " > ", nowString())
		}
	}
	column, desc := queryOrder(q)
	sb.WriteString(" ORDER BY ")
	sb.WriteString(orderClause(qi(column), desc))
	if column != COLUMN_ID {
		// A tie-breaker on the primary key makes pages stable when the
		// order column has duplicates.
		sb.WriteString(", ")
		sb.WriteString(orderClause(qi(COLUMN_ID), desc))
	}
	hasOffset := q.IsOffsetSet() && q.GetOffset() > 0
	switch {
	case q.IsLimitSet() && q.GetLimit() > 0:
		sb.WriteString(" LIMIT " + strconv.Itoa(q.GetLimit()))
	case hasOffset:
		// MySQL has no OFFSET without LIMIT; its manual's idiom is a
		// limit larger than any table, which the others accept too.
		sb.WriteString(" LIMIT " + strconv.Itoa(math.MaxInt))
	}
	if hasOffset {
		sb.WriteString(" OFFSET " + strconv.Itoa(q.GetOffset()))
	}
	return sb.String(), args
}

// filtered applies the WHERE conditions of a validated query.
func (s *Store) filtered(ctx context.Context, q RecordQueryInterface) *gorm.DB {
	db := s.vault(ctx)
	if q.IsIDSet() {
		db = db.Where(COLUMN_ID+" = ?", q.GetID())
	}
	if q.IsIDInSet() {
		db = db.Where(COLUMN_ID+" IN ?", q.GetIDIn())
	}
	if q.IsTokenSet() {
		db = db.Where(COLUMN_VAULT_TOKEN+" = ?", q.GetToken())
	}
	if q.IsTokenInSet() {
		db = db.Where(COLUMN_VAULT_TOKEN+" IN ?", q.GetTokenIn())
	}
	if !q.GetSoftDeletedInclude() {
		db = db.Where(COLUMN_SOFT_DELETED_AT+" > ?", nowString())
	}
	return db
}

// RecordCreate inserts record as it is: the value is stored unencrypted, as
// given. An empty id is replaced by a fresh one; updated_at is set to now,
// and created_at too when empty; empty expiry and soft-delete times mean
// never. A token already stored is ErrTokenAlreadyExists; a missing token,
// or a timestamp that does not parse, is ErrValidationFailed.
func (s *Store) RecordCreate(ctx context.Context, record RecordInterface) (err error) {
	ctx, op := s.observeRecords(ctx, opRecordCreate, record)
	defer op.end(&err)
	if s.auditTx() {
		return s.auditedWrite(ctx, op, false, func(b *Store) error { return b.RecordCreate(ctx, record) })
	}
	if isNil(record) {
		return validationErrorf("record is nil")
	}
	if err := validateTokenInput(record.GetToken()); err != nil {
		return err
	}
	if record.GetID() == "" {
		id, err := newRecordID()
		if err != nil {
			return err
		}
		record.SetID(id)
	} else if len(record.GetID()) > 40 {
		return validationErrorf("record id is longer than 40 characters")
	}
	now := nowString()
	record.SetUpdatedAt(now)
	if record.GetCreatedAt() == "" {
		record.SetCreatedAt(now)
	}
	if record.GetExpiresAt() == "" {
		record.SetExpiresAt(MAX_DATETIME)
	}
	if record.GetSoftDeletedAt() == "" {
		record.SetSoftDeletedAt(MAX_DATETIME)
	}
	row := gormVaultRecord{ID: record.GetID(), Token: record.GetToken(), Value: record.GetValue()}
	for _, ts := range []struct {
		column string
		get    func() string
		set    func(string) RecordInterface
		dst    *dbTimestamp
	}{
		{COLUMN_CREATED_AT, record.GetCreatedAt, record.SetCreatedAt, &row.Created},
		{COLUMN_UPDATED_AT, record.GetUpdatedAt, record.SetUpdatedAt, &row.Updated},
		{COLUMN_EXPIRES_AT, record.GetExpiresAt, record.SetExpiresAt, &row.Expires},
		{COLUMN_SOFT_DELETED_AT, record.GetSoftDeletedAt, record.SetSoftDeletedAt, &row.SoftDeleted},
	} {
		v, err := normalizeInputTimestamp(ts.column, ts.get())
		if err != nil {
			return err
		}
		if v != ts.get() {
			ts.set(v)
		}
		*ts.dst = dbTimestamp(v)
	}
	if err := s.insertRecord(ctx, &row); err != nil {
		return err
	}
	if r, ok := record.(*Record); ok {
		r.markClean()
	}
	return nil
}

// insertRecord inserts row and maps a duplicate token to
// ErrTokenAlreadyExists.
func (s *Store) insertRecord(ctx context.Context, row *gormVaultRecord) error {
	if !s.bound {
		return s.classifyInsertError(ctx, row, s.insertRow(ctx, row))
	}
	// In the caller's transaction a failed INSERT would abort the whole
	// transaction on PostgreSQL, the classifying read with it: a savepoint
	// keeps the failure to the insert.
	var insertErr error
	_ = s.db.WithContext(ctx).Transaction(func(*gorm.DB) error {
		insertErr = s.insertRow(ctx, row)
		return insertErr
	})
	return s.classifyInsertError(ctx, row, insertErr)
}

// classifyInsertError explains a failed insert of row. It reads the table,
// so a caller inside a transaction calls it after the transaction ended:
// PostgreSQL refuses statements in a failed transaction, and a pool of one
// connection would wait for itself.
func (s *Store) classifyInsertError(ctx context.Context, row *gormVaultRecord, err error) error {
	if err == nil {
		return nil
	}
	if isUniqueViolation(err) {
		// The violation may be of the token or of the id; only a token
		// clash is the caller's ErrTokenAlreadyExists.
		var n int64
		if cerr := s.vault(ctx).Where(COLUMN_VAULT_TOKEN+" = ?", row.Token).Count(&n).Error; cerr == nil && n > 0 {
			return fmt.Errorf("%w: %q", ErrTokenAlreadyExists, row.Token)
		}
		return validationErrorf("record id %q already exists", row.ID)
	}
	return fmt.Errorf("vaultstore: failed to insert record: %w", err)
}

// RecordFindByID returns the live (not soft-deleted) record with id, or
// (nil, nil) when there is none. An empty id is ErrValidationFailed.
func (s *Store) RecordFindByID(ctx context.Context, id string) (record RecordInterface, err error) {
	ctx, op := s.observe(ctx, opRecordFindByID)
	op.records = []string{id}
	defer endRead(op, &record, &err)
	if id == "" {
		return nil, validationErrorf("record id is empty")
	}
	return s.findOne(ctx, RecordQuery().SetID(id))
}

// RecordFindByToken returns the live (not soft-deleted) record with token,
// or (nil, nil) when there is none. An empty token is ErrValidationFailed.
func (s *Store) RecordFindByToken(ctx context.Context, token string) (record RecordInterface, err error) {
	ctx, op := s.observe(ctx, opRecordFindByToken, token)
	defer endRead(op, &record, &err)
	if token == "" {
		return nil, validationErrorf("token is empty")
	}
	return s.findOne(ctx, RecordQuery().SetToken(token))
}

func (s *Store) findOne(ctx context.Context, q RecordQueryInterface) (RecordInterface, error) {
	list, err := s.RecordList(ctx, q.SetLimit(1))
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return list[0], nil
}

// RecordUpdate writes the columns changed on record (see
// RecordInterface.DataChanged) to the row with its id, and refreshes
// updated_at. The id itself is never changed. A changed key that is not a
// vault column is ErrValidationFailed, and no SQL runs; a row that does not
// exist is ErrRecordNotFound.
//
// The token cannot change: a v3 value is bound to the token it was written
// for and would never open under another, so a record whose changed
// vault_token differs from the stored row's token is ErrValidationFailed
// and nothing is written. Setting the token the row already has is allowed
// (it changes nothing). To move a value to another token, create a new
// record.
func (s *Store) RecordUpdate(ctx context.Context, record RecordInterface) (err error) {
	ctx, op := s.observeRecords(ctx, opRecordUpdate, record)
	defer op.end(&err)
	if s.auditTx() {
		return s.auditedWrite(ctx, op, false, func(b *Store) error { return b.RecordUpdate(ctx, record) })
	}
	if isNil(record) {
		return validationErrorf("record is nil")
	}
	id := record.GetID()
	if id == "" {
		return validationErrorf("record id is empty")
	}
	// A copy into a map of our own: a caller's DataChanged may return nil,
	// or a map it keeps.
	changed := map[string]string{}
	maps.Copy(changed, record.DataChanged())
	delete(changed, COLUMN_ID)
	for _, k := range slices.Sorted(maps.Keys(changed)) {
		if !isVaultColumn(k) {
			return validationErrorf("unknown column %q", k)
		}
	}
	token, tokenSet := changed[COLUMN_VAULT_TOKEN]
	if tokenSet {
		if err := validateTokenInput(token); err != nil {
			return err
		}
		delete(changed, COLUMN_VAULT_TOKEN)
	}
	changed[COLUMN_UPDATED_AT] = nowString()
	updates := make(map[string]any, len(changed))
	for k, v := range changed {
		switch k {
		case COLUMN_CREATED_AT, COLUMN_UPDATED_AT, COLUMN_EXPIRES_AT, COLUMN_SOFT_DELETED_AT:
			norm, err := normalizeInputTimestamp(k, v)
			if err != nil {
				return err
			}
			changed[k] = norm
			updates[k] = norm
		default:
			updates[k] = v
		}
	}
	db := s.vault(ctx).Where(COLUMN_ID+" = ?", id)
	if tokenSet {
		// The token is a condition, not an assignment: the statement that
		// writes is the one that checks, so no rename can slip in between,
		// and a token the row does not hold matches nothing.
		db = db.Where(COLUMN_VAULT_TOKEN+" = ?", token)
	}
	res := db.Updates(updates)
	if res.Error != nil {
		return fmt.Errorf("vaultstore: failed to update record: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		// No row with the id, a token the row does not hold, or, on MySQL,
		// which counts only rows whose values changed, an update that
		// wrote what was there already.
		var stored []string
		if err := s.vault(ctx).Where(COLUMN_ID+" = ?", id).Pluck(COLUMN_VAULT_TOKEN, &stored).Error; err != nil {
			return fmt.Errorf("vaultstore: failed to update record: %w", err)
		}
		if len(stored) == 0 {
			return fmt.Errorf("%w: id %q", ErrRecordNotFound, id)
		}
		if tokenSet && stored[0] != token {
			return validationErrorf("record %q: token %q cannot become %q: the token is bound to the value; create a new record instead", id, stored[0], token)
		}
	}
	current := record.Data()
	for k, v := range changed {
		if current[k] != v {
			setColumn(record, k, v)
		}
	}
	if r, ok := record.(*Record); ok {
		r.markClean()
	}
	return nil
}

// setColumn sets a known column through the record's setters, so that any
// RecordInterface implementation sees the stored value.
func setColumn(r RecordInterface, column, value string) {
	switch column {
	case COLUMN_VAULT_TOKEN:
		r.SetToken(value)
	case COLUMN_VAULT_VALUE:
		r.SetValue(value)
	case COLUMN_CREATED_AT:
		r.SetCreatedAt(value)
	case COLUMN_UPDATED_AT:
		r.SetUpdatedAt(value)
	case COLUMN_EXPIRES_AT:
		r.SetExpiresAt(value)
	case COLUMN_SOFT_DELETED_AT:
		r.SetSoftDeletedAt(value)
	}
}

// RecordDeleteByID permanently deletes the record with id, soft-deleted or
// not. A missing record is ErrRecordNotFound.
func (s *Store) RecordDeleteByID(ctx context.Context, id string) (err error) {
	ctx, op := s.observe(ctx, opRecordDeleteByID)
	op.records = []string{id}
	defer op.end(&err)
	if s.auditTx() {
		return s.auditedWrite(ctx, op, false, func(b *Store) error { return b.RecordDeleteByID(ctx, id) })
	}
	if id == "" {
		return validationErrorf("record id is empty")
	}
	return s.deleteWhere(ctx, COLUMN_ID, id)
}

// RecordDeleteByToken permanently deletes the record with token,
// soft-deleted or not. A missing record is ErrRecordNotFound.
func (s *Store) RecordDeleteByToken(ctx context.Context, token string) (err error) {
	ctx, op := s.observe(ctx, opRecordDeleteByToken, token)
	defer op.end(&err)
	if s.auditTx() {
		return s.auditedWrite(ctx, op, false, func(b *Store) error { return b.RecordDeleteByToken(ctx, token) })
	}
	if err := validateTokenInput(token); err != nil {
		return err
	}
	return s.deleteWhere(ctx, COLUMN_VAULT_TOKEN, token)
}

func (s *Store) deleteWhere(ctx context.Context, column, key string) error {
	// The record's meta rows (identity link, metadata, fingerprint) go
	// with it.
	var ids []string
	switch {
	case column == COLUMN_ID:
		ids = []string{key}
	default:
		if err := s.vault(ctx).Where(column+" = ?", key).Pluck(COLUMN_ID, &ids).Error; err != nil {
			return fmt.Errorf("vaultstore: failed to look up record: %w", err)
		}
	}
	res := s.vault(ctx).Where(column+" = ?", key).Delete(&gormVaultRecord{})
	if res.Error != nil {
		return fmt.Errorf("vaultstore: failed to delete record: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%w: %s %q", ErrRecordNotFound, column, key)
	}
	// A meta row left behind would be harmless (rotation ignores a link,
	// searches join the live record, TokensExpiredDelete sweeps them), so
	// they are removed after the record rather than in one transaction
	// with it.
	if err := s.ensureMetaTable(ctx); err != nil {
		return err
	}
	return s.unlinkRecords(s.db.WithContext(ctx), ids...)
}

// RecordSoftDelete marks record as deleted now. It stays in the table, out
// of every query that does not include soft-deleted records. A record that
// does not exist is ErrRecordNotFound.
func (s *Store) RecordSoftDelete(ctx context.Context, record RecordInterface) (err error) {
	ctx, op := s.observeRecords(ctx, opRecordSoftDelete, record)
	defer op.end(&err)
	if isNil(record) {
		return validationErrorf("record is nil")
	}
	record.SetSoftDeletedAt(nowString())
	// RecordUpdate audits the change, as RecordUpdate.
	op.delegated = true
	return s.RecordUpdate(ctx, record)
}

// RecordSoftDeleteByID marks the live record with id as deleted now. A
// missing or already soft-deleted record is ErrRecordNotFound.
func (s *Store) RecordSoftDeleteByID(ctx context.Context, id string) (err error) {
	ctx, op := s.observe(ctx, opRecordSoftDeleteByID)
	op.records = []string{id}
	defer op.end(&err)
	if s.auditTx() {
		return s.auditedWrite(ctx, op, false, func(b *Store) error { return b.RecordSoftDeleteByID(ctx, id) })
	}
	if id == "" {
		return validationErrorf("record id is empty")
	}
	return s.softDeleteWhere(ctx, COLUMN_ID, id)
}

// RecordSoftDeleteByToken marks the live record with token as deleted now.
// A missing or already soft-deleted record is ErrRecordNotFound.
func (s *Store) RecordSoftDeleteByToken(ctx context.Context, token string) (err error) {
	ctx, op := s.observe(ctx, opRecordSoftDeleteByToken, token)
	defer op.end(&err)
	if s.auditTx() {
		return s.auditedWrite(ctx, op, false, func(b *Store) error { return b.RecordSoftDeleteByToken(ctx, token) })
	}
	if err := validateTokenInput(token); err != nil {
		return err
	}
	return s.softDeleteWhere(ctx, COLUMN_VAULT_TOKEN, token)
}

// softDeleteWhere is one UPDATE rather than a read and a write, so two
// concurrent soft deletes cannot both succeed.
func (s *Store) softDeleteWhere(ctx context.Context, column, key string) error {
	now := nowString()
	res := s.vault(ctx).
		Where(column+" = ?", key).
		Where(COLUMN_SOFT_DELETED_AT+" > ?", now).
		Updates(map[string]any{COLUMN_SOFT_DELETED_AT: now, COLUMN_UPDATED_AT: now})
	if res.Error != nil {
		return fmt.Errorf("vaultstore: failed to soft delete record: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%w: %s %q", ErrRecordNotFound, column, key)
	}
	return nil
}

// orderClause builds an ORDER BY term for a whitelisted column.
func orderClause(column string, desc bool) string {
	if desc {
		return column + " DESC"
	}
	return column + " ASC"
}
