package vaultstore_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/vaultstore/vaultstore"
)

func TestRecordCreateAndFind(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		r := vaultstore.NewRecord().SetToken("tk_create0000001").SetValue("raw value").SetExpiresAt("2999-01-02T03:04:05Z")
		if err := s.RecordCreate(ctx, r); err != nil {
			t.Fatal(err)
		}
		if len(r.DataChanged()) != 0 {
			t.Errorf("DataChanged after create = %v, want empty", r.DataChanged())
		}
		if got := r.GetExpiresAt(); got != "2999-01-02 03:04:05" {
			t.Errorf("expires_at normalised to %q", got)
		}
		byID, err := s.RecordFindByID(ctx, r.GetID())
		if err != nil || byID == nil {
			t.Fatalf("RecordFindByID = %v, %v", byID, err)
		}
		if !maps.Equal(byID.Data(), r.Data()) {
			t.Errorf("found %v, created %v", byID.Data(), r.Data())
		}
		byToken, err := s.RecordFindByToken(ctx, "tk_create0000001")
		if err != nil || byToken == nil || byToken.GetID() != r.GetID() {
			t.Fatalf("RecordFindByToken = %v, %v", byToken, err)
		}
		if byToken.GetSoftDeletedAt() != vaultstore.MAX_DATETIME {
			t.Errorf("soft_deleted_at = %q", byToken.GetSoftDeletedAt())
		}
	})
}

func TestRecordFindAbsentIsNilNil(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		if r, err := s.RecordFindByID(ctx, "nope"); r != nil || err != nil {
			t.Errorf("RecordFindByID(absent) = %v, %v", r, err)
		}
		if r, err := s.RecordFindByToken(ctx, "tk_nope00000000"); r != nil || err != nil {
			t.Errorf("RecordFindByToken(absent) = %v, %v", r, err)
		}
		if _, err := s.RecordFindByID(ctx, ""); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("RecordFindByID(\"\") err = %v", err)
		}
		if _, err := s.RecordFindByToken(ctx, ""); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("RecordFindByToken(\"\") err = %v", err)
		}
	})
}

func TestRecordCreateRejects(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	mustCreateRecord(t, s, "tk_taken00000001", "v")
	cases := []struct {
		name   string
		record vaultstore.RecordInterface
		want   error
	}{
		{"nil", nil, vaultstore.ErrValidationFailed},
		{"empty token", vaultstore.NewRecord().SetValue("v"), vaultstore.ErrValidationFailed},
		{"token too long", vaultstore.NewRecord().SetToken("tk_" + string(make([]byte, 40))), vaultstore.ErrValidationFailed},
		{"token with space", vaultstore.NewRecord().SetToken("tk_has space000"), vaultstore.ErrValidationFailed},
		{"bad timestamp", vaultstore.NewRecord().SetToken("tk_badtime000001").SetExpiresAt("tomorrow"), vaultstore.ErrValidationFailed},
		{"duplicate token", vaultstore.NewRecord().SetToken("tk_taken00000001"), vaultstore.ErrTokenAlreadyExists},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := s.RecordCreate(ctx, c.record); !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}
	if n, _ := s.RecordCount(ctx, vaultstore.RecordQuery()); n != 1 {
		t.Errorf("%d rows after rejected creates, want 1", n)
	}
}

func TestRecordCreateDuplicateID(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	r := mustCreateRecord(t, s, "tk_first00000001", "v")
	dup := vaultstore.NewRecord().SetID(r.GetID()).SetToken("tk_second0000001")
	if err := s.RecordCreate(ctx, dup); !errors.Is(err, vaultstore.ErrValidationFailed) || errors.Is(err, vaultstore.ErrTokenAlreadyExists) {
		t.Errorf("duplicate id: err = %v, want ErrValidationFailed only", err)
	}
}

