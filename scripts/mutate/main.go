// Command mutate checks that the tests notice when a rule the library
// depends on is broken. It plants a fixed list of small bugs (mutations),
// one at a time, in a temporary copy of the module, runs the tests that
// should catch each one N times, and prints which mutations survive.
//
// Run it from the module root through scripts/mutate.sh:
//
//	bash scripts/mutate.sh                 # SQLite, 20 runs per mutation
//	bash scripts/mutate.sh -databases      # also PostgreSQL and MariaDB
//	bash scripts/mutate.sh -n 5 -only 'expiry'
//
// Each mutation is an exact search and replace. When the code has moved and
// a search text is no longer found exactly once, the mutation is reported
// as "pattern not found" (and the command fails) instead of passing
// silently: update its text here.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// edit replaces the only occurrence of old in file with new.
type edit struct{ file, old, new string }

type mutation struct {
	name  string
	rule  string // what the mutation breaks
	edits []edit
	tests string // -run pattern of the tests that must catch it
	// db: the rule involves the database, so the tests also run on the
	// servers whose DSNs are set. Otherwise they run on SQLite only.
	db bool
}

// The tests of write_safety_test.go are deterministic (hooks, a pinned
// clock), so a mutation they catch is caught on every run.
var mutations = []mutation{
	{
		name: "update-recheck",
		rule: "TokenUpdate's UPDATE no longer re-checks that the row is live and unexpired",
		edits: []edit{{"store_token_methods.go",
			"\t\t\tWhere(COLUMN_SOFT_DELETED_AT+\" > ?\", now).\n\t\t\tWhere(COLUMN_EXPIRES_AT+\" > ?\", now).\n\t\t\tUpdates(map[string]any{COLUMN_VAULT_VALUE: stored",
			"\t\t\tUpdates(map[string]any{COLUMN_VAULT_VALUE: stored"}},
		tests: "^TestTokenUpdateInterleavings$",
		db:    true,
	},
	{
		name: "update-lost-write-ok",
		rule: "TokenUpdate returns nil after a write that matched no row when the re-read finds the row live",
		edits: []edit{{"store_token_methods.go",
			"\t\t\treturn fmt.Errorf(\"%w: token %q\", ErrTokenExpired, token)\n\t\t}\n\t}\n\treturn fmt.Errorf(\"vaultstore: token %q kept changing",
			"\t\t\treturn fmt.Errorf(\"%w: token %q\", ErrTokenExpired, token)\n\t\t}\n\t\treturn nil\n\t}\n\treturn fmt.Errorf(\"vaultstore: token %q kept changing"}},
		tests: "^TestTokenUpdateInterleavings$",
		db:    true,
	},
	{
		name: "renew-recheck",
		rule: "TokenRenew's UPDATE no longer re-checks that the row is live",
		edits: []edit{{"store_token_methods.go",
			"\t\tWhere(COLUMN_SOFT_DELETED_AT+\" > ?\", now).\n\t\tUpdates(map[string]any{COLUMN_EXPIRES_AT: expires",
			"\t\tUpdates(map[string]any{COLUMN_EXPIRES_AT: expires"}},
		tests: "^TestTokenRenewInterleavings$",
		db:    true,
	},
	{
		name: "rotation-no-cas",
		rule: "rotation's compare-and-set on the old value is removed",
		edits: []edit{{"store_bulk_rekey_methods.go",
			"\t\tWhere(COLUMN_VAULT_VALUE+\" = \"+byID, oldByID...).\n",
			""}},
		tests: "^TestRotationInterleavings$",
		db:    true,
	},
	{
		name: "rotation-lost-counted",
		rule: "rotation counts a row whose compare-and-set failed as changed and never retries it",
		edits: []edit{
			{"store_bulk_rekey_methods.go", "lost = append(lost, chunkLost...)", "_ = chunkLost"},
			{"store_bulk_rekey_methods.go", "if !slices.Contains(chunkLost, c.id) {", "if true {"},
		},
		tests: "^TestRotationInterleavings$",
		db:    true,
	},
	{
		name: "rotation-no-tx-retry",
		rule: "rotation no longer runs a transaction the database aborted (deadlock, serialisation failure) again",
		edits: []edit{{"store_bulk_rekey_methods.go",
			"if !isRetryableTxError(err) || attempt == rekeyRetries {",
			"if true {"}},
		tests: "^TestRotationRetries",
		db:    true,
	},
	{
		name:  "expiry-isExpired",
		rule:  "isExpired: expired before now instead of at or before now",
		edits: []edit{{"store_token_methods.go", "string(expires) <= now", "string(expires) < now"}},
		tests: "^TestExpiryBoundary$",
		db:    true,
	},
	{
		name: "expiry-soft-sweep",
		rule: "TokensExpiredSoftDelete: expired before now instead of at or before now",
		edits: []edit{{"store_token_methods.go",
			"Where(COLUMN_EXPIRES_AT+\" <= ?\", now).\n\t\tWhere(COLUMN_SOFT_DELETED_AT+\" > ?\", now).",
			"Where(COLUMN_EXPIRES_AT+\" < ?\", now).\n\t\tWhere(COLUMN_SOFT_DELETED_AT+\" > ?\", now)."}},
		tests: "^TestExpiryBoundary$",
		db:    true,
	},
	{
		name: "expiry-delete-sweep",
		rule: "TokensExpiredDelete: expired before now instead of at or before now",
		edits: []edit{{"store_token_methods.go",
			"Where(COLUMN_EXPIRES_AT+\" <= ?\", nowString()).Delete(",
			"Where(COLUMN_EXPIRES_AT+\" < ?\", nowString()).Delete("}},
		tests: "^TestExpiryBoundary$",
		db:    true,
	},
	{
		name: "expiry-update-write",
		rule: "TokenUpdate's UPDATE writes a row that expires at this very second",
		edits: []edit{{"store_token_methods.go",
			"\t\t\tWhere(COLUMN_EXPIRES_AT+\" > ?\", now).\n\t\t\tUpdates(",
			"\t\t\tWhere(COLUMN_EXPIRES_AT+\" >= ?\", now).\n\t\t\tUpdates("}},
		tests: "^TestExpiryBoundary$",
		db:    true,
	},
	{
		name: "read-expiry-check",
		rule: "TokenRead no longer refuses an expired token",
		edits: []edit{{"store_token_methods.go",
			"\tif isExpired(expires, now) {\n\t\treturn \"\", fmt.Errorf(",
			"\tif false && isExpired(expires, now) {\n\t\treturn \"\", fmt.Errorf("}},
		tests: "^(TestExpiryBoundary|TestTokenCreateExpiry)$",
		db:    true,
	},
	{
		name: "tokensread-expiry-check",
		rule: "TokensRead no longer leaves expired tokens out",
		edits: []edit{{"store_token_methods.go",
			"return isExpired(r.expires, now) })",
			"return false && isExpired(r.expires, now) })"}},
		tests: "^(TestExpiryBoundary|TestTokensRead)$",
		db:    true,
	},
	// encdec_v3.go, key_cache.go and store_record_query.go may be reworked at
	// any time: these texts are kept short.
	{
		name:  "v3-commitment",
		rule:  "v3 decryption no longer checks the key commitment",
		edits: []edit{{"encdec_v3.go", "ConstantTimeCompare(commitment, v.commitment) != 1", "ConstantTimeCompare(commitment, v.commitment) == 2"}},
		tests: "^TestV3",
	},
	{
		name:  "v3-token-in-ad",
		rule:  "the token is left out of v3's associated data",
		edits: []edit{{"encdec_v3.go", "append(append(ad, header...), token...)", "append(ad, header...)"}},
		tests: "^TestV3",
	},
	{
		name:  "key-cache-salt",
		rule:  "the key cache's key no longer includes the salt",
		edits: []edit{{"key_cache.go", "salt: string(salt)", "salt: \"\""}},
		tests: "^(TestKeyCache|TestStoreReadsDeriveOncePerPassword$)",
	},
	{
		name:  "query-column-whitelist",
		rule:  "record queries no longer check SetColumns against the column whitelist",
		edits: []edit{{"store_record_query.go", "if !isVaultColumn(c) {", "if false && !isVaultColumn(c) {"}},
		tests: "^TestRecordQueryRejects",
	},
	{
		name:  "query-order-whitelist",
		rule:  "record queries no longer check SetOrderBy against the column whitelist",
		edits: []edit{{"store_record_query.go", "q.IsOrderBySet() && !isVaultColumn(q.GetOrderBy())", "false"}},
		tests: "^TestRecordQueryRejects",
	},
}

