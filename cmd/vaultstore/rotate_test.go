package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vaultstore/vaultstore"
)

// Passwords of the rotation tests; they meet the default policy.
const (
	rotOld = "rotate-old-Passw0rd-5150"
	rotNew = "rotate-new-Passw0rd-6160"
)

// tinyCrypto is the cheapest Argon2id the library accepts, as --crypto
// takes it; tests write their records with it so that they spend their time
// on the rotation and not on key derivation.
const tinyCrypto = "t=1,m=8,p=1"

// seedSQLite makes an SQLite file at path with the default tables and n
// values under password (testdata/seed: tokens tk_rotate_%08d, values
// "value I", cheapest Argon2id), and returns their tokens.
func seedSQLite(t testing.TB, path string, n int, password string) []string {
	t.Helper()
	cmd := exec.Command(seeder(t), path, fmt.Sprint(n))
	cmd.Env = append(os.Environ(), "SEED_PASSWORD="+password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("tk_rotate_%08d", i)
	}
	return tokens
}

// checkAllOpen opens every token with password through the library.
func checkAllOpen(t testing.TB, path string, tokens []string, password string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := vaultstore.NewStore(vaultstore.NewStoreOptions{
		VaultTableName: "vault", VaultMetaTableName: "vault_meta", DB: db,
		MinArgon2Iterations: 1, MinArgon2Memory: 8,
		CryptoConfig: &vaultstore.CryptoConfig{Iterations: 1, Memory: 8, Parallelism: 1, KeyLength: 32, SaltSize: 16, NonceSize: 12, TagSize: 16},
	})
	if err != nil {
		t.Fatal(err)
	}
	values, err := s.TokensRead(context.Background(), tokens, password)
	if err != nil {
		t.Fatalf("TokensRead of all %d tokens with the new password: %v", len(tokens), err)
	}
	for i, tk := range tokens {
		if values[tk] != fmt.Sprint("value ", i) {
			t.Fatalf("token %s reads %q", tk, values[tk])
		}
	}
}

// TestRotateInterrupted: SIGINT during a rotation of 5,000 records, sent
// once the first progress line is out, stops it at a batch boundary with
// exact counts; a second run finishes; the two runs' changed counts add up
// to 5,000 and every value opens with the new password.
func TestRotateInterrupted(t *testing.T) {
	t.Parallel()
	const n = 5000
	path := filepath.Join(t.TempDir(), "vault.db")
	tokens := seedSQLite(t, path, n, rotOld)
	env := []string{"VAULTSTORE_DB=sqlite:" + path, "VAULTSTORE_PASSWORD=" + rotOld, "VAULTSTORE_NEW_PASSWORD=" + rotNew}
	args := []string{"rotate", "--crypto", tinyCrypto, "--batch-size", "10", "--json"}

	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// With --json the progress lines go to stderr; the first comes after
	// the first committed batch.
	lines := bufio.NewScanner(stderr)
	var progress []string
	signalled := false
	for lines.Scan() {
		progress = append(progress, lines.Text())
		if !signalled && strings.HasPrefix(lines.Text(), "rotate: scanned ") {
			if err := cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			signalled = true
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("interrupted rotate: %v, want exit status 1; stderr:\n%s", err, strings.Join(progress, "\n"))
	}
	first := decodeRotation(t, stdout.Bytes())
	if !first.Interrupted || first.Complete || first.Changed <= 0 || first.Changed >= n || first.Scanned != first.Changed {
		t.Fatalf("first run = %+v, want an interrupted rotation that changed some of %d", first, n)
	}
	if !strings.Contains(strings.Join(progress, "\n"), "stopping after the current batch") {
		t.Errorf("no stop notice on stderr:\n%s", strings.Join(progress, "\n"))
	}

	again := runCLI(t, env, "", args...)
	if again.code != 0 {
		t.Fatalf("second rotate: exit %d\n%s", again.code, again.stderr)
	}
	second := decodeRotation(t, []byte(again.stdout))
	if !second.Complete || second.Interrupted || second.Scanned != n || second.Total != n {
		t.Fatalf("second run = %+v", second)
	}
	if first.Changed+second.Changed != n {
		t.Errorf("changed %d + %d = %d, want %d", first.Changed, second.Changed, first.Changed+second.Changed, n)
	}
	t.Logf("first run changed %d (stopped at a batch boundary: %v), second %d", first.Changed, first.Changed%10 == 0, second.Changed)
	checkAllOpen(t, path, tokens, rotNew)
}

func decodeRotation(t testing.TB, out []byte) rotationResult {
	t.Helper()
	var r rotationResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("rotate --json printed %q: %v", out, err)
	}
	return r
}