func TestRecordUpdateWritesOnlyChangedColumns(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		r := mustCreateRecord(t, s, "tk_update0000001", "first")

		// A second copy changes the expiry; the first copy then changes
		// only the value, and must not put the old expiry back.
		other, _ := s.RecordFindByID(ctx, r.GetID())
		other.SetExpiresAt("2100-01-01 00:00:00")
		if err := s.RecordUpdate(ctx, other); err != nil {
			t.Fatal(err)
		}
		r.SetValue("second").SetUpdatedAt("2000-01-01 00:00:00")
		if err := s.RecordUpdate(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, _ := s.RecordFindByID(ctx, r.GetID())
		if got.GetValue() != "second" || got.GetExpiresAt() != "2100-01-01 00:00:00" {
			t.Errorf("after updates: value %q expires %q", got.GetValue(), got.GetExpiresAt())
		}
		if got.GetUpdatedAt() == "2000-01-01 00:00:00" {
			t.Errorf("updated_at was not refreshed")
		}
		if got.GetUpdatedAt() != r.GetUpdatedAt() {
			t.Errorf("record holds updated_at %q, row %q", r.GetUpdatedAt(), got.GetUpdatedAt())
		}
		if len(r.DataChanged()) != 0 {
			t.Errorf("DataChanged after update = %v", r.DataChanged())
		}
	})
}

// fakeRecord lets a test hand the store a record whose changed columns it
// chooses freely, as a caller's own RecordInterface could.
type fakeRecord struct {
	vaultstore.RecordInterface
	changed map[string]string
}

func (f fakeRecord) DataChanged() map[string]string { return maps.Clone(f.changed) }

func TestRecordUpdateRejects(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		r := mustCreateRecord(t, s, "tk_upd0000000001", "v")
		mustCreateRecord(t, s, "tk_upd0000000002", "w")

		injected := fakeRecord{r, map[string]string{"vault_value = 'x', vault_token": "tk_pwned"}}
		if err := s.RecordUpdate(ctx, injected); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("unknown column: err = %v", err)
		}
		if err := s.RecordUpdate(ctx, nil); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("nil: err = %v", err)
		}
		if err := s.RecordUpdate(ctx, vaultstore.NewRecordFromExistingData(nil).SetValue("x")); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("no id: err = %v", err)
		}
		missing := vaultstore.NewRecord().SetValue("x")
		if err := s.RecordUpdate(ctx, missing); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("absent row: err = %v", err)
		}
		clash, _ := s.RecordFindByID(ctx, r.GetID())
		clash.SetToken("tk_upd0000000002")
		if err := s.RecordUpdate(ctx, clash); !errors.Is(err, vaultstore.ErrValidationFailed) || errors.Is(err, vaultstore.ErrTokenAlreadyExists) {
			t.Errorf("token change onto a taken token: err = %v, want ErrValidationFailed only", err)
		}
		got, _ := s.RecordFindByID(ctx, r.GetID())
		if got.GetValue() != "v" || got.GetToken() != "tk_upd0000000001" {
			t.Errorf("row changed by rejected updates: %v", got.Data())
		}
	})
}

// TestRecordUpdateRefusesTokenChange is a careless caller renaming a
// token's row through the raw API. v3 binds a value to its token, so the
// renamed row would never open again under any password: the update must
// be refused, whatever way the new token reaches RecordUpdate, and the
// table left byte-identical.
func TestRecordUpdateRefusesTokenChange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		s := newStore(t, db)
		tok, err := s.TokenCreate(ctx, "bound value", testPassword, 20)
		if err != nil {
			t.Fatal(err)
		}
		mustCreateRecord(t, s, "tk_renametaken01", "raw")
		const renamed = "tk_renamed000001"
		id := rowOf(t, s, tok).GetID()
		before := dbRawRows(t, db, b.name, s.GetVaultTableName())

		renames := map[string]vaultstore.RecordInterface{
			"SetToken":                  rowOf(t, s, tok).SetToken(renamed),
			"SetToken with a value":     rowOf(t, s, tok).SetToken(renamed).SetValue("other"),
			"SetToken onto a taken one": rowOf(t, s, tok).SetToken("tk_renametaken01"),
			"caller's record":           fakeRecord{rowOf(t, s, tok), map[string]string{vaultstore.COLUMN_VAULT_TOKEN: renamed}},
			"new record with the id":    vaultstore.NewRecord().SetID(id).SetToken(renamed),
		}
		for name, r := range renames {
			err := s.RecordUpdate(ctx, r)
			if !errors.Is(err, vaultstore.ErrValidationFailed) {
				t.Errorf("%s: err = %v, want ErrValidationFailed", name, err)
			}
		}
		if after := dbRawRows(t, db, b.name, s.GetVaultTableName()); !slices.Equal(before, after) {
			t.Errorf("refused updates changed the table:\nbefore %q\n after %q", before, after)
		}
		if v, err := s.TokenRead(ctx, tok, testPassword); err != nil || v != "bound value" {
			t.Errorf("TokenRead after refused renames = %q, %v", v, err)
		}
		if ok, err := s.TokenExists(ctx, renamed); ok || err != nil {
			t.Errorf("TokenExists(renamed) = %v, %v", ok, err)
		}

		// Setting the token it already has changes nothing and is allowed,
		// alone and alongside another column.
		if err := s.RecordUpdate(ctx, rowOf(t, s, tok).SetToken(tok)); err != nil {
			t.Errorf("SetToken to the same token: %v", err)
		}
		if err := s.RecordUpdate(ctx, rowOf(t, s, tok).SetToken(tok).SetExpiresAt("2999-01-01 00:00:00")); err != nil {
			t.Errorf("SetToken to the same token with an expiry: %v", err)
		}
		if got := rowOf(t, s, tok); got.GetExpiresAt() != "2999-01-01 00:00:00" {
			t.Errorf("expiry %q not written", got.GetExpiresAt())
		}
		if v, err := s.TokenRead(ctx, tok, testPassword); err != nil || v != "bound value" {
			t.Errorf("TokenRead after same-token updates = %q, %v", v, err)
		}
	})
}

