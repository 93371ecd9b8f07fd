package vaultstore

// This file holds the store's few hot statements: the SQL of TokenRead,
// TokenExists, TokenCreate and TokensRead, written once per store and
// dialect and prepared once through database/sql. GORM keeps everything
// else (schema, migrations, record queries, transactions), where building a
// statement per call costs little next to what the call does.
//
// Holding the prepared statement matters most on MySQL/MariaDB: without it,
// or interpolateParams=true in the caller's DSN, go-sql-driver prepares,
// executes and closes a statement for every query that has arguments, three
// round trips instead of one. PostgreSQL's pgx caches statements itself;
// SQLite saves the parse. On every database it saves GORM's reflection and
// statement building, which took most of a warm TokenRead.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stmtID names one held statement.
type stmtID int

const (
	// stmtReadValue reads the value and expiry of a live token.
	stmtReadValue stmtID = iota
	// stmtExists finds whether a live token exists.
	stmtExists
	// stmtInsert inserts one vault row with every column.
	stmtInsert
	stmtFixed // the number of fixed statements

	// stmtTokensIn is the first of the IN-list reads of TokensRead, one
	// per size class: 1, 2, 4, … tokens, then tokensReadChunk. A list is
	// padded to its class by repeating its last token, so a store holds
	// at most inClasses of them, whatever sizes its callers ask for.
	stmtTokensIn = stmtFixed
)

// inClasses is the number of IN-list size classes: the powers of two below
// tokensReadChunk, and tokensReadChunk itself.
var inClasses = bits.Len(uint(tokensReadChunk-1)) + 1

// inClass returns the size class of an IN list of n tokens (1 <= n <=
// tokensReadChunk) and the number of placeholders it has.
func inClass(n int) (class, size int) {
	class = bits.Len(uint(n - 1))
	if class == inClasses-1 {
		return class, tokensReadChunk
	}
	return class, 1 << class
}

// heldStatements are one store's prepared hot statements. Each is prepared
// on first use, not in NewStore: NewStore does no I/O, and the table may not
// exist yet. A statement that failed to prepare is tried again on the next
// call.
//
// The statements are prepared on the caller's *sql.DB; database/sql
// re-prepares one on each pooled connection that runs it. A store bound to
// a caller's transaction prepares each on the transaction instead (stmt).
type heldStatements struct {
	db   *sql.DB
	text []string // by stmtID
	held []atomic.Pointer[sql.Stmt]
	mu   sync.Mutex // serialises preparing
}

// newHeldStatements writes the hot statements of s's dialect and table. It
// does no I/O. The statements are closed when s is garbage collected (the
// caller's *sql.DB would otherwise keep them, and the server its prepared
// statements, for as long as the pool lives).
func (s *Store) newHeldStatements(db *sql.DB) *heldStatements {
	q := s.quoteIdent
	p := s.placeholder
	table := q(s.vaultTable)
	live := fmt.Sprintf(" AND %s > %s", q(COLUMN_SOFT_DELETED_AT), p(2))
	text := make([]string, int(stmtFixed)+inClasses)
	text[stmtReadValue] = fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s = %s%s LIMIT 1",
		q(COLUMN_VAULT_VALUE), s.selectColumn(COLUMN_EXPIRES_AT), table, q(COLUMN_VAULT_TOKEN), p(1), live)
	text[stmtExists] = fmt.Sprintf("SELECT 1 FROM %s WHERE %s = %s%s LIMIT 1",
		table, q(COLUMN_VAULT_TOKEN), p(1), live)
	columns := []string{COLUMN_ID, COLUMN_VAULT_TOKEN, COLUMN_VAULT_VALUE, COLUMN_CREATED_AT, COLUMN_UPDATED_AT, COLUMN_EXPIRES_AT, COLUMN_SOFT_DELETED_AT}
	names, marks := make([]string, len(columns)), make([]string, len(columns))
	for i, c := range columns {
		names[i], marks[i] = q(c), p(i+1)
	}
	text[stmtInsert] = fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, strings.Join(names, ", "), strings.Join(marks, ", "))
	for class := range inClasses {
		size := 1 << class
		if class == inClasses-1 {
			size = tokensReadChunk
		}
		marks := make([]string, size)
		for i := range marks {
			marks[i] = p(i + 2)
		}
		text[int(stmtTokensIn)+class] = fmt.Sprintf("SELECT %s, %s, %s FROM %s WHERE %s > %s AND %s IN (%s)",
			q(COLUMN_VAULT_TOKEN), q(COLUMN_VAULT_VALUE), s.selectColumn(COLUMN_EXPIRES_AT), table,
			q(COLUMN_SOFT_DELETED_AT), p(1), q(COLUMN_VAULT_TOKEN), strings.Join(marks, ", "))
	}
	h := &heldStatements{db: db, text: text, held: make([]atomic.Pointer[sql.Stmt], len(text))}
	runtime.AddCleanup(s, (*heldStatements).close, h)
	return h
}

