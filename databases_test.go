package vaultstore_test

// Acceptance tests of issue 6 ("every database"), the parts the other test
// files do not already cover:
//
//   - 20 racing TokenCreateCustom of one token: TestTokenCreateCustomConcurrentSameToken.
//   - concurrent create/read/update/read/delete cycles at full scale:
//     TestDatabasesConcurrentCRUDCycles (TestTokenConcurrentLifecycles runs
//     25 cycles with upserts and soft deletes).
//   - a rotation racing updates: TestDatabasesRotationWithConcurrentUpdates.
//   - AutoMigrate changes no row, column or index, on either table:
//     TestDatabasesAutoMigrateChangesNothing (TestAutoMigrateIsNoOpOnCurrentTables
//     compares vault rows as the store reads them).
//   - dialect details through a MySQL DSN with and without parseTime:
//     TestDatabasesDialectDetails (case, 1 MiB and expiry are also covered
//     by TestTokenCreateCustom, TestTokenCreateValues and TestTokenCreateExpiry
//     on the shared backends).
//
// Each test runs on a file-backed SQLite database in WAL mode (real
// concurrent connections, unlike the in-memory database of forEachBackend)
// and on every server whose DSN is set, each subtest in fresh tables.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/vaultstore/vaultstore"
)

// Passwords of this file; they meet the default policy.
const (
	dbPwOld = "databases-old-Passw0rd-7731"
	dbPwNew = "databases-new-Passw0rd-8842"
)

// dbBackend is a database of this file's tests: dialect is the backend
// name of helpers_test.go ("sqlite", "postgres", "mysql").
type dbBackend struct {
	name, dialect string
	open          func(t testing.TB) *sql.DB
}

// databaseBackends is a file-backed SQLite database and every server of
// backends().
func databaseBackends() []dbBackend {
	list := []dbBackend{{name: "sqlite-file", dialect: "sqlite", open: openFileSQLite}}
	for _, b := range backends() {
		if b.name == "sqlite" {
			continue
		}
		list = append(list, dbBackend{name: b.name, dialect: b.name, open: b.open})
	}
	return list
}

// forEachDatabase runs fn as a subtest per database, timing each.
func forEachDatabase(t *testing.T, fn func(t *testing.T, b dbBackend)) {
	t.Helper()
	for _, b := range databaseBackends() {
		t.Run(b.name, func(t *testing.T) {
			start := time.Now()
			t.Cleanup(func() { t.Logf("%s took %v", b.name, time.Since(start).Round(time.Millisecond)) })
			fn(t, b)
		})
	}
}

// ---------------------------------------------------------------------------
// Concurrent lifecycles