// callerRecord and callerQuery are a caller's own implementations; a nil
// pointer to either is what a careless caller passes.
type callerRecord struct{ vaultstore.RecordInterface }

type callerQuery struct {
	vaultstore.RecordQueryInterface
}

// noPanic runs call and returns a panic as an error, so that the caller
// reports it on its own line and every case runs.
func noPanic(call func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panicked: %v", p)
		}
	}()
	return call()
}

// TestRecordMethodsRefuseTypedNil passes every method that takes a record or
// a query an interface holding a nil pointer, which is not == nil: each
// must return ErrValidationFailed, not panic.
func TestRecordMethodsRefuseTypedNil(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	mustCreateRecord(t, s, "tk_typednil00001", "v")
	// The library's query type is unexported; a zero value of it, taken
	// from what RecordQuery returns, is the nil pointer a caller can hold.
	ownQuery := reflect.Zero(reflect.TypeOf(vaultstore.RecordQuery())).Interface().(vaultstore.RecordQueryInterface)

	records := map[string]vaultstore.RecordInterface{
		"*vaultstore.Record": (*vaultstore.Record)(nil),
		"caller's *record":   (*callerRecord)(nil),
	}
	for name, r := range records {
		t.Run(name, func(t *testing.T) {
			calls := map[string]func() error{
				"RecordCreate":     func() error { return s.RecordCreate(ctx, r) },
				"RecordUpdate":     func() error { return s.RecordUpdate(ctx, r) },
				"RecordSoftDelete": func() error { return s.RecordSoftDelete(ctx, r) },
			}
			for method, call := range calls {
				if err := noPanic(call); !errors.Is(err, vaultstore.ErrValidationFailed) {
					t.Errorf("%s: err = %v, want ErrValidationFailed", method, err)
				}
			}
		})
	}
	queries := map[string]vaultstore.RecordQueryInterface{
		"library's query": ownQuery,
		"caller's *query": (*callerQuery)(nil),
	}
	for name, q := range queries {
		t.Run(name, func(t *testing.T) {
			calls := map[string]func() error{
				"RecordList":  func() error { _, err := s.RecordList(ctx, q); return err },
				"RecordCount": func() error { _, err := s.RecordCount(ctx, q); return err },
			}
			for method, call := range calls {
				if err := noPanic(call); !errors.Is(err, vaultstore.ErrValidationFailed) {
					t.Errorf("%s: err = %v, want ErrValidationFailed", method, err)
				}
			}
		})
	}
	if err := noPanic(ownQuery.Validate); !errors.Is(err, vaultstore.ErrValidationFailed) {
		t.Errorf("Validate on a nil query: err = %v, want ErrValidationFailed", err)
	}
	if n, err := s.RecordCount(ctx, vaultstore.RecordQuery().SetSoftDeletedInclude(true)); n != 1 || err != nil {
		t.Errorf("%d rows after refused calls, %v; want the 1 created", n, err)
	}
}

