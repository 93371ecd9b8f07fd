package vaultstore_test

import (
	"context"
	"database/sql"
	"maps"
	"strings"
	"testing"

	"github.com/vaultstore/vaultstore"
)

// legacyVaultDDL is the vault table as older releases left it: no
// expires_at, nullable columns, TEXT (or case-insensitive) token and value
// columns, and uniqueness as a column constraint.
var legacyVaultDDL = map[string]string{
	"sqlite":   `CREATE TABLE %s (id TEXT NOT NULL PRIMARY KEY, vault_token TEXT UNIQUE, vault_value TEXT, created_at TEXT, updated_at TEXT, soft_deleted_at TEXT)`,
	"postgres": `CREATE TABLE %s (id varchar(40) NOT NULL PRIMARY KEY, vault_token varchar(40) UNIQUE, vault_value text, created_at timestamp, updated_at timestamp, soft_deleted_at timestamp)`,
	"mysql":    `CREATE TABLE %s (id varchar(40) NOT NULL PRIMARY KEY, vault_token varchar(40) UNIQUE, vault_value text, created_at datetime, updated_at datetime, soft_deleted_at datetime) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
}

// legacyMetaDDL is a meta table without the unique index, holding a
// duplicate setting as the old read-then-write upsert could leave.
var legacyMetaDDL = map[string]string{
	"sqlite":   `CREATE TABLE %s (id INTEGER PRIMARY KEY AUTOINCREMENT, object_type varchar(50), object_id varchar(64), meta_key varchar(50), meta_value text)`,
	"postgres": `CREATE TABLE %s (id bigserial PRIMARY KEY, object_type varchar(50), object_id varchar(64), meta_key varchar(50), meta_value text)`,
	"mysql":    `CREATE TABLE %s (id bigint unsigned AUTO_INCREMENT PRIMARY KEY, object_type varchar(50), object_id varchar(64), meta_key varchar(50), meta_value text)`,
}

func mustExec(t testing.TB, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// snapshot reads every row, soft-deleted included, keyed by id.
func snapshot(t testing.TB, s *vaultstore.Store) map[string]map[string]string {
	t.Helper()
	list, err := s.RecordList(context.Background(), vaultstore.RecordQuery().SetSoftDeletedInclude(true))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, r := range list {
		out[r.GetID()] = r.Data()
	}
	return out
}

func TestAutoMigrateUpgradesLegacyLayout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		vault, meta := uniqueTables(t, db)
		mustExec(t, db, sprintf(legacyVaultDDL[b.name], vault))
		mustExec(t, db, sprintf(legacyMetaDDL[b.name], meta))
		insert := sprintf("INSERT INTO %s (id, vault_token, vault_value, created_at, updated_at, soft_deleted_at) VALUES (?, ?, ?, ?, ?, ?)", vault)
		if b.name == "postgres" {
			insert = sprintf("INSERT INTO %s (id, vault_token, vault_value, created_at, updated_at, soft_deleted_at) VALUES ($1, $2, $3, $4, $5, $6)", vault)
		}
		mustExec(t, db, insert, "1", "tk_legacyLive0001", "live value", "2020-01-01 10:00:00", "2020-01-02 10:00:00", "9999-12-31 23:59:59")
		mustExec(t, db, insert, "2", "tk_legacySoft0002", "soft value", "2020-02-01 10:00:00", "2020-02-02 10:00:00", "2021-03-04 05:06:07")
		mustExec(t, db, insert, "3", "tk_legacyNull0003", "null value", "2020-03-01 10:00:00", nil, "2022-01-01 00:00:00")
		metaInsert := sprintf("INSERT INTO %s (object_type, object_id, meta_key, meta_value) VALUES ('vault', 'settings', 'k', ?)", meta)
		if b.name == "postgres" {
			metaInsert = sprintf("INSERT INTO %s (object_type, object_id, meta_key, meta_value) VALUES ('vault', 'settings', 'k', $1)", meta)
		}
		mustExec(t, db, metaInsert, "older")
		mustExec(t, db, metaInsert, "newer")

		s, err := vaultstore.NewStore(vaultstore.NewStoreOptions{VaultTableName: vault, VaultMetaTableName: meta, DB: db, CryptoConfig: testCrypto()})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AutoMigrate(); err != nil {
			t.Fatalf("first AutoMigrate: %v", err)
		}
		first := snapshot(t, s)
		want := map[string]map[string]string{
			"1": {"id": "1", "vault_token": "tk_legacyLive0001", "vault_value": "live value", "created_at": "2020-01-01 10:00:00", "updated_at": "2020-01-02 10:00:00", "expires_at": vaultstore.MAX_DATETIME, "soft_deleted_at": vaultstore.MAX_DATETIME},
			"2": {"id": "2", "vault_token": "tk_legacySoft0002", "vault_value": "soft value", "created_at": "2020-02-01 10:00:00", "updated_at": "2020-02-02 10:00:00", "expires_at": vaultstore.MAX_DATETIME, "soft_deleted_at": "2021-03-04 05:06:07"},
			// Only the NULL column is filled, from created_at; the soft
			// delete survives.
			"3": {"id": "3", "vault_token": "tk_legacyNull0003", "vault_value": "null value", "created_at": "2020-03-01 10:00:00", "updated_at": "2020-03-01 10:00:00", "expires_at": vaultstore.MAX_DATETIME, "soft_deleted_at": "2022-01-01 00:00:00"},
		}
		for id, w := range want {
			if !maps.Equal(first[id], w) {
				t.Errorf("row %s after migration:\n got %v\nwant %v", id, first[id], w)
			}
		}
		if err := s.AutoMigrate(); err != nil {
			t.Fatalf("second AutoMigrate: %v", err)
		}
		second := snapshot(t, s)
		if !maps.EqualFunc(first, second, maps.Equal) {
			t.Errorf("second AutoMigrate changed rows:\n%v\n%v", first, second)
		}
		if v, err := s.GetVaultSetting(ctx, "k"); err != nil || v != "newer" {
			t.Errorf("deduplicated setting = %q, %v; want the newest", v, err)
		}
		if n := countRows(t, db, "SELECT COUNT(*) FROM "+meta); n != 1 {
			t.Errorf("%d meta rows after deduplication, want 1", n)
		}
		// Tokens that differ only in case are different tokens, also where
		// the old column compared case-insensitively.
		mustCreateRecord(t, s, "tk_CaseSensitive1", "upper")
		mustCreateRecord(t, s, "tk_casesensitive1", "lower")
		r, err := s.RecordFindByToken(ctx, "tk_casesensitive1")
		if err != nil || r == nil || r.GetValue() != "lower" {
			t.Errorf("case-sensitive lookup: %v, %v", r, err)
		}
	})
}

func TestAutoMigrateIsNoOpOnCurrentTables(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		if err := s.AutoMigrate(); err != nil {
			t.Fatalf("AutoMigrate on empty tables: %v", err)
		}
		for i := range 5 {
			mustCreateRecord(t, s, tokenN(i), "v")
		}
		if err := s.RecordSoftDeleteByToken(ctx, tokenN(0)); err != nil {
			t.Fatal(err)
		}
		if err := s.TokenRenew(ctx, tokenN(1), timeIn(48)); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, s)
		if err := s.AutoMigrate(); err != nil {
			t.Fatalf("AutoMigrate on populated tables: %v", err)
		}
		if after := snapshot(t, s); !maps.EqualFunc(before, after, maps.Equal) {
			t.Errorf("AutoMigrate changed rows:\n%v\n%v", before, after)
		}
	})
}

// TestMySQLValueColumnIsBinary: on MySQL the value column compares
// byte-exactly, since rotation's compare-and-set compares values.
func TestMySQLValueColumnIsBinary(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		if b.name != "mysql" {
			t.Skip("MySQL only")
		}
		db := b.open(t)
		s := newStore(t, db)
		var collation string
		err := db.QueryRow("SELECT collation_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND column_name = 'vault_value'", s.GetVaultTableName()).Scan(&collation)
		if err != nil || !strings.HasSuffix(collation, "_bin") {
			t.Errorf("vault_value collation = %q, %v; want a _bin collation", collation, err)
		}
	})
}
