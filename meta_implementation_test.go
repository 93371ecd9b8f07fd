package vaultstore_test

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/vaultstore/vaultstore"
)

func TestMeta(t *testing.T) {
	m := vaultstore.NewMeta().SetID(7).SetObjectType("vault").SetObjectID("settings").SetKey("k").SetValue("SECRET")
	if m.GetID() != 7 || m.GetObjectType() != "vault" || m.GetObjectID() != "settings" || m.GetKey() != "k" || m.GetValue() != "SECRET" {
		t.Errorf("getters: %v", m.Data())
	}
	if len(m.DataChanged()) != 5 {
		t.Errorf("DataChanged = %v", m.DataChanged())
	}
	if s := fmt.Sprint(m); strings.Contains(s, "SECRET") {
		t.Errorf("printed meta shows its value: %s", s)
	}
	loaded := vaultstore.NewMetaFromExistingData(map[string]string{"id": "12", "meta_key": "a"})
	if loaded.GetID() != 12 || len(loaded.DataChanged()) != 0 || !maps.Equal(loaded.Data(), map[string]string{"id": "12", "meta_key": "a"}) {
		t.Errorf("loaded meta: %v %v", loaded.Data(), loaded.DataChanged())
	}
	if vaultstore.NewMetaFromExistingData(map[string]string{"id": "x"}).GetID() != 0 {
		t.Error("non-numeric id is not 0")
	}
}