// TestRecordUpdateNilDataChanged is a caller's record whose DataChanged
// returns a nil map: the update refreshes updated_at and nothing else.
func TestRecordUpdateNilDataChanged(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	r := mustCreateRecord(t, s, "tk_nilchanged001", "v")
	err := noPanic(func() error { return s.RecordUpdate(ctx, fakeRecord{r, nil}) })
	if err != nil {
		t.Errorf("RecordUpdate with nil DataChanged: %v", err)
	}
	if got := rowOf(t, s, "tk_nilchanged001"); got.GetValue() != "v" {
		t.Errorf("value %q after an update that changed nothing", got.GetValue())
	}
}

func TestRecordDelete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		r1 := mustCreateRecord(t, s, "tk_delete0000001", "v")
		mustCreateRecord(t, s, "tk_delete0000002", "v")
		if err := s.RecordDeleteByID(ctx, r1.GetID()); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordDeleteByToken(ctx, "tk_delete0000002"); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.RecordCount(ctx, vaultstore.RecordQuery().SetSoftDeletedInclude(true)); n != 0 {
			t.Errorf("%d rows left", n)
		}
		if err := s.RecordDeleteByID(ctx, r1.GetID()); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("delete absent id: %v", err)
		}
		if err := s.RecordDeleteByToken(ctx, "tk_delete0000002"); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("delete absent token: %v", err)
		}
		if err := s.RecordDeleteByID(ctx, ""); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("delete empty id: %v", err)
		}
		if err := s.RecordDeleteByToken(ctx, ""); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("delete empty token: %v", err)
		}
	})
}

func TestRecordSoftDelete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		r1 := mustCreateRecord(t, s, "tk_soft000000001", "v")
		r2 := mustCreateRecord(t, s, "tk_soft000000002", "v")
		mustCreateRecord(t, s, "tk_soft000000003", "v")
		mustCreateRecord(t, s, "tk_soft000000004", "v")

		if err := s.RecordSoftDelete(ctx, r1); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordSoftDeleteByID(ctx, r2.GetID()); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordSoftDeleteByToken(ctx, "tk_soft000000003"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.RecordFindByID(ctx, r1.GetID()); got != nil || err != nil {
			t.Errorf("soft-deleted record found: %v, %v", got, err)
		}
		if n, _ := s.RecordCount(ctx, vaultstore.RecordQuery()); n != 1 {
			t.Errorf("live count %d, want 1", n)
		}
		if n, _ := s.RecordCount(ctx, vaultstore.RecordQuery().SetSoftDeletedInclude(false)); n != 1 {
			t.Errorf("SoftDeletedInclude(false) count %d, want 1", n)
		}
		all, err := s.RecordList(ctx, vaultstore.RecordQuery().SetSoftDeletedInclude(true))
		if err != nil || len(all) != 4 {
			t.Fatalf("with soft-deleted: %d records, %v", len(all), err)
		}
		if err := s.RecordSoftDeleteByID(ctx, r2.GetID()); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("second soft delete by id: %v", err)
		}
		if err := s.RecordSoftDeleteByToken(ctx, "tk_absent0000000"); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("soft delete absent token: %v", err)
		}
		if err := s.RecordSoftDelete(ctx, nil); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("soft delete nil: %v", err)
		}
		if err := s.RecordSoftDelete(ctx, vaultstore.NewRecord()); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("soft delete unsaved record: %v", err)
		}
		if err := s.RecordSoftDeleteByID(ctx, ""); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("soft delete empty id: %v", err)
		}
	})
}