// TestRotateProgressInTmux looks at the progress bar on a real terminal:
// rotate of 20,000 records runs inside tmux; capture-pane must show the bar
// with its rate and ETA while it runs, then the final counts. The same
// rotation back with stdout redirected to a file prints plain progress
// lines without any terminal escape code. Finally get asks for the password
// on the terminal without echoing it.
func TestRotateProgressInTmux(t *testing.T) {
	t.Parallel()
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("tmux is not installed; .ci/run installs it")
		}
		t.Skip("tmux not found: install Debian's tmux package to look at the progress bar (CI does)")
	}
	const n = 20000
	dir := t.TempDir()
	path := filepath.Join(dir, "vault.db")
	seedSQLite(t, path, n, rotOld)

	// A private server socket, so that no other tmux is touched; the
	// server's environment, inherited by its shell, carries the passwords.
	socket := filepath.Join(dir, "tmux.sock")
	tm := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(tmux, append([]string{"-S", socket}, args...)...)
		// Without TMUX: a test run from inside tmux starts its own server.
		cmd.Env = append(withoutEnv(os.Environ(), "TMUX", true), "VAULTSTORE_DB=sqlite:"+path, "VAULTSTORE_PASSWORD="+rotOld, "VAULTSTORE_NEW_PASSWORD="+rotNew, "VS_OLD="+rotOld, "VS_NEW="+rotNew, "PS1=$ ", "TERM=xterm-256color")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	tm("-f", "/dev/null", "new-session", "-d", "-x", "160", "-y", "40", "sh")
	t.Cleanup(func() { exec.Command(tmux, "-S", socket, "kill-server").Run() })
	screen := func() string { return tm("capture-pane", "-p", "-J") }
	waitFor := func(what string, deadline time.Duration, ok func(string) bool) string {
		t.Helper()
		end := time.Now().Add(deadline)
		for {
			s := screen()
			if ok(s) {
				return s
			}
			if time.Now().After(end) {
				t.Fatalf("no %s on the screen after %v:\n%s", what, deadline, s)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	bin := binary(t)
	// Each command ends by echoing a marker of its own with its exit status.
	done := func(marker string) func(string) bool {
		re := regexp.MustCompile(marker + `=\d+`)
		return func(s string) bool { return re.MatchString(s) }
	}
	tm("send-keys", fmt.Sprintf("%s rotate --crypto %s --batch-size 50; echo DONE1=$?", bin, tinyCrypto), "Enter")
	// The bar: "rotate: changed 4600, skipped 0  23% |██████  | (4600/20000, 2285 records/s) [2s:6s]"
	barShown := waitFor("progress bar with rate and ETA", 2*time.Minute, func(s string) bool {
		return barRE.MatchString(s)
	})
	bar := barRE.FindString(barShown)
	t.Logf("bar while running: %s", bar)
	final := waitFor("final counts", 2*time.Minute, done("DONE1"))
	for _, want := range []string{"rotate: done", "total:    20000", "scanned:  20000", "changed: 20000 (from v1 0, v2 0, v3 20000)", "skipped:  0", "DONE1=0"} {
		if !strings.Contains(final, want) {
			t.Errorf("final screen lacks %q:\n%s", want, final)
		}
	}
	t.Logf("final screen:\n%s", final)

	// The same rotation back, stdout to a file: plain lines only.
	out := filepath.Join(dir, "rotate.out")
	tm("send-keys", fmt.Sprintf("VAULTSTORE_PASSWORD=$VS_NEW VAULTSTORE_NEW_PASSWORD=$VS_OLD %s rotate --crypto %s --batch-size 50 --progress-interval 200ms > %s; echo DONE2=$?", bin, tinyCrypto, out), "Enter")
	if s := waitFor("end of the redirected run", 2*time.Minute, done("DONE2")); !strings.Contains(s, "DONE2=0") {
		t.Errorf("redirected run failed:\n%s", s)
	}
	text, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsAny(text, "\x1b\r") {
		t.Errorf("redirected output holds escape codes or carriage returns:\n%q", text)
	}
	if !plainLineRE.Match(text) || !strings.Contains(string(text), "changed: 20000 (from v1 0, v2 0, v3 20000)") {
		t.Errorf("redirected output lacks plain progress lines or the final counts:\n%s", text)
	}
	t.Logf("redirected output:\n%s", text)

	// get without VAULTSTORE_PASSWORD asks on the terminal, without echo.
	tm("send-keys", fmt.Sprintf("env -u VAULTSTORE_PASSWORD %s get tk_rotate_00000007 --crypto %s; s=$?; echo; echo DONE3=$s", bin, tinyCrypto), "Enter")
	waitFor("password prompt", time.Minute, func(s string) bool { return strings.Contains(s, "Password: ") })
	tm("send-keys", "-l", rotOld)
	tm("send-keys", "Enter")
	got := waitFor("value read after the prompt", time.Minute, done("DONE3"))
	if !strings.Contains(got, "value 7") || !strings.Contains(got, "DONE3=0") || strings.Contains(got, rotOld) {
		t.Errorf("prompted get: screen\n%s\nwants the value, exit 0 and no echo of the password", got)
	}
}

var (
	// barRE matches the bar of a running rotation past its first thousand
	// records (so that the rate means something): percentage, counts, rate
	// and [elapsed:ETA].
	barRE = regexp.MustCompile(`rotate: changed \d+, skipped \d+ +\d+% \|[^|]*\| \((?:[1-9]\d{3}|1\d{4})/20000, \d+ records/s\) \[\d+s:\d+s\]`)
	// plainLineRE matches a plain progress line with rate.
	plainLineRE = regexp.MustCompile(`(?m)^rotate: scanned \d+ of 20000, changed \d+, skipped 0, \d+ records/s`)
)
