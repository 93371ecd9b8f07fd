package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runResult is what one run of the binary did.
type runResult struct {
	args           []string
	stdout, stderr string
	code           int
}

// runCLI runs the built binary with args, the extra environment env and
// stdin, and returns its output and exit code.
func runCLI(t testing.TB, env []string, stdin string, args ...string) runResult {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}
	return runResult{args: cmd.Args, stdout: out.String(), stderr: errOut.String(), code: code}
}

// TestExitCodes: 0 on success, 1 when the operation fails, 2 for usage
// errors, and the accepted --db forms named when the DSN is unknown.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "v.db")
	pw := []string{"VAULTSTORE_PASSWORD=exit-code-Passw0rd-11"}
	for _, tc := range []struct {
		name  string
		env   []string
		args  []string
		code  int
		inErr string
	}{
		{"version", nil, []string{"version"}, 0, ""},
		{"help", nil, []string{"--help"}, 0, ""},
		{"migrate", nil, []string{"migrate", "--db", db}, 0, ""},
		{"unknown DSN", nil, []string{"stats", "--db", "mssql://sa:x@db/app"}, 2, "sqlite:PATH"},
		{"no DSN", []string{"VAULTSTORE_DB="}, []string{"stats"}, 2, "VAULTSTORE_DB"},
		{"unknown command", nil, []string{"bogus"}, 2, "unknown command"},
		{"unknown flag", nil, []string{"stats", "--bogus"}, 2, "unknown flag"},
		{"extra argument", nil, []string{"stats", "extra", "--db", db}, 2, "takes no arguments"},
		{"get without token", pw, []string{"get", "--db", db}, 2, "one TOKEN"},
		{"bad crypto", nil, []string{"stats", "--db", db, "--crypto", "fast"}, 2, "--crypto"},
		{"bad min-read-version", nil, []string{"stats", "--db", db, "--min-read-version", "v9"}, 2, "--min-read-version"},
		{"no password off a terminal", []string{"VAULTSTORE_PASSWORD="}, []string{"get", "tk_absent_token_1", "--db", db, "--password-file", ""}, 2, "no password"},
		{"absent token", pw, []string{"get", "tk_absent_token_1", "--db", db}, 1, "record not found"},
		{"malformed token", pw, []string{"put", "--token", "tk bad", "--db", db}, 2, "whitespace"},
		{"new password against the policy", append(pw, "VAULTSTORE_NEW_PASSWORD=short"), []string{"rotate", "--db", db}, 2, "policy"},
		{"missing SQLite file", pw, []string{"stats", "--db", filepath.Join(dir, "none.db")}, 1, "no SQLite database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env
			if tc.name == "no password off a terminal" {
				// Unset, not empty: an empty password is a password.
				env = nil
			}
			cmd := exec.Command(binary(t), tc.args...)
			cmd.Env = withoutEnv(append(os.Environ(), env...), "VAULTSTORE_PASSWORD", tc.name == "no password off a terminal")
			var errOut bytes.Buffer
			cmd.Stderr = &errOut
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.inErr) {
				t.Errorf("stderr %q does not mention %q", errOut.String(), tc.inErr)
			}
		})
	}
}

