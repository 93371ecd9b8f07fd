package main

import (
	"strings"

	"github.com/spf13/cobra"
)

type statsResult struct {
	Rows               int64          `json:"rows"`
	Live               int64          `json:"live"`
	Expired            int64          `json:"expired"`
	SoftDeleted        int64          `json:"soft_deleted"`
	Formats            map[string]int `json:"formats"`
	V3Params           []v3ParamsJSON `json:"v3_params"`
	PasswordIdentities int64          `json:"password_identities"`
	VaultTable         bool           `json:"vault_table_exists"`
	MetaTable          bool           `json:"meta_table_exists"`
	NeedsMigrate       bool           `json:"needs_migrate"`
	Pending            []string       `json:"pending_migrations"`
}

type v3ParamsJSON struct {
	Iterations  uint32 `json:"t"`
	MemoryKiB   uint32 `json:"m_kib"`
	Parallelism uint8  `json:"p"`
	Count       int64  `json:"count"`
}

func (a *app) statsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Count rows by state and values by format; say whether the tables need migrate",
		Long: `stats counts the vault's rows (all, live, expired, soft-deleted), its values
by format (v1, v2, v3, unknown) and v3 Argon2id parameter set, and its password
identities, and says whether the tables need 'vaultstore migrate'. It needs no
password and decrypts nothing.`,
		Example: `  vaultstore stats --db sqlite:vault.db
  vaultstore stats --db postgres://app:secret@db:5432/app --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, db, err := a.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer db.Close()
			st, err := s.Stats(cmd.Context())
			if err != nil {
				return err
			}
			r := statsResult{
				Rows: st.Rows, Live: st.Live, Expired: st.Expired, SoftDeleted: st.SoftDeleted,
				Formats:            map[string]int{"v1": int(st.V1), "v2": int(st.V2), "v3": int(st.V3), "unknown": int(st.Unknown)},
				V3Params:           []v3ParamsJSON{},
				PasswordIdentities: st.PasswordIdentities,
				VaultTable:         st.Schema.VaultTable,
				MetaTable:          st.Schema.MetaTable,
				NeedsMigrate:       st.Schema.NeedsMigrate(),
				Pending:            append([]string{}, st.Schema.Pending...),
			}
			for _, p := range st.V3Params {
				r.V3Params = append(r.V3Params, v3ParamsJSON{p.Iterations, p.MemoryKiB, p.Parallelism, p.Count})
			}
			if a.json {
				a.printJSON(r)
				return nil
			}
			a.printf("rows:         %d (live %d, expired %d, soft-deleted %d)\n", r.Rows, r.Live, r.Expired, r.SoftDeleted)
			a.printf("formats:      v1 %d, v2 %d, v3 %d, unknown %d\n", st.V1, st.V2, st.V3, st.Unknown)
			for _, p := range r.V3Params {
				a.printf("v3 params:    t=%d m=%d KiB p=%d: %d values\n", p.Iterations, p.MemoryKiB, p.Parallelism, p.Count)
			}
			a.printf("identities:   %d\n", r.PasswordIdentities)
			if r.NeedsMigrate {
				a.printf("schema:       needs 'vaultstore migrate': %s\n", strings.Join(r.Pending, "; "))
			} else {
				a.printf("schema:       current\n")
			}
			return nil
		},
	}
}

// noArgs refuses positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %d", cmd.CommandPath(), len(args))
	}
	return nil
}

// exactArgs wants n positional arguments.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s wants %s", cmd.CommandPath(), what)
		}
		return nil
	}
}
