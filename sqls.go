package vaultstore

// This file holds the SQL that differs between dialects: table layout,
// schema introspection and upgrades, and the recognition of unique-key
// violations. Everything else goes through GORM's portable builders.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// quoteIdent quotes a table or index name. Names are validated to letters,
// digits and underscores before they get here; quoting keeps their case on
// PostgreSQL, where GORM quotes them too.
func (s *Store) quoteIdent(name string) string {
	if s.dialect == dialectMySQL {
		return "`" + name + "`"
	}
	return `"` + name + `"`
}

// columnTypes are the per-dialect types of the layout in API.md. MySQL gets
// binary collation on the key columns so that tokens and ids compare
// exactly ("tk_ABC" is not "tk_abc"), and longtext for the value, whose TEXT
// holds only 64 KiB there, also with binary collation: rotation's
// compare-and-set compares values, and must not take one ciphertext for
// another that differs in case or trailing spaces. PostgreSQL has no
// datetime or longtext.
type columnTypes struct {
	key, text, timestamp, metaID, metaString, tableSuffix string
}

func (s *Store) types() columnTypes {
	switch s.dialect {
	case dialectPostgres:
		return columnTypes{key: "varchar(%d)", text: "text", timestamp: "timestamp", metaID: "bigserial PRIMARY KEY", metaString: "varchar(%d)"}
	case dialectMySQL:
		return columnTypes{
			key:         "varchar(%d) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
			text:        "longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
			timestamp:   "datetime",
			metaID:      "bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY",
			metaString:  "varchar(%d) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
			tableSuffix: " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
		}
	default:
		return columnTypes{key: "varchar(%d)", text: "text", timestamp: "datetime", metaID: "integer PRIMARY KEY AUTOINCREMENT", metaString: "varchar(%d)"}
	}
}

func (s *Store) createVaultTableSQL() string {
	t := s.types()
	q := s.quoteIdent
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s %s NOT NULL PRIMARY KEY, %s %s NOT NULL, %s %s NOT NULL, %s %s NOT NULL, %s %s NOT NULL, %s %s NOT NULL, %s %s NOT NULL)%s",
		q(s.vaultTable),
		q(COLUMN_ID), fmt.Sprintf(t.key, 40),
		q(COLUMN_VAULT_TOKEN), fmt.Sprintf(t.key, TOKEN_MAX_TOTAL_LENGTH),
		q(COLUMN_VAULT_VALUE), t.text,
		q(COLUMN_CREATED_AT), t.timestamp,
		q(COLUMN_UPDATED_AT), t.timestamp,
		q(COLUMN_EXPIRES_AT), t.timestamp,
		q(COLUMN_SOFT_DELETED_AT), t.timestamp,
		t.tableSuffix)
}

func (s *Store) createMetaTableSQL() string {
	t := s.types()
	q := s.quoteIdent
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s %s, %s %s NOT NULL, %s %s NOT NULL, %s %s NOT NULL, %s %s)%s",
		q(s.metaTable),
		q(COLUMN_ID), t.metaID,
		q(COLUMN_OBJECT_TYPE), fmt.Sprintf(t.metaString, 50),
		q(COLUMN_OBJECT_ID), fmt.Sprintf(t.metaString, 64),
		q(COLUMN_META_KEY), fmt.Sprintf(t.metaString, metaKeyWidth),
		q(COLUMN_META_VALUE), t.text,
		t.tableSuffix)
}

// columnInfo describes one existing column.
type columnInfo struct {
	dataType  string
	collation string
}

// tableColumns returns the columns of table keyed by lower-case name; an
// absent table has none.
func (s *Store) tableColumns(ctx context.Context, table string) (map[string]columnInfo, error) {
	var query string
	switch s.dialect {
	case dialectPostgres:
		query = "SELECT column_name, data_type, '' FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?"
	case dialectMySQL:
		query = "SELECT column_name, data_type, COALESCE(collation_name, '') FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?"
	default:
		query = "SELECT name, type, '' FROM pragma_table_info(?)"
	}
	rows, err := s.db.WithContext(ctx).Raw(query, table).Rows()
	if err != nil {
		return nil, fmt.Errorf("vaultstore: failed to read the columns of %s: %w", table, err)
	}
	defer rows.Close()
	cols := map[string]columnInfo{}
	for rows.Next() {
		var name string
		var info columnInfo
		if err := rows.Scan(&name, &info.dataType, &info.collation); err != nil {
			return nil, fmt.Errorf("vaultstore: failed to read the columns of %s: %w", table, err)
		}
		info.dataType = strings.ToLower(info.dataType)
		cols[strings.ToLower(name)] = info
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("vaultstore: failed to read the columns of %s: %w", table, err)
	}
	return cols, nil
}

