package vaultstore

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// statsPageSize is how many rows one page of Stats reads. Only the first
// statsPrefixLen characters of each value are read, so a page stays small
// whatever the values hold.
const statsPageSize = 5000

// statsPrefixLen covers "v3:" and the base64 of the first 12 header bytes
// of a v3 value (version, KDF, Argon2id iterations, memory, parallelism,
// key length), and the longest version prefix valueVersion accepts.
const statsPrefixLen = 3 + 16

// VaultStats describes what a vault holds, as Store.Stats counts it. It
// contains no value, token or password.
type VaultStats struct {
	// Rows is every row of the vault table. Live rows are neither
	// soft-deleted nor expired; Expired rows are expired but not
	// soft-deleted; SoftDeleted rows are soft-deleted, expired or not. So
	// Rows = Live + Expired + SoftDeleted.
	Rows, Live, Expired, SoftDeleted int64

	// V1, V2 and V3 count values by format; Unknown counts values whose
	// prefix names no format this library reads, or whose v3 header is
	// malformed.
	V1, V2, V3, Unknown int64

	// V3Params counts v3 values by the Argon2id parameters in their
	// headers, most common first.
	V3Params []V3ParamsCount

	// PasswordIdentities is the number of password identities in the meta
	// table (zero when it does not exist).
	PasswordIdentities int64

	// Schema says whether AutoMigrate has anything to do.
	Schema SchemaStatus
}

// V3ParamsCount is the number of v3 values written with one set of
// Argon2id parameters (MemoryKiB in KiB).
type V3ParamsCount struct {
	Iterations  uint32
	MemoryKiB   uint32
	Parallelism uint8
	// RootBound values need the vault's KMS root key too (KDF 2).
	RootBound bool
	Count     int64
}

// SchemaStatus says what AutoMigrate would change in the store's tables.
type SchemaStatus struct {
	// VaultTable and MetaTable report whether each table exists.
	VaultTable, MetaTable bool
	// Pending lists, in words, each thing AutoMigrate would create or
	// change: a missing table, column or index, NULL timestamps left by
	// older releases, MySQL columns without exact (binary) comparison.
	// Empty when the tables are current.
	Pending []string
}

// NeedsMigrate reports whether AutoMigrate has anything to do.
func (s SchemaStatus) NeedsMigrate() bool { return len(s.Pending) > 0 }

// Stats counts the vault's rows by state and its values by format and v3
// parameters, counts password identities and checks the schema. It needs
// no password and never decrypts. Rows are read in keyset pages of their
// id and the first few characters of their value, so memory does not grow
// with the table. On a database whose vault table does not exist yet, the
// counts are zero and Schema says so. The counts are a snapshot only as
// far as the database makes one: rows written while Stats runs may or may
// not be counted.
func (s *Store) Stats(ctx context.Context) (st VaultStats, err error) {
	ctx, op := s.observe(ctx, opStats)
	defer op.end(&err)
	schema, cols, err := s.schemaStatus(ctx)
	if err != nil {
		return st, err
	}
	st.Schema = schema
	if !schema.VaultTable {
		return st, nil
	}
	if err := s.countRowStates(ctx, cols, &st); err != nil {
		return st, err
	}
	if err := s.countFormats(ctx, &st); err != nil {
		return st, err
	}
	if schema.MetaTable {
		err := s.meta(ctx).Where(COLUMN_OBJECT_TYPE+" = ? AND "+COLUMN_META_KEY+" = ?", OBJECT_TYPE_PASSWORD_IDENTITY, META_KEY_HASH).
			Count(&st.PasswordIdentities).Error
		if err != nil {
			return st, fmt.Errorf("vaultstore: failed to count password identities: %w", err)
		}
	}
	return st, nil
}

// SchemaCheck says what AutoMigrate would change, without changing
// anything.
func (s *Store) SchemaCheck(ctx context.Context) (st SchemaStatus, err error) {
	ctx, op := s.observe(ctx, opSchemaCheck)
	defer op.end(&err)
	st, _, err = s.schemaStatus(ctx)
	return st, err
}