// TestDatabasesConcurrentCRUDCycles: 8 goroutines run 100
// create/read/update/read/delete cycles each on their own tokens. No call
// fails, every read returns the last value written (the update is never
// lost or read stale), and the table is empty at the end.
func TestDatabasesConcurrentCRUDCycles(t *testing.T) {
	t.Parallel()
	forEachDatabase(t, func(t *testing.T, b dbBackend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db)
		const goroutines, cycles = 8, 100
		var failures atomic.Int64
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				fail := func(format string, args ...any) {
					if failures.Add(1) <= 5 {
						t.Errorf("goroutine %d: "+format, append([]any{g}, args...)...)
					}
				}
				for c := range cycles {
					tok := fmt.Sprintf("tk_crud_g%d_c%03d", g, c)
					created := fmt.Sprintf("g%d c%d created", g, c)
					if err := s.TokenCreateCustom(ctx, tok, created, dbPwOld); err != nil {
						fail("cycle %d TokenCreateCustom: %v", c, err)
						return
					}
					if v, err := s.TokenRead(ctx, tok, dbPwOld); err != nil || v != created {
						fail("cycle %d read after create = %q, %v, want %q", c, v, err, created)
						return
					}
					updated := fmt.Sprintf("g%d c%d updated", g, c)
					if err := s.TokenUpdate(ctx, tok, updated, dbPwNew); err != nil {
						fail("cycle %d TokenUpdate: %v", c, err)
						return
					}
					if v, err := s.TokenRead(ctx, tok, dbPwNew); err != nil || v != updated {
						fail("cycle %d read after update = %q, %v, want %q (lost or stale write)", c, v, err, updated)
						return
					}
					if v, err := s.TokenRead(ctx, tok, dbPwOld); !errors.Is(err, vaultstore.ErrInvalidPassword) {
						fail("cycle %d read after update with the old password = %q, %v, want ErrInvalidPassword", c, v, err)
						return
					}
					if err := s.TokenDelete(ctx, tok); err != nil {
						fail("cycle %d TokenDelete: %v", c, err)
						return
					}
					if v, err := s.TokenRead(ctx, tok, dbPwNew); !errors.Is(err, vaultstore.ErrRecordNotFound) {
						fail("cycle %d read after delete = %q, %v, want ErrRecordNotFound", c, v, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if n := failures.Load(); n > 0 {
			t.Errorf("%d goroutine(s) failed", n)
		}
		if n := countRows(t, db, "SELECT COUNT(*) FROM "+s.GetVaultTableName()); n != 0 {
			t.Errorf("%d rows left after every cycle deleted its token, want 0", n)
		}
	})
}

// ---------------------------------------------------------------------------
// Password rotation racing updates

// TestDatabasesRotationWithConcurrentUpdates: TokensChangePassword over
// 2,500 records (5 batches of 500) while another goroutine updates 100 of
// them under the new password, over and over until the rotation returns,
// and while, in each batch, a hook updates two more records between the
// batch's read and its write: one under the new password, one under the
// old. Afterwards no record opens with the old password, every record
// opens with the new one and holds the last value written to it (an
// update the rotation overwrote shows: the updater stops when the rotation
// returns and does not write its tokens again), every record nobody
// updated was rewritten with its other columns unchanged, and the count
// covers those 2,390, the 5 updated under the old password, and at most the
// updater's 100. The hook's updates fail the test every time without the
// compare-and-set (compareAndSetValues) or without the re-read of rows
// whose compare-and-set failed (rotation.batch); the updater's only when
// one of its writes happens to land between a read and a write.
func TestDatabasesRotationWithConcurrentUpdates(t *testing.T) {
	t.Parallel()
	forEachDatabase(t, func(t *testing.T, b dbBackend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db)
		const total, updates = 2500, 100
		// SQLite serialises writers, and with more than two a starved
		// one can wait out busy_timeout; the servers take more.
		createWorkers := 8
		if b.dialect == "sqlite" {
			createWorkers = 2
		}

		start := time.Now()
		tokens := make([]string, total)
		value := map[string]string{}
		err := dbParallel(total, createWorkers, func(i int) error {
			tok, err := s.TokenCreate(ctx, fmt.Sprintf("value %04d", i), dbPwOld, 24)
			tokens[i] = tok
			return err
		})
		if err != nil {
			t.Fatalf("TokenCreate: %v", err)
		}
		for i, tok := range tokens {
			value[tok] = fmt.Sprintf("value %04d", i)
		}
		t.Logf("%d TokenCreate calls (%d goroutines): %v", total, createWorkers, time.Since(start).Round(time.Millisecond))

		before := storedRows(t, s) // keyed by token, RecordList orders by id
		if len(before) != total {
			t.Fatalf("%d rows, want %d", len(before), total)
		}
		list, err := s.RecordList(ctx, vaultstore.RecordQuery().SetColumns([]string{vaultstore.COLUMN_ID, vaultstore.COLUMN_VAULT_TOKEN}))
		if err != nil || len(list) != total {
			t.Fatalf("RecordList = %d records, %v", len(list), err)
		}
		// The updated tokens are spread over the id range, and the
		// updater walks them from the highest id down while the rotation
		// walks up: some are updated before the rotation reaches them,
		// some after, and some between its read and its write.
		var updated []string
		for i := total - 1; i >= 0 && len(updated) < updates; i -= total / updates {
			updated = append(updated, list[i].GetToken())
		}
		isUpdated := map[string]bool{}
		for _, tok := range updated {
			isUpdated[tok] = true
		}

		// The hook's records: two in the middle of each batch, none of the
		// updater's. hookValue holds what the hook wrote to them.
		const batchSize, hookUpdates = 500, 2 * total / 500
		hookValue := map[string]string{}
		var batches int
		vaultstore.SetTestHook(s, func(p vaultstore.HookPoint, attempt int) error {
			if p != vaultstore.HookRotationWrite || attempt != 0 {
				return nil
			}
			k := batches
			batches++
			for j, pw := range []string{dbPwNew, dbPwOld} {
				tok := list[k*batchSize+batchSize/2+j].GetToken()
				v := fmt.Sprintf("hook batch %d %s", k, tok)
				if isUpdated[tok] {
					t.Errorf("the hook's %s is one of the updater's", tok)
				}
				if err := s.TokenUpdate(ctx, tok, v, pw); err != nil {
					t.Errorf("hook: TokenUpdate(%q): %v", tok, err)
					continue
				}
				hookValue[tok] = v
			}
			return nil
		})

		// The updater goes over its 100 tokens again and again until the
		// rotation has returned, so that updates land before, during and
		// after the rotation's visit of each of them. value holds the last
		// value written to each token. It stops as soon as the rotation
		// has returned: a further round would rewrite every token and hide
		// an update the rotation overwrote.
		var rotationDone atomic.Bool
		var rounds, duringRotation int
		var updErr error
		var wg sync.WaitGroup
		begin := make(chan struct{})
		wg.Go(func() {
			<-begin
			for round := 0; updErr == nil && !rotationDone.Load(); round++ {
				for _, tok := range updated {
					if rotationDone.Load() {
						break
					}
					v := fmt.Sprintf("updated r%d %s", round, tok)
					if err := s.TokenUpdate(ctx, tok, v, dbPwNew); err != nil {
						updErr = fmt.Errorf("round %d: TokenUpdate(%q): %w", round, tok, err)
						break
					}
					value[tok] = v
					duringRotation++
				}
				rounds = round + 1
			}
		})
		start = time.Now()
		close(begin)
		count, err := s.TokensChangePassword(ctx, dbPwOld, dbPwNew)
		rotationDone.Store(true)
		elapsed := time.Since(start)
		wg.Wait()
		vaultstore.SetTestHook(s, nil)
		t.Logf("TokensChangePassword of %d records: %v, count %d; %d updates of %d tokens in %d rounds, %d while it ran",
			total, elapsed.Round(time.Millisecond), count, rounds*updates, updates, rounds, duringRotation)
		if err != nil {
			t.Fatalf("TokensChangePassword = %d, %v", count, err)
		}
		if updErr != nil {
			t.Fatalf("concurrent %v", updErr)
		}
		if batches != total/batchSize || len(hookValue) != hookUpdates {
			t.Fatalf("the hook ran in %d batches and updated %d records, want %d and %d", batches, len(hookValue), total/batchSize, hookUpdates)
		}
		// Records under the new password when the rotation wrote: the
		// hook's half, and any number of the updater's.
		if lo, hi := total-updates-hookUpdates/2, total-hookUpdates/2; count < lo || count > hi {
			t.Errorf("TokensChangePassword = %d, want between %d (every record the updater did not touch, less the hook's under the new password) and %d", count, lo, hi)
		}
		for tok, v := range hookValue {
			value[tok] = v
			isUpdated[tok] = true
		}

		// Every record opens with the new password and holds its latest value.
		got, err := s.TokensRead(ctx, tokens, dbPwNew)
		if err != nil {
			t.Fatalf("TokensRead(all, new password): %v", err)
		}
		if len(got) != total {
			t.Errorf("TokensRead(all, new password) returned %d values, want %d", len(got), total)
		}
		lost := 0
		for _, tok := range tokens {
			if got[tok] != value[tok] {
				if lost++; lost <= 5 {
					t.Errorf("token %q (updated: %v) = %q, want %q", tok, isUpdated[tok], got[tok], value[tok])
				}
			}
		}
		if lost > 0 {
			t.Errorf("%d of %d records hold a wrong value after the rotation", lost, total)
		}

		// None opens with the old password.
		var openOld atomic.Int64
		err = dbParallel(total, 8, func(i int) error {
			v, err := s.TokenRead(ctx, tokens[i], dbPwOld)
			switch {
			case err == nil:
				if openOld.Add(1) <= 5 {
					t.Errorf("token %q still opens with the old password (%q)", tokens[i], v)
				}
			case !errors.Is(err, vaultstore.ErrInvalidPassword):
				return fmt.Errorf("TokenRead(%q, old password) = %w, want ErrInvalidPassword", tokens[i], err)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		if n := openOld.Load(); n > 0 {
			t.Errorf("%d records still open with the old password", n)
		}

		// Every record the updater did not touch was rewritten by the
		// rotation, which changed nothing else of it.
		after := storedRows(t, s)
		if len(after) != total {
			t.Errorf("%d rows after the rotation, want %d", len(after), total)
		}
		for _, tok := range tokens {
			if isUpdated[tok] {
				continue
			}
			b, a := before[tok], after[tok]
			if a[vaultstore.COLUMN_VAULT_VALUE] == b[vaultstore.COLUMN_VAULT_VALUE] {
				t.Errorf("%q was not re-encrypted", tok)
			}
			for _, c := range []string{vaultstore.COLUMN_ID, vaultstore.COLUMN_CREATED_AT, vaultstore.COLUMN_EXPIRES_AT, vaultstore.COLUMN_SOFT_DELETED_AT} {
				if a[c] != b[c] {
					t.Errorf("%q: rotation changed %s from %q to %q", tok, c, b[c], a[c])
				}
			}
		}

		// Nothing is left under the old password.
		if n, err := s.TokensChangePassword(ctx, dbPwOld, dbPwNew); err != nil || n != 0 {
			t.Errorf("second TokensChangePassword = %d, %v, want 0", n, err)
		}
	})
}

// ---------------------------------------------------------------------------
// AutoMigrate on current tables

// dbRawRows reads every row of table with SQL of the test's own, every column
// rendered as a string, in id order. On SQLite each column is read through
// quote(), so that the stored text (and storage class) is compared, not
// what the driver parses a datetime column into.
func dbRawRows(t testing.TB, db *sql.DB, dialect, table string) []string {
	t.Helper()
	query := "SELECT * FROM " + table + " ORDER BY id"
	if dialect == "sqlite" {
		var exprs []string
		for _, c := range dbQueryStrings(t, db, "SELECT name FROM pragma_table_info(?) ORDER BY cid", table) {
			name := strings.Trim(strings.TrimPrefix(c, "name="), `"`)
			exprs = append(exprs, `quote("`+name+`") AS "`+name+`"`)
		}
		query = "SELECT " + strings.Join(exprs, ", ") + " FROM " + table + " ORDER BY id"
	}
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("reading %s: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("reading %s: %v", table, err)
		}
		fields := make([]string, len(cols))
		for i, v := range vals {
			var s string
			switch v := v.(type) {
			case nil:
				s = "NULL"
			case []byte:
				s = fmt.Sprintf("%q", v)
			case time.Time:
				s = v.Format(time.RFC3339Nano)
			default:
				s = fmt.Sprintf("%T:%v", v, v)
			}
			fields[i] = cols[i] + "=" + s
		}
		out = append(out, strings.Join(fields, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading %s: %v", table, err)
	}
	return out
}

// dbQueryStrings runs a query written by the test and renders each row.
func dbQueryStrings(t testing.TB, db *sql.DB, query string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		fields := make([]string, len(cols))
		for i, v := range vals {
			fields[i] = fmt.Sprintf("%s=%q", strings.ToLower(cols[i]), v.String)
		}
		out = append(out, strings.Join(fields, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}

// dbSchemaOf describes table: its columns with their types, collations and
// defaults, its indexes, and what changes when the table is rebuilt (the
// root page on SQLite, the file node on PostgreSQL, the creation time on
// MariaDB).
func dbSchemaOf(t testing.TB, db *sql.DB, dialect, table string) []string {
	t.Helper()
	switch dialect {
	case "postgres":
		return slices.Concat(
			dbQueryStrings(t, db, `SELECT column_name, data_type, character_maximum_length, is_nullable, column_default, collation_name
				FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, table),
			dbQueryStrings(t, db, `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1 ORDER BY indexname`, table),
			dbQueryStrings(t, db, `SELECT c.relfilenode FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = current_schema() AND c.relname = $1`, table),
		)
	case "mysql":
		return slices.Concat(
			dbQueryStrings(t, db, `SELECT column_name, column_type, is_nullable, column_default, collation_name, extra
				FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position`, table),
			dbQueryStrings(t, db, `SELECT index_name, non_unique, seq_in_index, column_name, collation, sub_part
				FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? ORDER BY index_name, seq_in_index`, table),
			dbQueryStrings(t, db, `SELECT engine, table_collation, create_time FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?`, table),
		)
	default:
		return dbQueryStrings(t, db, `SELECT type, name, rootpage, sql FROM sqlite_master WHERE tbl_name = ? ORDER BY type, name`, table)
	}
}

// dbState is everything AutoMigrate must leave alone.
type dbState struct {
	vaultSchema, metaSchema, vaultRows, metaRows []string
}

func dbStateOf(t testing.TB, db *sql.DB, dialect string, s *vaultstore.Store) dbState {
	t.Helper()
	vault, meta := s.GetVaultTableName(), s.GetMetaTableName()
	return dbState{
		vaultSchema: dbSchemaOf(t, db, dialect, vault),
		metaSchema:  dbSchemaOf(t, db, dialect, meta),
		vaultRows:   dbRawRows(t, db, dialect, vault),
		metaRows:    dbRawRows(t, db, dialect, meta),
	}
}

// dbCompareStates reports each part of want that got differs in.
func dbCompareStates(t testing.TB, what string, want, got dbState) {
	t.Helper()
	parts := []struct {
		name      string
		want, got []string
	}{
		{"vault table schema", want.vaultSchema, got.vaultSchema},
		{"meta table schema", want.metaSchema, got.metaSchema},
		{"vault rows", want.vaultRows, got.vaultRows},
		{"meta rows", want.metaRows, got.metaRows},
	}
	for _, p := range parts {
		if !slices.Equal(p.want, p.got) {
			t.Errorf("%s changed the %s:\nbefore:\n  %s\nafter:\n  %s", what, p.name,
				strings.Join(p.want, "\n  "), strings.Join(p.got, "\n  "))
		}
	}
}

// ---------------------------------------------------------------------------
// Expiry sweeps racing writes, with password identities

// TestDatabasesExpiredDeleteWithConcurrentCreates: with password identities
// on, TokensExpiredDelete runs in a loop while 4 goroutines create tokens,
// every other one already expired, and update the live ones, each write in
// a transaction with its link. No call fails (on MariaDB, a sweep that
// locked links first and vault rows second deadlocked with those writes,
// which lock in the other order), and at the end exactly the live records
// have links, one each.
func TestDatabasesExpiredDeleteWithConcurrentCreates(t *testing.T) {
	t.Parallel()
	forEachDatabase(t, func(t *testing.T, b dbBackend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db, func(o *vaultstore.NewStoreOptions) { o.PasswordIdentityEnabled = true })
		const creators, perCreator = 4, 60
		done := make(chan struct{})
		sweepErr := make(chan error, 1)
		go func() {
			var err error
			for sweeping := true; sweeping && err == nil; {
				select {
				case <-done:
					sweeping = false
				case <-time.After(5 * time.Millisecond):
				}
				_, err = s.TokensExpiredDelete(ctx)
			}
			sweepErr <- err
		}()
		err := dbParallel(creators*perCreator, creators, func(i int) error {
			tok := fmt.Sprintf("tk_sweep%05d", i)
			if i%2 == 1 {
				return s.TokenCreateCustom(ctx, tok, "v", dbPwOld, expiring(-1))
			}
			if err := s.TokenCreateCustom(ctx, tok, "v", dbPwOld); err != nil {
				return err
			}
			return s.TokenUpdate(ctx, tok, "w", dbPwNew)
		})
		close(done)
		if err != nil {
			t.Fatalf("a write during sweeps: %v", err)
		}
		if err := <-sweepErr; err != nil {
			t.Fatalf("TokensExpiredDelete during creates: %v", err)
		}
		// Both lists read `object_id="<record id>"`.
		ids := dbQueryStrings(t, db, "SELECT id AS object_id FROM "+s.GetVaultTableName())
		links := dbQueryStrings(t, db, "SELECT object_id FROM "+s.GetMetaTableName()+" WHERE object_type = '"+vaultstore.OBJECT_TYPE_RECORD+"'")
		for i, l := range links {
			links[i] = strings.Replace(l, `"`+vaultstore.RECORD_META_ID_PREFIX, `"`, 1)
		}
		slices.Sort(ids)
		slices.Sort(links)
		if len(ids) != creators*perCreator/2 || !slices.Equal(ids, links) {
			t.Errorf("%d records (want %d) and %d links; the links are not exactly those of the records", len(ids), creators*perCreator/2, len(links))
		}
	})
}

// TestDatabasesAutoMigrateChangesNothing: on tables the current release
// made, AutoMigrate (a second time on empty tables, then on populated
// ones, then from a second store as at a restart) changes no row of either
// table, read with the test's own SQL with every column as the database
// returns it, and no column type, collation, default, index, nor rebuilds a
// table.
func TestDatabasesAutoMigrateChangesNothing(t *testing.T) {
	t.Parallel()
	forEachDatabase(t, func(t *testing.T, b dbBackend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db) // first AutoMigrate, on no tables
		// The meta table is made by AutoMigrate; make sure both exist.
		empty := dbStateOf(t, db, b.dialect, s)
		if len(empty.vaultSchema) == 0 || len(empty.metaSchema) == 0 {
			t.Fatalf("no schema found after NewStore with AutoMigrate:\n%v\n%v", empty.vaultSchema, empty.metaSchema)
		}
		if len(empty.vaultRows) != 0 || len(empty.metaRows) != 0 {
			t.Fatalf("fresh tables hold rows: %v %v", empty.vaultRows, empty.metaRows)
		}
		if err := s.AutoMigrate(); err != nil {
			t.Fatalf("second AutoMigrate on empty tables: %v", err)
		}
		dbCompareStates(t, "second AutoMigrate on empty tables", empty, dbStateOf(t, db, b.dialect, s))

		// Populate both tables with every kind of row.
		seedEncrypted(t, s, 5, dbPwOld)
		if _, err := s.TokenCreate(ctx, "expiring", dbPwOld, 20, expiring(24)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TokenCreate(ctx, "expired", dbPwOld, 20, expiring(-24)); err != nil {
			t.Fatal(err)
		}
		if err := s.TokenSoftDelete(ctx, tokenN(0)); err != nil {
			t.Fatal(err)
		}
		if err := s.TokenRenew(ctx, tokenN(1), timeIn(48)); err != nil {
			t.Fatal(err)
		}
		if err := s.TokenUpdate(ctx, tokenN(2), "updated", dbPwNew); err != nil {
			t.Fatal(err)
		}
		mustCreateRecord(t, s, "tk_rawrecord00001", "raw, not a ciphertext")
		for k, v := range map[string]string{"schema_version": "7", "empty": "", "unicode": "héllo 世界"} {
			if err := s.SetVaultSetting(ctx, k, v); err != nil {
				t.Fatalf("SetVaultSetting(%q): %v", k, err)
			}
		}
		populated := dbStateOf(t, db, b.dialect, s)
		if len(populated.vaultRows) != 8 || len(populated.metaRows) < 3 {
			t.Fatalf("%d vault and %d meta rows, want 8 and at least 3", len(populated.vaultRows), len(populated.metaRows))
		}
		if b.dialect == "mysql" {
			// information_schema.tables.create_time has whole seconds:
			// a rebuild must land in another second to show.
			time.Sleep(1100 * time.Millisecond)
		}
		if err := s.AutoMigrate(); err != nil {
			t.Fatalf("AutoMigrate on populated tables: %v", err)
		}
		dbCompareStates(t, "AutoMigrate on populated tables", populated, dbStateOf(t, db, b.dialect, s))

		// A second store on the same tables, as after a restart.
		s2 := reopen(t, s, vaultstore.NewStoreOptions{DB: db, AutomigrateEnabled: true})
		dbCompareStates(t, "NewStore with AutoMigrate on populated tables", populated, dbStateOf(t, db, b.dialect, s2))
		if v, err := s2.TokenRead(ctx, tokenN(2), dbPwNew); err != nil || v != "updated" {
			t.Errorf("TokenRead through the second store = %q, %v", v, err)
		}
		if v, err := s2.GetVaultSetting(ctx, "unicode"); err != nil || v != "héllo 世界" {
			t.Errorf("GetVaultSetting through the second store = %q, %v", v, err)
		}
	})
}

// ---------------------------------------------------------------------------
// Dialect details

// dbToggledMySQLDSN returns dsn with parseTime switched, and whether the
// result has parseTime=true.
func dbToggledMySQLDSN(dsn string) (string, bool, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", false, fmt.Errorf("parsing %s: %w", envMySQLDSN, err)
	}
	cfg.ParseTime = !cfg.ParseTime
	return cfg.FormatDSN(), cfg.ParseTime, nil
}

// dialectVariant is a database and how to reach it: on MariaDB, once
// through the DSN as given and once with parseTime toggled.
type dialectVariant struct {
	name, dialect string
	// open returns the pool of the variant and, for MariaDB, a pool of
	// the other parseTime setting on the same database (nil elsewhere).
	open func(t testing.TB) (db, other *sql.DB)
}

func dialectVariants() []dialectVariant {
	var out []dialectVariant
	for _, b := range databaseBackends() {
		if b.dialect != "mysql" {
			out = append(out, dialectVariant{name: b.name, dialect: b.dialect, open: func(t testing.TB) (*sql.DB, *sql.DB) { return b.open(t), nil }})
			continue
		}
		toggledDSN, toggledParse, dsnErr := dbToggledMySQLDSN(os.Getenv(envMySQLDSN))
		toggled := func(t testing.TB) *sql.DB {
			if dsnErr != nil {
				t.Fatal(dsnErr)
			}
			db, err := sql.Open("mysql", toggledDSN)
			if err != nil {
				t.Fatal(err)
			}
			db.SetMaxOpenConns(4)
			t.Cleanup(func() { db.Close() })
			return db
		}
		asGiven, other := "mysql-parseTime=false", "mysql-parseTime=true"
		if toggledParse {
			asGiven, other = other, asGiven
		}
		out = append(out,
			dialectVariant{name: asGiven, dialect: "mysql", open: func(t testing.TB) (*sql.DB, *sql.DB) { return b.open(t), toggled(t) }},
			dialectVariant{name: other, dialect: "mysql", open: func(t testing.TB) (*sql.DB, *sql.DB) { return toggled(t), b.open(t) }},
		)
	}
	return out
}

// TestDatabasesDialectDetails: on each database, and on MariaDB through a
// DSN with and one without parseTime=true: tokens match case-sensitively,
// a 1 MiB value round-trips, a past expiry reads ErrTokenExpired and the
// zero expiry (stored as MAX_DATETIME) reads fine, and records list with
// their timestamps in the stored layout. On MariaDB the rows written
// through one DSN read identically through the other.
func TestDatabasesDialectDetails(t *testing.T) {
	t.Parallel()
	for _, v := range dialectVariants() {
		t.Run(v.name, func(t *testing.T) {
			ctx := context.Background()
			start := time.Now()
			t.Cleanup(func() { t.Logf("%s took %v", v.name, time.Since(start).Round(time.Millisecond)) })
			db, other := v.open(t)
			s := newStore(t, db)

			// Case-sensitive matching.
			mustCustom(t, s, "tk_ABCdefGHIjkl01", "upper", dbPwOld)
			if _, err := s.TokenRead(ctx, "tk_abcdefghijkl01", dbPwOld); !errors.Is(err, vaultstore.ErrRecordNotFound) {
				t.Errorf("TokenRead(lower-case twin of a stored token) = %v, want ErrRecordNotFound", err)
			}
			if ok, err := s.TokenExists(ctx, "tk_abcdefghijkl01"); err != nil || ok {
				t.Errorf("TokenExists(lower-case twin) = %v, %v, want false", ok, err)
			}
			if err := s.TokenCreateCustom(ctx, "tk_abcdefghijkl01", "lower", dbPwOld); err != nil {
				t.Errorf("TokenCreateCustom(lower-case twin): %v", err)
			}
			for tok, want := range map[string]string{"tk_ABCdefGHIjkl01": "upper", "tk_abcdefghijkl01": "lower"} {
				if got, err := s.TokenRead(ctx, tok, dbPwOld); err != nil || got != want {
					t.Errorf("TokenRead(%q) = %q, %v, want %q", tok, got, err, want)
				}
			}

			// A 1 MiB value.
			big := strings.Repeat("0123456789abcdé\x00", 1<<16)[:1<<20]
			bigTok, err := s.TokenCreate(ctx, big, dbPwOld, 32)
			if err != nil {
				t.Fatalf("TokenCreate(1 MiB): %v", err)
			}
			if got, err := s.TokenRead(ctx, bigTok, dbPwOld); err != nil || got != big {
				t.Errorf("TokenRead(1 MiB) = %d bytes, %v; want the %d bytes written", len(got), err, len(big))
			}

			// Expiry: past, future, never.
			past := time.Now().Add(-90 * time.Minute)
			future := time.Now().Add(90 * time.Minute)
			mustCustom(t, s, "tk_expiredpast001", "past", dbPwOld, vaultstore.TokenCreateOptions{ExpiresAt: past})
			mustCustom(t, s, "tk_expiresfutr001", "future", dbPwOld, vaultstore.TokenCreateOptions{ExpiresAt: future})
			mustCustom(t, s, "tk_expiresnever01", "never", dbPwOld, vaultstore.TokenCreateOptions{})
			if got, err := s.TokenRead(ctx, "tk_expiredpast001", dbPwOld); !errors.Is(err, vaultstore.ErrTokenExpired) || got != "" {
				t.Errorf("TokenRead(expired) = %q, %v, want ErrTokenExpired", got, err)
			}
			for tok, want := range map[string]string{"tk_expiresfutr001": "future", "tk_expiresnever01": "never"} {
				if got, err := s.TokenRead(ctx, tok, dbPwOld); err != nil || got != want {
					t.Errorf("TokenRead(%q) = %q, %v, want %q", tok, got, err, want)
				}
			}
			rows := storedRows(t, s)
			wantExpiry := map[string]string{
				"tk_expiredpast001": utc(past),
				"tk_expiresfutr001": utc(future),
				"tk_expiresnever01": vaultstore.MAX_DATETIME,
				"tk_ABCdefGHIjkl01": vaultstore.MAX_DATETIME,
			}
			for tok, want := range wantExpiry {
				if got := rows[tok][vaultstore.COLUMN_EXPIRES_AT]; got != want {
					t.Errorf("%q: expires_at = %q, want %q", tok, got, want)
				}
			}
			now := time.Now().UTC()
			for tok, r := range rows {
				for _, c := range []string{vaultstore.COLUMN_CREATED_AT, vaultstore.COLUMN_UPDATED_AT, vaultstore.COLUMN_EXPIRES_AT, vaultstore.COLUMN_SOFT_DELETED_AT} {
					ts, err := time.Parse("2006-01-02 15:04:05", r[c])
					if err != nil {
						t.Errorf("%q: %s = %q, not in the stored layout", tok, c, r[c])
						continue
					}
					if (c == vaultstore.COLUMN_CREATED_AT || c == vaultstore.COLUMN_UPDATED_AT) && (ts.Before(now.Add(-time.Minute)) || ts.After(now.Add(time.Minute))) {
						t.Errorf("%q: %s = %q, not about now (%s): shifted by a time zone?", tok, c, r[c], utc(now))
					}
				}
				if r[vaultstore.COLUMN_SOFT_DELETED_AT] != vaultstore.MAX_DATETIME {
					t.Errorf("%q: soft_deleted_at = %q, want %q", tok, r[vaultstore.COLUMN_SOFT_DELETED_AT], vaultstore.MAX_DATETIME)
				}
			}
			// Expiry cleanup compares the column with now on the server.
			if n, err := s.TokensExpiredSoftDelete(ctx); err != nil || n != 1 {
				t.Errorf("TokensExpiredSoftDelete = %d, %v, want 1", n, err)
			}
			if n, err := s.RecordCount(ctx, vaultstore.RecordQuery()); err != nil || n != 5 {
				t.Errorf("RecordCount after the expired token was soft-deleted = %d, %v, want 5", n, err)
			}

			if other == nil {
				return
			}
			// The same rows through a pool with the other parseTime.
			s2 := reopen(t, s, vaultstore.NewStoreOptions{DB: other})
			if got, want := storedRows(t, s2), storedRows(t, s); !maps.EqualFunc(got, want, maps.Equal) {
				t.Errorf("rows read through the other DSN differ:\n got %v\nwant %v", got, want)
			}
			if got, err := s2.TokenRead(ctx, "tk_expiresnever01", dbPwOld); err != nil || got != "never" {
				t.Errorf("TokenRead through the other DSN = %q, %v", got, err)
			}
			mustCustom(t, s2, "tk_otherdsn000001", "other", dbPwOld, vaultstore.TokenCreateOptions{ExpiresAt: future})
			if got, err := s.TokenRead(ctx, "tk_otherdsn000001", dbPwOld); err != nil || got != "other" {
				t.Errorf("TokenRead of a token written through the other DSN = %q, %v", got, err)
			}
			if got := rowOf(t, s, "tk_otherdsn000001").GetExpiresAt(); got != utc(future) {
				t.Errorf("expires_at written through the other DSN = %q, want %q", got, utc(future))
			}
			if err := s2.TokenRenew(ctx, "tk_expiresfutr001", past); err != nil {
				t.Fatal(err)
			}
			if _, err := s.TokenRead(ctx, "tk_expiresfutr001", dbPwOld); !errors.Is(err, vaultstore.ErrTokenExpired) {
				t.Errorf("TokenRead after a renewal into the past through the other DSN = %v, want ErrTokenExpired", err)
			}
		})
	}
}