// indexInfo describes one existing index.
type indexInfo struct {
	name    string
	unique  bool
	columns []string
}

// tableIndexes lists the indexes of table, including those SQLite and
// MySQL make for inline UNIQUE and PRIMARY KEY constraints, so that an
// older table whose token is unique by a column constraint is recognised.
func (s *Store) tableIndexes(ctx context.Context, table string) ([]indexInfo, error) {
	var query string
	switch s.dialect {
	case dialectPostgres:
		query = `SELECT i.relname, ix.indisunique, a.attname
FROM pg_index ix
JOIN pg_class t ON t.oid = ix.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN LATERAL unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) ON true
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
WHERE t.relname = ? AND n.nspname = current_schema()
ORDER BY i.relname, k.ord`
	case dialectMySQL:
		query = `SELECT index_name, non_unique = 0, column_name FROM information_schema.statistics
WHERE table_schema = DATABASE() AND table_name = ? ORDER BY index_name, seq_in_index`
	default:
		query = `SELECT il.name, il."unique", ii.name FROM pragma_index_list(?) AS il, pragma_index_info(il.name) AS ii ORDER BY il.name, ii.seqno`
	}
	rows, err := s.db.WithContext(ctx).Raw(query, table).Rows()
	if err != nil {
		return nil, fmt.Errorf("vaultstore: failed to read the indexes of %s: %w", table, err)
	}
	defer rows.Close()
	var out []indexInfo
	for rows.Next() {
		var name, column string
		var unique bool
		if err := rows.Scan(&name, &unique, &column); err != nil {
			return nil, fmt.Errorf("vaultstore: failed to read the indexes of %s: %w", table, err)
		}
		if n := len(out); n > 0 && out[n-1].name == name {
			out[n-1].columns = append(out[n-1].columns, strings.ToLower(column))
			continue
		}
		out = append(out, indexInfo{name: name, unique: unique, columns: []string{strings.ToLower(column)}})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("vaultstore: failed to read the indexes of %s: %w", table, err)
	}
	return out, nil
}

// ensureIndex creates an index on columns unless one already covers exactly
// those columns (and is unique, when unique is asked for). Checking first,
// rather than relying on IF NOT EXISTS, also recognises indexes made by
// older releases under other names, and works on MySQL, which has no
// CREATE INDEX IF NOT EXISTS.
func (s *Store) ensureIndex(ctx context.Context, table, name string, unique bool, columns ...string) error {
	has := func() (bool, error) {
		indexes, err := s.tableIndexes(ctx, table)
		if err != nil {
			return false, err
		}
		for _, ix := range indexes {
			if slices.Equal(ix.columns, columns) && (ix.unique || !unique) {
				return true, nil
			}
		}
		return false, nil
	}
	if ok, err := has(); err != nil || ok {
		return err
	}
	quoted := make([]string, len(columns))
	for i, c := range columns {
		quoted[i] = s.quoteIdent(c)
	}
	kind := "INDEX"
	if unique {
		kind = "UNIQUE INDEX"
	}
	ifNotExists := " IF NOT EXISTS"
	if s.dialect == dialectMySQL {
		ifNotExists = ""
	}
	stmt := fmt.Sprintf("CREATE %s%s %s ON %s (%s)", kind, ifNotExists, s.quoteIdent(name), s.quoteIdent(table), strings.Join(quoted, ", "))
	if err := s.db.WithContext(ctx).Exec(stmt).Error; err != nil {
		// Another process may have created it between the check and here.
		if ok, herr := has(); herr == nil && ok {
			return nil
		}
		return fmt.Errorf("vaultstore: failed to create index %s: %w", name, err)
	}
	return nil
}