// countRowStates fills Rows, Live, Expired and SoftDeleted in one query. A
// NULL or missing timestamp column means never, as it does for reads.
func (s *Store) countRowStates(ctx context.Context, cols map[string]columnInfo, st *VaultStats) error {
	now := nowString()
	q := s.quoteIdent
	// "1 = 0" stands for a column older tables lack: never.
	soft, expired := "1 = 0", "1 = 0"
	var softArgs, expiredArgs []any
	if _, ok := cols[COLUMN_SOFT_DELETED_AT]; ok {
		soft, softArgs = q(COLUMN_SOFT_DELETED_AT)+" <= ?", []any{now}
	}
	if _, ok := cols[COLUMN_EXPIRES_AT]; ok {
		expired, expiredArgs = q(COLUMN_EXPIRES_AT)+" <= ?", []any{now}
	}
	// A CASE condition that is NULL is false, so NULL means never.
	query := fmt.Sprintf("SELECT COUNT(*), COALESCE(SUM(CASE WHEN %[1]s THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN %[1]s THEN 0 WHEN %[2]s THEN 1 ELSE 0 END), 0) FROM %[3]s",
		soft, expired, q(s.vaultTable))
	args := slices.Concat(softArgs, softArgs, expiredArgs)
	if err := s.db.WithContext(ctx).Raw(query, args...).Row().Scan(&st.Rows, &st.SoftDeleted, &st.Expired); err != nil {
		return fmt.Errorf("vaultstore: failed to count records: %w", err)
	}
	st.Live = st.Rows - st.SoftDeleted - st.Expired
	return nil
}

// countFormats reads the id and value prefix of every row in keyset pages
// and counts formats and v3 parameter sets.
func (s *Store) countFormats(ctx context.Context, st *VaultStats) error {
	params := map[argon2Params]int64{}
	prefix := fmt.Sprintf("SUBSTR(%s, 1, %d) AS %s", s.quoteIdent(COLUMN_VAULT_VALUE), statsPrefixLen, s.quoteIdent(COLUMN_VAULT_VALUE))
	after := ""
	for {
		var rows []gormVaultRecord
		q := s.vault(ctx).Select(COLUMN_ID + ", " + prefix).Order(COLUMN_ID + " ASC").Limit(statsPageSize)
		if after != "" {
			q = q.Where(COLUMN_ID+" > ?", after)
		}
		if err := q.Find(&rows).Error; err != nil {
			return fmt.Errorf("vaultstore: failed to read records: %w", err)
		}
		for _, r := range rows {
			version, err := valueVersion(r.Value)
			if err != nil {
				st.Unknown++
				continue
			}
			switch version {
			case ENCRYPTION_VERSION_V1:
				st.V1++
			case ENCRYPTION_VERSION_V2:
				st.V2++
			case ENCRYPTION_VERSION_V3:
				p, ok := v3HeaderParams(r.Value)
				if !ok {
					st.Unknown++
					continue
				}
				st.V3++
				params[p]++
			}
		}
		if len(rows) < statsPageSize {
			break
		}
		after = rows[len(rows)-1].ID
	}
	for p, n := range params {
		st.V3Params = append(st.V3Params, V3ParamsCount{Iterations: p.Iterations, MemoryKiB: p.MemoryKiB, Parallelism: p.Parallelism, RootBound: p.Root, Count: n})
	}
	slices.SortFunc(st.V3Params, func(a, b V3ParamsCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Iterations, b.Iterations),
			cmp.Compare(a.MemoryKiB, b.MemoryKiB), cmp.Compare(a.Parallelism, b.Parallelism))
	})
	return nil
}

// v3HeaderParams decodes the Argon2id parameters from the first bytes of a
// v3 value (the layout of parseV3).
func v3HeaderParams(prefix string) (argon2Params, bool) {
	body, ok := strings.CutPrefix(prefix, ENCRYPTION_PREFIX_V3)
	if !ok || len(body) < 16 {
		return argon2Params{}, false
	}
	raw, err := b64.DecodeString(body[:16])
	if err != nil || raw[0] != v3Version || (raw[1] != v3KDFArgon2id && raw[1] != v3KDFRooted) {
		return argon2Params{}, false
	}
	p := argon2Params{
		Iterations:  binary.BigEndian.Uint32(raw[2:]),
		MemoryKiB:   binary.BigEndian.Uint32(raw[6:]),
		Parallelism: raw[10],
		KeyLength:   uint32(raw[11]),
		Root:        raw[1] == v3KDFRooted,
	}
	if checkArgon2Bounds(p) != nil || p.KeyLength != v3KeyLen {
		return argon2Params{}, false
	}
	return p, true
}

