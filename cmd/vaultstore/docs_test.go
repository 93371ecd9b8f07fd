package main

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the help blocks of docs/cli.md from the command")

// helpBlockRE finds the help blocks of docs/cli.md: a marker comment naming
// the command line, then a fenced block with its --help output.
var helpBlockRE = regexp.MustCompile("(?s)<!-- help: ([^>]*?) -->\n```text\n(.*?)```\n")

// TestDocsMatchHelp: docs/cli.md holds the --help output of the root and of
// every command, exactly as the built binary prints it, and so documents
// every flag. go test -run TestDocsMatchHelp -update-docs rewrites them.
func TestDocsMatchHelp(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "docs", "cli.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var failed bool
	updated := helpBlockRE.ReplaceAllStringFunc(string(doc), func(block string) string {
		m := helpBlockRE.FindStringSubmatch(block)
		args := append(strings.Fields(m[1])[1:], "--help")
		r := runCLI(t, nil, "", args...)
		if r.code != 0 {
			t.Errorf("%s --help: exit %d\n%s", m[1], r.code, r.stderr)
		}
		seen[m[1]] = true
		if r.stdout != m[2] {
			failed = true
			if !*updateDocs {
				t.Errorf("docs/cli.md, %s --help differs from the command's:\n--- docs\n%s\n--- command\n%s", m[1], m[2], r.stdout)
			}
		}
		return "<!-- help: " + m[1] + " -->\n```text\n" + r.stdout + "```\n"
	})
	root := newRootCommand(&app{})
	want := []string{"vaultstore"}
	for _, c := range root.Commands() {
		if !c.Hidden && c.Name() != "help" {
			want = append(want, "vaultstore "+c.Name())
		}
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("docs/cli.md has no help block for %q", w)
		}
	}
	if failed && *updateDocs {
		if err := os.WriteFile(path, []byte(updated), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("docs/cli.md updated")
	}
}