// withoutEnv drops name from env when drop is set.
func withoutEnv(env []string, name string, drop bool) []string {
	if !drop {
		return env
	}
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// TestNoSecretsInOutput runs every command, in human and JSON mode, with a
// known password, new password and value, on every database, also the
// failing paths (a wrong password, a new password the policy refuses),
// and finds none of them in stdout (except get's), stderr or the argv of
// the process; nor the database password of a server DSN.
func TestNoSecretsInOutput(t *testing.T) {
	t.Parallel()
	const (
		pw     = "leak-check-Passw0rd-314159"
		newPw  = "leak-check-NewPassw0rd-2718"
		value  = "leak-check-value-16180339"
		weakPw = "weak-9f3k"
	)
	for _, b := range cliBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			dsn := b.dsn(dir)
			vt, mt := uniqueTables()
			_, db := openTestStore(t, dsn, vt, mt, "t=1,m=8,p=1")
			t.Cleanup(func() { dropTables(db, vt, mt) })
			// A distinctive database password, for a connection that fails.
			const dbPassword = "dsn-leak-Passw0rd-77"
			pwFile := filepath.Join(dir, "pw.txt")
			if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			common := []string{"--table", vt, "--meta-table", mt, "--crypto", "t=1,m=8,p=1"}
			env := []string{"VAULTSTORE_DB=" + dsn, "VAULTSTORE_PASSWORD=" + pw, "VAULTSTORE_NEW_PASSWORD=" + newPw}
			put := runCLI(t, env, value, append([]string{"put", "--token", "tk_leak_check_01"}, common...)...)
			if put.code != 0 {
				t.Fatalf("put: %d %s", put.code, put.stderr)
			}
			var runs []runResult
			for _, json := range []bool{false, true} {
				with := func(args ...string) []string {
					args = append(args, common...)
					if json {
						args = append(args, "--json")
					}
					return args
				}
				runs = append(runs,
					runCLI(t, env, value, with("put")...),
					runCLI(t, env, "", with("migrate")...),
					runCLI(t, env, "", with("stats")...),
					runCLI(t, env, "", with("verify")...),
					runCLI(t, env, "", with("verify", "--password-file", pwFile)...),
					runCLI(t, env, pw+"\n", with("verify", "--password-file", "-")...),
					runCLI(t, env, "", with("upgrade", "--dry-run")...),
					runCLI(t, env, "", with("rotate", "--dry-run")...),
					runCLI(t, append(env, "VAULTSTORE_NEW_PASSWORD="+weakPw), "", with("rotate")...),
					runCLI(t, append(env, "VAULTSTORE_PASSWORD="+newPw), "", with("get", "tk_leak_check_01")...),
					runCLI(t, env, "", with("purge")...),
					runCLI(t, env, "", with("version")...),
					runCLI(t, env, value, with("put", "--token", "tk_leak_check_01")...), // already exists
				)
				if b.name != "sqlite" {
					// A refused connection must not print the DSN's password.
					target, _ := parseDSN(dsn)
					bad := strings.Replace(dsn, ":"+target.password+"@", ":"+dbPassword+"@", 1)
					if bad == dsn {
						t.Fatalf("no password in the %s DSN", b.name)
					}
					runs = append(runs, runCLI(t, append(env, "VAULTSTORE_DB="+bad), "", with("stats")...))
				}
				got := runCLI(t, env, "", with("get", "tk_leak_check_01")...)
				if got.code != 0 || !strings.Contains(got.stdout, value) {
					t.Fatalf("get did not print the value: %d %q %q", got.code, got.stdout, got.stderr)
				}
				if strings.Contains(got.stderr, value) || strings.Contains(got.stdout, pw) {
					t.Errorf("get printed a secret where it should not:\n%s\n%s", got.stdout, got.stderr)
				}
				runs = append(runs, runResult{args: got.args, stderr: got.stderr})
				runs = append(runs, runCLI(t, env, "", with("rotate")...), runCLI(t, []string{"VAULTSTORE_PASSWORD=" + newPw, "VAULTSTORE_NEW_PASSWORD=" + pw, "VAULTSTORE_DB=" + dsn}, "", with("rotate")...))
			}
			failures := 0
			for _, r := range runs {
				if r.code != 0 {
					failures++
				}
				for _, secret := range []string{pw, newPw, value, weakPw, dbPassword} {
					for where, text := range map[string]string{"stdout": r.stdout, "stderr": r.stderr, "argv": strings.Join(r.args, "\x00")} {
						if strings.Contains(text, secret) {
							t.Errorf("%v: %s holds a secret:\n%s", r.args[1:], where, text)
						}
					}
				}
			}
			if failures < 3 {
				t.Errorf("only %d runs failed; the failing paths were not exercised", failures)
			}
		})
	}
}