// schemaStatus compares the tables with what AutoMigrate makes, and returns
// the vault table's columns.
func (s *Store) schemaStatus(ctx context.Context) (SchemaStatus, map[string]columnInfo, error) {
	var st SchemaStatus
	cols, err := s.tableColumns(ctx, s.vaultTable)
	if err != nil {
		return st, nil, err
	}
	st.VaultTable = len(cols) > 0
	if !st.VaultTable {
		st.Pending = append(st.Pending, "create table "+s.vaultTable)
	} else {
		var nullable []string
		for _, c := range []string{COLUMN_CREATED_AT, COLUMN_UPDATED_AT, COLUMN_EXPIRES_AT, COLUMN_SOFT_DELETED_AT} {
			if _, ok := cols[c]; !ok {
				st.Pending = append(st.Pending, fmt.Sprintf("add column %s.%s", s.vaultTable, c))
			} else {
				nullable = append(nullable, s.quoteIdent(c)+" IS NULL")
			}
		}
		if len(nullable) > 0 {
			var n int64
			if err := s.vault(ctx).Where(strings.Join(nullable, " OR ")).Count(&n).Error; err != nil {
				return st, nil, fmt.Errorf("vaultstore: failed to count NULL timestamps: %w", err)
			}
			if n > 0 {
				st.Pending = append(st.Pending, fmt.Sprintf("fill NULL timestamps of %d rows of %s", n, s.vaultTable))
			}
		}
		if s.dialect == dialectMySQL {
			for _, c := range []string{COLUMN_ID, COLUMN_VAULT_TOKEN} {
				if info, ok := cols[c]; ok && !strings.HasSuffix(info.collation, "_bin") {
					st.Pending = append(st.Pending, fmt.Sprintf("make %s.%s compare exactly (binary collation)", s.vaultTable, c))
				}
			}
			if v, ok := cols[COLUMN_VAULT_VALUE]; ok && (v.dataType != "longtext" || !strings.HasSuffix(v.collation, "_bin")) {
				st.Pending = append(st.Pending, fmt.Sprintf("make %s.%s longtext with binary collation", s.vaultTable, COLUMN_VAULT_VALUE))
			}
		}
	}
	missing, err := s.missingIndexes(ctx, s.vaultTable, st.VaultTable, []indexWant{
		{true, []string{COLUMN_VAULT_TOKEN}},
		{false, []string{COLUMN_EXPIRES_AT}},
		{false, []string{COLUMN_SOFT_DELETED_AT}},
	})
	if err != nil {
		return st, nil, err
	}
	st.Pending = append(st.Pending, missing...)

	metaCols, err := s.tableColumns(ctx, s.metaTable)
	if err != nil {
		return st, nil, err
	}
	st.MetaTable = len(metaCols) > 0
	if !st.MetaTable {
		st.Pending = append(st.Pending, "create table "+s.metaTable)
	}
	missing, err = s.missingIndexes(ctx, s.metaTable, st.MetaTable, []indexWant{
		{true, []string{COLUMN_OBJECT_TYPE, COLUMN_OBJECT_ID, COLUMN_META_KEY}},
	})
	if err != nil {
		return st, nil, err
	}
	st.Pending = append(st.Pending, missing...)
	return st, cols, nil
}

// indexWant is an index AutoMigrate makes: on columns, unique or not.
type indexWant struct {
	unique  bool
	columns []string
}

// missingIndexes lists, in words, the wanted indexes table lacks (all of
// them when it does not exist), recognising them as ensureIndex does.
func (s *Store) missingIndexes(ctx context.Context, table string, exists bool, want []indexWant) ([]string, error) {
	var have []indexInfo
	if exists {
		var err error
		if have, err = s.tableIndexes(ctx, table); err != nil {
			return nil, err
		}
	}
	var out []string
	for _, w := range want {
		found := slices.ContainsFunc(have, func(ix indexInfo) bool {
			return slices.Equal(ix.columns, w.columns) && (ix.unique || !w.unique)
		})
		if !found {
			kind := "index"
			if w.unique {
				kind = "unique index"
			}
			out = append(out, fmt.Sprintf("create %s on %s(%s)", kind, table, strings.Join(w.columns, ", ")))
		}
	}
	return out, nil
}
