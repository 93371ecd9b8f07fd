package vaultstore_test

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/vaultstore/vaultstore"
)

func TestNewRecordDefaults(t *testing.T) {
	r := vaultstore.NewRecord()
	if len(r.GetID()) != 32 {
		t.Errorf("id %q", r.GetID())
	}
	if r.GetExpiresAt() != vaultstore.MAX_DATETIME || r.GetSoftDeletedAt() != vaultstore.MAX_DATETIME {
		t.Errorf("expires %q soft-deleted %q", r.GetExpiresAt(), r.GetSoftDeletedAt())
	}
	if r.GetCreatedAt() == "" || r.GetCreatedAt() != r.GetUpdatedAt() || len(r.GetCreatedAt()) != 19 {
		t.Errorf("created %q updated %q", r.GetCreatedAt(), r.GetUpdatedAt())
	}
	if vaultstore.NewRecord().GetID() == r.GetID() {
		t.Error("two records share an id")
	}
}

func TestRecordDataAndChanges(t *testing.T) {
	data := map[string]string{"id": "1", "vault_token": "tk_x", "vault_value": "v"}
	r := vaultstore.NewRecordFromExistingData(data)
	data["id"] = "changed after"
	if r.GetID() != "1" {
		t.Error("record shares the caller's map")
	}
	if len(r.DataChanged()) != 0 {
		t.Errorf("loaded record has changes %v", r.DataChanged())
	}
	r.SetValue("w").SetToken("tk_y")
	if want := map[string]string{"vault_value": "w", "vault_token": "tk_y"}; !maps.Equal(r.DataChanged(), want) {
		t.Errorf("DataChanged = %v", r.DataChanged())
	}
	d := r.Data()
	d["vault_value"] = "mutated copy"
	if r.GetValue() != "w" {
		t.Error("Data returned the record's own map")
	}
	if vaultstore.NewRecordFromExistingData(nil).Data() == nil {
		t.Error("nil data gives a nil map")
	}
}

func TestRecordStringHidesValue(t *testing.T) {
	r := vaultstore.NewRecord().SetToken("tk_visible").SetValue("SECRET")
	for _, s := range []string{fmt.Sprint(r), fmt.Sprintf("%v %+v %s", r, r, r)} {
		if strings.Contains(s, "SECRET") || !strings.Contains(s, "tk_visible") {
			t.Errorf("printed record: %s", s)
		}
	}
}
