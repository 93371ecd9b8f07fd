package vaultstore_test

import (
	"slices"
	"testing"

	"github.com/vaultstore/vaultstore"
)

func TestRecordQueryBuilder(t *testing.T) {
	q := vaultstore.RecordQuery()
	if q.IsIDSet() || q.IsColumnsSet() || q.IsLimitSet() || q.IsSoftDeletedIncludeSet() || q.Validate() != nil {
		t.Fatal("fresh query has parameters set or is invalid")
	}
	cols := []string{"id", "vault_token"}
	q.SetColumns(cols).SetID("1").SetIDIn([]string{"1", "2"}).SetToken("tk_a").SetTokenIn([]string{"tk_a"}).
		SetOffset(3).SetLimit(4).SetOrderBy("created_at").SetSortOrder("ASC").SetSoftDeletedInclude(true)
	cols[0] = "mutated"
	if !slices.Equal(q.GetColumns(), []string{"id", "vault_token"}) {
		t.Errorf("columns %v: the query shares the caller's slice", q.GetColumns())
	}
	if q.GetID() != "1" || q.GetToken() != "tk_a" || q.GetOffset() != 3 || q.GetLimit() != 4 ||
		q.GetOrderBy() != "created_at" || q.GetSortOrder() != "ASC" || !q.GetSoftDeletedInclude() ||
		len(q.GetIDIn()) != 2 || len(q.GetTokenIn()) != 1 {
		t.Error("getters do not return what was set")
	}
	if err := q.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if !vaultstore.RecordQuery().SetCountOnly(true).GetCountOnly() {
		t.Error("CountOnly")
	}
	if err := vaultstore.RecordQuery().SetCountOnly(false).SetLimit(3).Validate(); err != nil {
		t.Errorf("CountOnly(false) with limit: %v", err)
	}
}