// selectColumn is a column of a SELECT list. On SQLite a timestamp column
// goes through CAST(... AS TEXT): glebarez/go-sqlite turns the text of every
// column declared DATETIME into a time.Time, trying up to eight layouts and
// allocating an error for each miss, which cost more than the rest of a
// point query. An expression has no declared type, so the driver hands over
// the stored text, which dbTimestamp reads as before.
func (s *Store) selectColumn(column string) string {
	switch column {
	case COLUMN_CREATED_AT, COLUMN_UPDATED_AT, COLUMN_EXPIRES_AT, COLUMN_SOFT_DELETED_AT:
		if s.dialect == dialectSQLite {
			return "CAST(" + s.quoteIdent(column) + " AS TEXT)"
		}
	}
	return s.quoteIdent(column)
}

// placeholder is the n-th (1-based) bound parameter in the store's dialect.
func (s *Store) placeholder(n int) string {
	if s.dialect == dialectPostgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// stmt returns the held statement id, preparing it on first use, and a
// release to call when done with it. A store bound to a caller's
// transaction (WithTx) prepares the statement on that transaction instead,
// for the one call: the held statements belong to the pool, and preparing
// through the pool would need a second connection while the transaction
// holds one (a single-connection SQLite pool would wait forever).
func (s *Store) stmt(ctx context.Context, id stmtID) (st *sql.Stmt, release func(), err error) {
	if s.bound {
		st, err := s.db.Statement.ConnPool.PrepareContext(ctx, s.stmts.text[id])
		if err != nil {
			return nil, nil, err
		}
		return st, func() { st.Close() }, nil
	}
	h := s.stmts
	if st := h.held[id].Load(); st != nil {
		return st, noRelease, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if st := h.held[id].Load(); st != nil {
		return st, noRelease, nil
	}
	st, err = h.db.PrepareContext(ctx, h.text[id])
	if err != nil {
		return nil, nil, err
	}
	h.held[id].Store(st)
	return st, noRelease, nil
}

func noRelease() {}

// query runs a statement written per call on the store's connection: the
// pool, or the caller's transaction for a bound store.
func (s *Store) query(ctx context.Context, text string, args ...any) (*sql.Rows, error) {
	if s.bound {
		return s.db.Statement.ConnPool.QueryContext(ctx, text, args...)
	}
	return s.stmts.db.QueryContext(ctx, text, args...)
}

// close closes every statement prepared so far.
func (h *heldStatements) close() {
	for i := range h.held {
		if st := h.held[i].Swap(nil); st != nil {
			st.Close()
		}
	}
}

// trace hands a held statement's run to the debug log, which shows the
// statement with its placeholders, never the bound values. It costs one
// atomic load while debugging is off.
func (s *Store) trace(ctx context.Context, id stmtID, begin time.Time, rows int64, err error) {
	if !s.log.enabled.Load() {
		return
	}
	s.log.Trace(ctx, begin, func() (string, int64) { return s.stmts.text[id], rows }, err)
}

// traceSQL is trace for a statement written per call.
func (s *Store) traceSQL(ctx context.Context, text string, begin time.Time, rows int64, err error) {
	if !s.log.enabled.Load() {
		return
	}
	s.log.Trace(ctx, begin, func() (string, int64) { return text, rows }, err)
}

// readLiveValue reads the stored value and expiry of token unless it is
// absent or soft-deleted (ErrRecordNotFound). now is the caller's clock
// reading, in the stored layout.
func (s *Store) readLiveValue(ctx context.Context, token, now string) (value string, expires dbTimestamp, err error) {
	begin := time.Now()
	st, release, err := s.stmt(ctx, stmtReadValue)
	if err == nil {
		err = st.QueryRowContext(ctx, token, now).Scan(&value, &expires)
		release()
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		s.trace(ctx, stmtReadValue, begin, 0, nil)
		return "", "", fmt.Errorf("%w: token %q", ErrRecordNotFound, token)
	case err != nil:
		s.trace(ctx, stmtReadValue, begin, 0, err)
		return "", "", fmt.Errorf("vaultstore: failed to read token: %w", err)
	}
	s.trace(ctx, stmtReadValue, begin, 1, nil)
	return value, expires, nil
}

// liveTokenExists reports whether token is stored and not soft-deleted.
func (s *Store) liveTokenExists(ctx context.Context, token string) (bool, error) {
	begin := time.Now()
	var one int
	st, release, err := s.stmt(ctx, stmtExists)
	if err == nil {
		err = st.QueryRowContext(ctx, token, nowString()).Scan(&one)
		release()
	}
	if errors.Is(err, sql.ErrNoRows) {
		s.trace(ctx, stmtExists, begin, 0, nil)
		return false, nil
	}
	s.trace(ctx, stmtExists, begin, 1, err)
	if err != nil {
		return false, fmt.Errorf("vaultstore: failed to look up token: %w", err)
	}
	return true, nil
}

// insertRow inserts row with the held INSERT and returns the driver's
// error unclassified, as GORM's Create does.
func (s *Store) insertRow(ctx context.Context, row *gormVaultRecord) error {
	begin := time.Now()
	st, release, err := s.stmt(ctx, stmtInsert)
	if err == nil {
		_, err = st.ExecContext(ctx, row.ID, row.Token, row.Value, string(row.Created), string(row.Updated), string(row.Expires), string(row.SoftDeleted))
		release()
	}
	s.trace(ctx, stmtInsert, begin, 1, err)
	return err
}

// tokenRow is what TokensRead needs of a row.
type tokenRow struct {
	token, value string
	expires      dbTimestamp
}

// readLiveTokens appends to rows the live rows of tokens, at most
// tokensReadChunk distinct tokens, with one held statement.
func (s *Store) readLiveTokens(ctx context.Context, rows []tokenRow, tokens []string, now string) ([]tokenRow, error) {
	class, size := inClass(len(tokens))
	id := stmtTokensIn + stmtID(class)
	args := make([]any, 1+size)
	args[0] = now
	for i := range size {
		// Padding repeats the last token; IN matches each row once.
		args[1+i] = tokens[min(i, len(tokens)-1)]
	}
	begin := time.Now()
	st, release, err := s.stmt(ctx, id)
	if err != nil {
		s.trace(ctx, id, begin, 0, err)
		return rows, fmt.Errorf("vaultstore: failed to read tokens: %w", err)
	}
	defer release()
	res, err := st.QueryContext(ctx, args...)
	if err != nil {
		s.trace(ctx, id, begin, 0, err)
		return rows, fmt.Errorf("vaultstore: failed to read tokens: %w", err)
	}
	defer res.Close()
	n := int64(0)
	for res.Next() {
		var r tokenRow
		if err := res.Scan(&r.token, &r.value, &r.expires); err != nil {
			s.trace(ctx, id, begin, n, err)
			return rows, fmt.Errorf("vaultstore: failed to read tokens: %w", err)
		}
		rows = append(rows, r)
		n++
	}
	err = res.Err()
	s.trace(ctx, id, begin, n, err)
	if err != nil {
		return rows, fmt.Errorf("vaultstore: failed to read tokens: %w", err)
	}
	return rows, nil
}
