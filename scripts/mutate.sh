#!/usr/bin/env bash
# Usage: scripts/mutate.sh [-databases] [-n RUNS] [-only REGEXP]
#
# Mutation testing: plants each bug of the fixed list in scripts/mutate/main.go
# (one at a time, in a temporary copy of the module), runs the tests that must
# catch it RUNS times (default 20), and prints the mutations that survive. A
# mutation whose search text is no longer in the code is reported as "pattern
# not found". Exits non-zero if any mutation survives or is not found.
#
#   bash scripts/mutate.sh                 # SQLite only
#   bash scripts/mutate.sh -databases      # rules that involve the database
#                                          # also on PostgreSQL and MariaDB
#   bash scripts/mutate.sh -n 3 -only '^expiry'
#
# Slow (minutes): not part of .ci/run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	PATH="/usr/local/go/bin:$PATH"
fi

databases=0
args=()
for arg in "$@"; do
	case "$arg" in
	-databases | --databases) databases=1 ;;
	*) args+=("$arg") ;;
	esac
done

if ((databases)); then
	exec bash scripts/with-databases.sh go run ./scripts/mutate "${args[@]}"
fi
VAULTSTORE_POSTGRES_DSN='' VAULTSTORE_MYSQL_DSN='' exec go run ./scripts/mutate "${args[@]}"