// migrateVaultTable creates the vault table or upgrades an older one.
func (s *Store) migrateVaultTable(ctx context.Context) error {
	cols, err := s.tableColumns(ctx, s.vaultTable)
	if err != nil {
		return err
	}
	db := s.db.WithContext(ctx)
	q := s.quoteIdent
	t := s.types()
	if len(cols) == 0 {
		if err := db.Exec(s.createVaultTableSQL()).Error; err != nil {
			return fmt.Errorf("vaultstore: failed to create table %s: %w", s.vaultTable, err)
		}
	} else {
		for _, c := range []string{COLUMN_ID, COLUMN_VAULT_TOKEN, COLUMN_VAULT_VALUE} {
			if _, ok := cols[c]; !ok {
				return fmt.Errorf("vaultstore: table %s has no column %s; it is not a vault table", s.vaultTable, c)
			}
		}
		now := nowString()
		// Releases before token expiry had no expires_at; the first ones
		// may lack others. A missing column gets the value that means what
		// the old release meant: never expired, never deleted, made now.
		defaults := map[string]string{
			COLUMN_CREATED_AT:      now,
			COLUMN_UPDATED_AT:      now,
			COLUMN_EXPIRES_AT:      MAX_DATETIME,
			COLUMN_SOFT_DELETED_AT: MAX_DATETIME,
		}
		for _, c := range []string{COLUMN_CREATED_AT, COLUMN_UPDATED_AT, COLUMN_EXPIRES_AT, COLUMN_SOFT_DELETED_AT} {
			if _, ok := cols[c]; ok {
				continue
			}
			// The default is a literal the store generated, never input.
			stmt := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s NOT NULL DEFAULT '%s'", q(s.vaultTable), q(c), t.timestamp, defaults[c])
			if err := db.Exec(stmt).Error; err != nil {
				return fmt.Errorf("vaultstore: failed to add column %s to %s: %w", c, s.vaultTable, err)
			}
		}
		// Fill NULLs column by column: a row whose updated_at is NULL keeps
		// its soft delete and its expiry.
		fills := []struct{ column, expr string }{
			{COLUMN_CREATED_AT, fmt.Sprintf("COALESCE(%s, ?)", q(COLUMN_UPDATED_AT))},
			{COLUMN_UPDATED_AT, fmt.Sprintf("COALESCE(%s, ?)", q(COLUMN_CREATED_AT))},
			{COLUMN_EXPIRES_AT, "?"},
			{COLUMN_SOFT_DELETED_AT, "?"},
		}
		for _, f := range fills {
			stmt := fmt.Sprintf("UPDATE %s SET %s = %s WHERE %s IS NULL", q(s.vaultTable), q(f.column), f.expr, q(f.column))
			if err := db.Exec(stmt, defaults[f.column]).Error; err != nil {
				return fmt.Errorf("vaultstore: failed to fill NULL %s in %s: %w", f.column, s.vaultTable, err)
			}
		}
		if s.dialect == dialectMySQL {
			if err := s.upgradeMySQLVaultColumns(ctx, cols); err != nil {
				return err
			}
		}
	}
	if err := s.ensureIndex(ctx, s.vaultTable, "idx_"+s.vaultTable+"_vault_token", true, COLUMN_VAULT_TOKEN); err != nil {
		return err
	}
	if err := s.ensureIndex(ctx, s.vaultTable, "idx_"+s.vaultTable+"_expires_at", false, COLUMN_EXPIRES_AT); err != nil {
		return err
	}
	return s.ensureIndex(ctx, s.vaultTable, "idx_"+s.vaultTable+"_soft_deleted_at", false, COLUMN_SOFT_DELETED_AT)
}

// upgradeMySQLVaultColumns gives older MySQL tables exact token matching
// and room for large values. Each change runs only when needed, so a
// current table is never rebuilt.
func (s *Store) upgradeMySQLVaultColumns(ctx context.Context, cols map[string]columnInfo) error {
	t := s.types()
	q := s.quoteIdent
	var changes []string
	for _, c := range []string{COLUMN_ID, COLUMN_VAULT_TOKEN} {
		if !strings.HasSuffix(cols[c].collation, "_bin") {
			changes = append(changes, fmt.Sprintf("MODIFY COLUMN %s %s NOT NULL", q(c), fmt.Sprintf(t.key, 40)))
		}
	}
	if v := cols[COLUMN_VAULT_VALUE]; v.dataType != "longtext" || !strings.HasSuffix(v.collation, "_bin") {
		changes = append(changes, fmt.Sprintf("MODIFY COLUMN %s %s NOT NULL", q(COLUMN_VAULT_VALUE), t.text))
	}
	if len(changes) == 0 {
		return nil
	}
	stmt := fmt.Sprintf("ALTER TABLE %s %s", q(s.vaultTable), strings.Join(changes, ", "))
	if err := s.db.WithContext(ctx).Exec(stmt).Error; err != nil {
		return fmt.Errorf("vaultstore: failed to upgrade columns of %s: %w", s.vaultTable, err)
	}
	return nil
}

