package main

import (
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

type versionResult struct {
	Version string `json:"version"`
	Go      string `json:"go"`
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of the command and the Go it was built with",
		Example: `  vaultstore version --json`,
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			r := versionResult{Version: "(devel)", Go: runtime.Version()}
			if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
				r.Version = info.Main.Version
			}
			if a.json {
				a.printJSON(r)
			} else {
				a.printf("vaultstore %s (%s)\n", r.Version, r.Go)
			}
			return nil
		},
	}
}
