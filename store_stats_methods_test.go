package vaultstore_test

import (
	"context"
	"slices"
	"testing"

	"github.com/vaultstore/vaultstore"
)

// TestStats counts rows by state, values by format and v3 parameters, and
// identities, and reports the schema before and after AutoMigrate.
func TestStats(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db, func(o *vaultstore.NewStoreOptions) {
			o.AutomigrateEnabled = false
			o.PasswordIdentityEnabled = true
		})

		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatalf("Stats on no tables: %v", err)
		}
		if st.Schema.VaultTable || st.Schema.MetaTable || !st.Schema.NeedsMigrate() || st.Rows != 0 {
			t.Fatalf("Stats on no tables = %+v, want no tables and a pending migration", st)
		}
		if err := s.AutoMigrate(); err != nil {
			t.Fatal(err)
		}
		if st, err := s.SchemaCheck(ctx); err != nil || st.NeedsMigrate() || !st.VaultTable || !st.MetaTable {
			t.Fatalf("SchemaCheck after AutoMigrate = %+v, %v; want current tables", st, err)
		}

		// 3 live, 2 expired, 2 soft-deleted (one of them also expired).
		mustCustom(t, s, "tk_stats_live1", "a", pwOld)
		mustCustom(t, s, "tk_stats_live2", "b", pwOld)
		mustCustom(t, s, "tk_stats_exp1", "c", pwOther, expiring(-1))
		mustCustom(t, s, "tk_stats_exp2", "d", pwOther, expiring(-2))
		mustCustom(t, s, "tk_stats_soft1", "e", pwOld)
		mustCustom(t, s, "tk_stats_soft2", "f", pwOld, expiring(-1))
		for _, tk := range []string{"tk_stats_soft1", "tk_stats_soft2"} {
			if err := s.TokenSoftDelete(ctx, tk); err != nil {
				t.Fatal(err)
			}
		}
		// A v3 value with other parameters, a v2, a v1 and an unknown one.
		other := reopen(t, s, vaultstore.NewStoreOptions{DB: db}, func(o *vaultstore.NewStoreOptions) {
			o.CryptoConfig = &vaultstore.CryptoConfig{Iterations: 2, Memory: 16, Parallelism: 1, KeyLength: 32, SaltSize: 16, NonceSize: 12, TagSize: 16}
		})
		mustCustom(t, other, "tk_stats_live3", "g", pwOld)
		mustCreateRecord(t, s, "tk_stats_v2", "v2:AAAA")
		mustCreateRecord(t, s, "tk_stats_v1", "fAx3B2hTUzEEX11gMllveGdx")
		mustCreateRecord(t, s, "tk_stats_v9", "v9:AAAA")

		st, err = s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := vaultstore.VaultStats{
			Rows: 10, Live: 6, Expired: 2, SoftDeleted: 2,
			V1: 1, V2: 1, V3: 7, Unknown: 1,
			V3Params: []vaultstore.V3ParamsCount{
				{Iterations: 1, MemoryKiB: 8, Parallelism: 1, Count: 6},
				{Iterations: 2, MemoryKiB: 16, Parallelism: 1, Count: 1},
			},
			PasswordIdentities: 2,
			Schema:             vaultstore.SchemaStatus{VaultTable: true, MetaTable: true},
		}
		if st.Rows != want.Rows || st.Live != want.Live || st.Expired != want.Expired || st.SoftDeleted != want.SoftDeleted ||
			st.V1 != want.V1 || st.V2 != want.V2 || st.V3 != want.V3 || st.Unknown != want.Unknown ||
			!slices.Equal(st.V3Params, want.V3Params) || st.PasswordIdentities != want.PasswordIdentities ||
			st.Schema.VaultTable != true || st.Schema.MetaTable != true || st.Schema.NeedsMigrate() {
			t.Errorf("Stats =\n%+v\nwant\n%+v", st, want)
		}
	})
}

// TestStatsOlderTable: a vault table of an early release, without the
// timestamp columns AutoMigrate adds and without the meta table, is counted
// (missing columns mean never) and reported as needing a migration.
func TestStatsOlderTable(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db, func(o *vaultstore.NewStoreOptions) { o.AutomigrateEnabled = false })
		table := s.GetVaultTableName()
		if _, err := db.Exec("CREATE TABLE " + table + " (id varchar(40) PRIMARY KEY, vault_token varchar(40) NOT NULL, vault_value text NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("INSERT INTO " + table + " (id, vault_token, vault_value) VALUES ('1', 'tk_old_000000001', 'v2:AAAA'), ('2', 'tk_old_000000002', 'abc')"); err != nil {
			t.Fatal(err)
		}
		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Rows != 2 || st.Live != 2 || st.V2 != 1 || st.V1 != 1 || !st.Schema.VaultTable || st.Schema.MetaTable || !st.Schema.NeedsMigrate() {
			t.Errorf("Stats of an older table = %+v", st)
		}
		for _, c := range []string{"created_at", "expires_at"} {
			if !slices.Contains(st.Schema.Pending, "add column "+table+"."+c) {
				t.Errorf("Pending = %q, want it to add %s", st.Schema.Pending, c)
			}
		}
		if err := s.AutoMigrate(); err != nil {
			t.Fatal(err)
		}
		if st, err := s.SchemaCheck(ctx); err != nil || st.NeedsMigrate() {
			t.Errorf("SchemaCheck after AutoMigrate = %+v, %v", st, err)
		}
	})
}