var dsnVars = []string{"VAULTSTORE_POSTGRES_DSN", "VAULTSTORE_MYSQL_DSN"}

func main() {
	began := time.Now()
	runs := flag.Int("n", 20, "test runs per mutation")
	only := flag.String("only", "", "run only the mutations whose name matches this regexp")
	flag.Parse()
	if *runs < 1 {
		fatalf("-n must be at least 1")
	}
	selected := mutations
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fatalf("-only: %v", err)
		}
		selected = nil
		for _, m := range mutations {
			if re.MatchString(m.name) {
				selected = append(selected, m)
			}
		}
	}
	if len(selected) == 0 {
		fatalf("no mutation selected")
	}
	if mod, err := os.ReadFile("go.mod"); err != nil || !bytes.Contains(mod, []byte("module github.com/vaultstore/vaultstore\n")) {
		fatalf("run from the module root (scripts/mutate.sh does)")
	}
	servers := []string{}
	for _, v := range dsnVars {
		if os.Getenv(v) != "" {
			servers = append(servers, strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(v, "VAULTSTORE_"), "_DSN")))
		}
	}

	tmp, err := os.MkdirTemp("", "vaultstore-mutate-")
	if err != nil {
		fatalf("%v", err)
	}
	cleanup = func() { os.RemoveAll(tmp) }
	defer cleanup()
	if err := copyTree(".", tmp); err != nil {
		fatalf("copy: %v", err)
	}
	fmt.Printf("mutate: %d mutation(s), %d run(s) each, in %s\n", len(selected), *runs, tmp)
	fmt.Printf("mutate: servers: %s\n\n", orNone(servers))

	// The unmutated tree must pass the tests, or every mutation would
	// look caught.
	var all []string
	for _, m := range selected {
		all = append(all, "("+m.tests+")")
	}
	if out, err := build(tmp); err != nil {
		fatalf("the unmutated tree does not build:\n%s", out)
	}
	if out, err := runTests(tmp, strings.Join(all, "|"), true); err != nil {
		fatalf("the unmutated tree fails the tests:\n%s", out)
	}

	type result struct {
		m      mutation
		status string
		caught int
	}
	var results []result
	failed := false
	for _, m := range selected {
		start := time.Now()
		r := result{m: m}
		originals, err := apply(tmp, m.edits)
		switch {
		case err != nil:
			r.status = err.Error()
			failed = true
		default:
			if out, err := build(tmp); err != nil {
				r.status = "does not build"
				failed = true
				fmt.Printf("%s: the mutated tree does not build:\n%s\n", m.name, out)
				break
			}
			for range *runs {
				if _, err := runTests(tmp, m.tests, m.db); err != nil {
					r.caught++
				}
			}
			if r.caught == *runs {
				r.status = "caught"
			} else {
				r.status = "SURVIVED"
				failed = true
			}
		}
		restore(tmp, originals)
		results = append(results, r)
		backends := "sqlite"
		if m.db && len(servers) > 0 {
			backends += "," + strings.Join(servers, ",")
		}
		fmt.Printf("%-24s %-18s %2d/%d runs  [%s] %s (%v)\n", m.name, r.status, r.caught, *runs, backends, m.tests, time.Since(start).Round(time.Second))
	}

	fmt.Printf("\nsurvivors:")
	n := 0
	for _, r := range results {
		if r.status != "caught" {
			fmt.Printf("\n  %s: %s (%s)", r.m.name, r.status, r.m.rule)
			n++
		}
	}
	if n == 0 {
		fmt.Printf(" none; every mutation caught in %d of %d runs\n", *runs, *runs)
	} else {
		fmt.Println()
	}
	fmt.Printf("total: %v\n", time.Since(began).Round(time.Second))
	if failed {
		cleanup()
		os.Exit(1)
	}
}