// ensureMetaTable makes sure the meta table exists with its unique index.
// It runs at most once successfully per store; writes to the meta table
// call it first, so a database from a release without the table, opened
// without AutoMigrate, gets it when it is first needed and not before.
func (s *Store) ensureMetaTable(ctx context.Context) error {
	if s.shared.metaReady.Load() {
		return nil
	}
	if err := s.shared.metaMu.lock(ctx); err != nil {
		return err
	}
	defer s.shared.metaMu.unlock()
	if s.shared.metaReady.Load() {
		return nil
	}
	cols, err := s.tableColumns(ctx, s.metaTable)
	if err != nil {
		return err
	}
	if s.bound {
		// DDL has no place in the caller's transaction: MySQL would
		// commit it, and PostgreSQL would roll the table back with it.
		if len(cols) == 0 {
			return validationErrorf("the meta table %s does not exist; run AutoMigrate on the store WithTx was called on, outside the transaction", s.metaTable)
		}
		return nil
	}
	db := s.db.WithContext(ctx)
	if len(cols) == 0 {
		if err := db.Exec(s.createMetaTableSQL()).Error; err != nil {
			return fmt.Errorf("vaultstore: failed to create table %s: %w", s.metaTable, err)
		}
	}
	indexName := "idx_" + s.metaTable + "_object"
	uniqueColumns := []string{COLUMN_OBJECT_TYPE, COLUMN_OBJECT_ID, COLUMN_META_KEY}
	if len(cols) > 0 {
		indexes, err := s.tableIndexes(ctx, s.metaTable)
		if err != nil {
			return err
		}
		hasUnique := slices.ContainsFunc(indexes, func(ix indexInfo) bool {
			return ix.unique && slices.Equal(ix.columns, uniqueColumns)
		})
		if !hasUnique {
			// Older releases upserted settings with a read and then a
			// write, so duplicates can exist; the newest row of each key
			// is the one they read last, and it is the one kept.
			q := s.quoteIdent
			stmt := fmt.Sprintf("DELETE FROM %[1]s WHERE %[2]s NOT IN (SELECT keep_id FROM (SELECT MAX(%[2]s) AS keep_id FROM %[1]s GROUP BY %[3]s, %[4]s, %[5]s) AS keep)",
				q(s.metaTable), q(COLUMN_ID), q(COLUMN_OBJECT_TYPE), q(COLUMN_OBJECT_ID), q(COLUMN_META_KEY))
			if err := db.Exec(stmt).Error; err != nil {
				return fmt.Errorf("vaultstore: failed to remove duplicate rows from %s: %w", s.metaTable, err)
			}
		}
	}
	if err := s.ensureIndex(ctx, s.metaTable, indexName, true, uniqueColumns...); err != nil {
		return err
	}
	if err := s.ensureRecordMetaSchema(ctx); err != nil {
		return err
	}
	s.shared.metaReady.Store(true)
	return nil
}

// isUniqueViolation reports whether err is a unique or primary-key
// violation of SQLite, PostgreSQL or MySQL/MariaDB.
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number == 1062
	}
	// SQLite drivers expose the extended result code through Code(); 2067
	// is SQLITE_CONSTRAINT_UNIQUE and 1555 SQLITE_CONSTRAINT_PRIMARYKEY.
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		return coded.Code() == 2067 || coded.Code() == 1555
	}
	return false
}

// isRetryableTxError reports whether the database aborted a transaction
// that may succeed when run again: a deadlock or serialisation failure on
// PostgreSQL, a deadlock or lock wait timeout on MySQL, a busy database on
// SQLite.
func isRetryableTxError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number == 1213 || myErr.Number == 1205
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		// SQLITE_BUSY and SQLITE_LOCKED, with their extended codes.
		return coded.Code()&0xff == 5 || coded.Code()&0xff == 6
	}
	return false
}
