package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/vaultstore/vaultstore"
)

// TestScripts runs the scripts of testdata/script against the built binary
// on file SQLite and on every server whose DSN is set. Each script gets
// VAULTSTORE_DB, and $VT and $MT, table names of its own, and the commands
// json, seedvectors and damage (see scriptCmds).
func TestScripts(t *testing.T) {
	bin := binary(t)
	for _, b := range cliBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			testscript.Run(t, testscript.Params{
				Dir: "testdata/script",
				Setup: func(env *testscript.Env) error {
					env.Setenv("PATH", filepath.Dir(bin)+string(os.PathListSeparator)+env.Getenv("PATH"))
					dsn := b.dsn(env.WorkDir)
					if b.name == "sqlite" {
						// An empty file is an empty SQLite database.
						if err := os.WriteFile(strings.TrimPrefix(dsn, "sqlite:"), nil, 0o600); err != nil {
							return err
						}
					}
					vt, mt := uniqueTables()
					env.Setenv("VAULTSTORE_DB", dsn)
					env.Setenv("VT", vt)
					env.Setenv("MT", mt)
					env.Setenv("BACKEND", b.name)
					env.Values[scriptKey{}] = scriptDB{dsn: dsn, vault: vt, meta: mt}
					target, err := parseDSN(dsn)
					if err != nil {
						return err
					}
					db, err := target.open(true)
					if err != nil {
						return err
					}
					env.Defer(func() {
						dropTables(db, vt, mt)
						db.Close()
					})
					return nil
				},
				Cmds: scriptCmds,
			})
		})
	}
}

type scriptKey struct{}

type scriptDB struct{ dsn, vault, meta string }

var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"json":        cmdJSON,
	"seedvectors": cmdSeedVectors,
	"damage":      cmdDamage,
}

// scriptStore opens the script's store for one custom command.
func scriptStore(ts *testscript.TestScript) *vaultstore.Store {
	d := ts.Value(scriptKey{}).(scriptDB)
	target, err := parseDSN(d.dsn)
	ts.Check(err)
	db, err := target.open(false)
	ts.Check(err)
	ts.Defer(func() { db.Close() })
	s, err := vaultstore.NewStore(vaultstore.NewStoreOptions{VaultTableName: d.vault, VaultMetaTableName: d.meta, DB: db, DbDriverName: target.dialect})
	ts.Check(err)
	return s
}

// cmdJSON checks fields of the one JSON object on the last command's
// stdout: "json path=value ..." where path is dotted (formats.v3,
// v3_params.0.t) and value is compared with the field's JSON text, strings
// unquoted; "path:len=N" checks the length of an array.
func cmdJSON(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! json")
	}
	out := ts.ReadFile("stdout")
	dec := json.NewDecoder(strings.NewReader(out))
	var obj any
	if err := dec.Decode(&obj); err != nil {
		ts.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if dec.More() {
		ts.Fatalf("stdout holds more than one JSON value:\n%s", out)
	}
	if _, ok := obj.(map[string]any); !ok {
		ts.Fatalf("stdout is not a JSON object:\n%s", out)
	}
	for _, arg := range args {
		path, want, ok := strings.Cut(arg, "=")
		if !ok {
			ts.Fatalf("json: %q is not path=value", arg)
		}
		path, length := strings.CutSuffix(path, ":len")
		v := obj
		for part := range strings.SplitSeq(path, ".") {
			switch c := v.(type) {
			case map[string]any:
				var found bool
				if v, found = c[part]; !found {
					ts.Fatalf("json: no field %s in\n%s", path, out)
				}
			case []any:
				i, err := strconv.Atoi(part)
				if err != nil || i < 0 || i >= len(c) {
					ts.Fatalf("json: no element %s in\n%s", path, out)
				}
				v = c[i]
			default:
				ts.Fatalf("json: %s goes through a scalar in\n%s", path, out)
			}
		}
		var got string
		switch c := v.(type) {
		case string:
			got = c
		case []any:
			if length {
				got = strconv.Itoa(len(c))
				break
			}
			b, _ := json.Marshal(c)
			got = string(b)
		default:
			b, _ := json.Marshal(c)
			got = string(b)
		}
		if length {
			if _, isArray := v.([]any); !isArray {
				ts.Fatalf("json: %s is not an array", path)
			}
		}
		if got != want {
			ts.Fatalf("json: %s = %s, want %s", path, got, want)
		}
	}
}

// vectorFile is testdata/vectors.json of the library: values written by
// the original VaultStore.
type vectorFile struct {
	Vectors []struct {
		Format, Label, Password string
		StoredValue             string `json:"stored_value"`
	}
}

// cmdSeedVectors stores every value of the library's testdata/vectors.json
// as a raw record with token tk_vec_FORMAT_LABEL (underscored), as the
// original library left them in a database.
func cmdSeedVectors(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: seedvectors")
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "vectors.json"))
	ts.Check(err)
	var f vectorFile
	ts.Check(json.Unmarshal(raw, &f))
	s := scriptStore(ts)
	for _, v := range f.Vectors {
		token := "tk_vec_" + v.Format + "_" + strings.ReplaceAll(v.Label, "-", "_")
		rec := vaultstore.NewRecord().SetToken(token).SetValue(v.StoredValue)
		ts.Check(s.RecordCreate(context.Background(), rec))
	}
}

// cmdDamage flips a character of the ciphertext of token, inside the
// AES-GCM tag, as a damaged disk or a careless hand might.
func cmdDamage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: damage TOKEN")
	}
	s := scriptStore(ts)
	ctx := context.Background()
	rec, err := s.RecordFindByToken(ctx, args[0])
	ts.Check(err)
	if rec == nil {
		ts.Fatalf("damage: no token %s", args[0])
	}
	v := rec.GetValue()
	i := len(strings.TrimRight(v, "=")) - 2
	c := byte('A')
	if v[i] == 'A' {
		c = 'B'
	}
	rec.SetValue(v[:i] + string(c) + v[i+1:])
	ts.Check(s.RecordUpdate(ctx, rec))
}