func TestRecordListOrderAndPages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		const n = 23
		var ids []string
		for i := range n {
			// Tokens run opposite to ids, so an order by token is visibly
			// not an order by id.
			r := mustCreateRecord(t, s, tokenN(n-i), fmt.Sprint(i))
			ids = append(ids, r.GetID())
		}
		slices.Sort(ids)

		var paged []string
		for off := 0; off < n; off += 5 {
			page, err := s.RecordList(ctx, vaultstore.RecordQuery().SetLimit(5).SetOffset(off))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				paged = append(paged, r.GetID())
			}
		}
		if !slices.Equal(paged, ids) {
			t.Errorf("pages do not cover the table once in id order:\n got %v\nwant %v", paged, ids)
		}

		for _, order := range []string{"asc", "ASC", "desc", "Desc"} {
			list, err := s.RecordList(ctx, vaultstore.RecordQuery().SetOrderBy(vaultstore.COLUMN_VAULT_TOKEN).SetSortOrder(order))
			if err != nil {
				t.Fatal(err)
			}
			tokens := make([]string, len(list))
			for i, r := range list {
				tokens[i] = r.GetToken()
			}
			sorted := slices.Sorted(slices.Values(tokens))
			if order == "desc" || order == "Desc" {
				slices.Reverse(sorted)
			}
			if !slices.Equal(tokens, sorted) {
				t.Errorf("order %s: got %v", order, tokens)
			}
		}

		rest, err := s.RecordList(ctx, vaultstore.RecordQuery().SetOffset(20))
		if err != nil || len(rest) != 3 {
			t.Errorf("offset without limit: %d records, %v", len(rest), err)
		}
	})
}

func TestRecordListFiltersAndColumns(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		r1 := mustCreateRecord(t, s, tokenN(1), "one")
		r2 := mustCreateRecord(t, s, tokenN(2), "two")
		mustCreateRecord(t, s, tokenN(3), "three")

		list, err := s.RecordList(ctx, vaultstore.RecordQuery().SetIDIn([]string{r1.GetID(), r2.GetID()}))
		if err != nil || len(list) != 2 {
			t.Errorf("IDIn: %d, %v", len(list), err)
		}
		list, err = s.RecordList(ctx, vaultstore.RecordQuery().SetTokenIn([]string{tokenN(2), tokenN(3), "tk_absent"}))
		if err != nil || len(list) != 2 {
			t.Errorf("TokenIn: %d, %v", len(list), err)
		}
		list, err = s.RecordList(ctx, vaultstore.RecordQuery().SetToken(tokenN(3)).SetColumns([]string{vaultstore.COLUMN_ID, vaultstore.COLUMN_VAULT_TOKEN}))
		if err != nil || len(list) != 1 {
			t.Fatalf("Token+Columns: %d, %v", len(list), err)
		}
		if keys := slices.Sorted(maps.Keys(list[0].Data())); !slices.Equal(keys, []string{"id", "vault_token"}) {
			t.Errorf("selected columns give keys %v", keys)
		}
		n, err := s.RecordCount(ctx, vaultstore.RecordQuery().SetID(r1.GetID()))
		if err != nil || n != 1 {
			t.Errorf("count by id = %d, %v", n, err)
		}
		n, err = s.RecordCount(ctx, vaultstore.RecordQuery().SetCountOnly(true))
		if err != nil || n != 3 {
			t.Errorf("count only = %d, %v", n, err)
		}
	})
}

// laxQuery is a caller's own query type whose Validate accepts anything:
// the store must still refuse what its own query would refuse.
type laxQuery struct {
	vaultstore.RecordQueryInterface
}

func (laxQuery) Validate() error { return nil }

