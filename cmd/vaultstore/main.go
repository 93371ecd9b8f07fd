// Command vaultstore operates a vault of github.com/vaultstore/vaultstore
// from a shell: stats, verify, rotate, upgrade, purge, migrate, get, put and
// version. docs/cli.md describes every command and flag.
//
// This file only wires the commands together; each lives in its own file.
package main

import (
	"os"

	"github.com/spf13/cobra"
)

func main() {
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	os.Exit(a.execute(newRootCommand(a), os.Args[1:]))
}

// newRootCommand builds the command tree of a.
func newRootCommand(a *app) *cobra.Command {
	root := a.rootCommand()
	root.AddCommand(
		a.statsCommand(),
		a.verifyCommand(),
		a.rotateCommand(),
		a.upgradeCommand(),
		a.purgeCommand(),
		a.migrateCommand(),
		a.getCommand(),
		a.putCommand(),
		a.versionCommand(),
	)
	return root
}