// apply makes the edits in the copy at dir and returns the files' original
// contents. An edit whose text is not found exactly once changes nothing.
func apply(dir string, edits []edit) (map[string][]byte, error) {
	originals := map[string][]byte{}
	current := map[string]string{}
	for _, e := range edits {
		path := filepath.Join(dir, e.file)
		if _, ok := originals[path]; !ok {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("pattern not found: %s: %v", e.file, err)
			}
			originals[path] = b
			current[path] = string(b)
		}
		switch c := strings.Count(current[path], e.old); c {
		case 1:
			current[path] = strings.Replace(current[path], e.old, e.new, 1)
		case 0:
			return nil, fmt.Errorf("pattern not found in %s: %q", e.file, e.old)
		default:
			return nil, fmt.Errorf("pattern found %d times in %s: %q", c, e.file, e.old)
		}
	}
	for path, s := range current {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			restore(dir, originals)
			return nil, err
		}
	}
	return originals, nil
}

func restore(dir string, originals map[string][]byte) {
	for path, b := range originals {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			fatalf("restore %s: %v", path, err)
		}
	}
}

// build compiles the package's test binary in dir.
func build(dir string) ([]byte, error) {
	cmd := exec.Command("go", "test", "-c", "-o", "vaultstore.test", ".")
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

// runTests runs the test binary once; withServers keeps the DSNs of the
// environment, otherwise the tests see SQLite only.
func runTests(dir, pattern string, withServers bool) ([]byte, error) {
	cmd := exec.Command("./vaultstore.test", "-test.run", pattern, "-test.count=1", "-test.timeout=10m")
	cmd.Dir = dir
	cmd.Env = os.Environ()
	if !withServers {
		for _, v := range dsnVars {
			cmd.Env = append(cmd.Env, v+"=")
		}
	}
	return cmd.CombinedOutput()
}

// copyTree copies the module's files, without .git and earlier copies.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" || strings.HasSuffix(path, ".test") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, path)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none (SQLite only; -databases adds PostgreSQL and MariaDB)"
	}
	return strings.Join(list, ", ")
}

// cleanup removes the copy; fatalf runs it before exiting.
var cleanup = func() {}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "mutate: "+format+"\n", args...)
	cleanup()
	os.Exit(2)
}