func TestRecordQueryRejects(t *testing.T) {
	cases := map[string]vaultstore.RecordQueryInterface{
		"unknown column":         vaultstore.RecordQuery().SetColumns([]string{"id", "password"}),
		"empty columns":          vaultstore.RecordQuery().SetColumns([]string{}),
		"unknown order column":   vaultstore.RecordQuery().SetOrderBy("name"),
		"empty order column":     vaultstore.RecordQuery().SetOrderBy(""),
		"bad sort order":         vaultstore.RecordQuery().SetOrderBy("id").SetSortOrder("up"),
		"negative limit":         vaultstore.RecordQuery().SetLimit(-1),
		"negative offset":        vaultstore.RecordQuery().SetOffset(-5),
		"count only with limit":  vaultstore.RecordQuery().SetCountOnly(true).SetLimit(1),
		"count only with offset": vaultstore.RecordQuery().SetCountOnly(true).SetOffset(1),
		"empty id":               vaultstore.RecordQuery().SetID(""),
		"empty token":            vaultstore.RecordQuery().SetToken(""),
		"empty id list":          vaultstore.RecordQuery().SetIDIn(nil),
		"empty token list":       vaultstore.RecordQuery().SetTokenIn([]string{}),
		"empty id in list":       vaultstore.RecordQuery().SetIDIn([]string{"a", ""}),
		"empty token in list":    vaultstore.RecordQuery().SetTokenIn([]string{""}),
	}
	ctx := context.Background()
	s := newTestStore(t)
	for name, q := range cases {
		t.Run(name, func(t *testing.T) {
			if err := q.Validate(); !errors.Is(err, vaultstore.ErrValidationFailed) {
				t.Errorf("Validate: %v", err)
			}
			if _, err := s.RecordList(ctx, laxQuery{q}); !errors.Is(err, vaultstore.ErrValidationFailed) {
				t.Errorf("RecordList: %v", err)
			}
			if _, err := s.RecordCount(ctx, laxQuery{q}); !errors.Is(err, vaultstore.ErrValidationFailed) {
				t.Errorf("RecordCount: %v", err)
			}
		})
	}
	if _, err := s.RecordList(ctx, nil); !errors.Is(err, vaultstore.ErrValidationFailed) {
		t.Errorf("nil query: %v", err)
	}
}

func TestRecordQueryRejectsSQL(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		mustCreateRecord(t, s, tokenN(1), "one")
		if err := s.SetVaultSetting(ctx, "secret", "meta value"); err != nil {
			t.Fatal(err)
		}
		vault, meta := s.GetVaultTableName(), s.GetMetaTableName()
		fragments := []string{
			"id; DROP TABLE " + vault,
			"id FROM " + vault + "; DROP TABLE " + vault + "; --",
			"(SELECT meta_value FROM " + meta + ") AS id",
			"id, (SELECT meta_value FROM " + meta + " LIMIT 1) AS vault_value",
			"1; DELETE FROM " + vault,
			"vault_value`, `id",
			`id"; DROP TABLE "` + vault,
		}
		for _, f := range fragments {
			queries := []vaultstore.RecordQueryInterface{
				vaultstore.RecordQuery().SetColumns([]string{f}),
				vaultstore.RecordQuery().SetOrderBy(f),
				vaultstore.RecordQuery().SetOrderBy("id").SetSortOrder("asc; DROP TABLE " + vault),
				vaultstore.RecordQuery().SetOrderBy("id").SetSortOrder(f),
			}
			for _, q := range queries {
				if _, err := s.RecordList(ctx, q); !errors.Is(err, vaultstore.ErrValidationFailed) {
					t.Errorf("RecordList with %q: %v", f, err)
				}
				if _, err := s.RecordCount(ctx, laxQuery{q}); !errors.Is(err, vaultstore.ErrValidationFailed) {
					t.Errorf("RecordCount with %q: %v", f, err)
				}
			}
		}
		list, err := s.RecordList(ctx, vaultstore.RecordQuery())
		if err != nil || len(list) != 1 || list[0].GetValue() != "one" {
			t.Fatalf("table damaged: %v, %v", list, err)
		}
		if v, err := s.GetVaultSetting(ctx, "secret"); err != nil || v != "meta value" {
			t.Fatalf("meta table damaged: %q, %v", v, err)
		}
	})
}

// shiftyQuery answers the first GetOrderBy with a valid column and later
// ones with SQL: the store must build its query from what it validated.
type shiftyQuery struct {
	vaultstore.RecordQueryInterface
	calls int
}

func (q *shiftyQuery) GetOrderBy() string {
	q.calls++
	if q.calls == 1 {
		return vaultstore.COLUMN_ID
	}
	return "(SELECT 1/0)"
}

func TestRecordQueryReadOnce(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	mustCreateRecord(t, s, "tk_shifty0000001", "v")
	q := &shiftyQuery{RecordQueryInterface: vaultstore.RecordQuery().SetOrderBy(vaultstore.COLUMN_ID)}
	list, err := s.RecordList(context.Background(), q)
	if err != nil || len(list) != 1 {
		t.Fatalf("RecordList = %d, %v", len(list), err)
	}
	if q.calls != 1 {
		t.Errorf("GetOrderBy called %d times; the store must read a query once", q.calls)
	}
}
