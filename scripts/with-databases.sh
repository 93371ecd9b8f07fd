#!/usr/bin/env bash
# Usage: scripts/with-databases.sh COMMAND [ARGS...]
#
# Runs COMMAND with a throw-away PostgreSQL and a throw-away MariaDB server,
# both on 127.0.0.1 only and on free ports, and with VAULTSTORE_POSTGRES_DSN
# and VAULTSTORE_MYSQL_DSN pointing at them. Exits with COMMAND's exit code.
# Both servers and their data are gone when this script returns, whatever
# happened. Missing server packages are installed from Debian (needs root).
#
#   scripts/with-databases.sh go test -race ./...
#   VAULTSTORE_SKIP_DATABASES=1 scripts/with-databases.sh go test ./...  # SQLite only
set -euo pipefail

if [[ $# -eq 0 ]]; then
	sed -n '2,11s/^# \{0,1\}//p' "$0" >&2
	exit 2
fi

if [[ "${VAULTSTORE_SKIP_DATABASES:-}" == 1 ]]; then
	exec "$@"
fi

# mariadbd, runuser and useradd live in /usr/sbin, which is not on every PATH
# (a minimal `env -i` environment, some CI runners).
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

readonly DB_NAME=vaultstore DB_USER=vaultstore DB_PASSWORD=vaultstore

log() { printf 'with-databases: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# ---------------------------------------------------------------------------
# Shared helpers

WORK_DIR=""            # root of everything this run creates; removed on exit
CREATED_POLICY_RC=0    # whether /usr/sbin/policy-rc.d is ours to remove
PG_BIN="" PG_DIR="" PG_PORT=""
MY_DIR="" MY_PORT="" MY_PID=""

# shellcheck disable=SC2317  # reached through the trap below
cleanup() {
	local rc=$?
	# A second Ctrl-C during cleanup must not leave servers behind.
	trap '' INT TERM HUP
	stop_postgres
	stop_mariadb
	if [[ -n "$WORK_DIR" ]]; then
		rm -rf "$WORK_DIR"
	fi
	if ((CREATED_POLICY_RC)); then
		rm -f /usr/sbin/policy-rc.d
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Port free on loopback: nothing accepts a connection there. `ss` also sees
# sockets bound but not yet listening; /dev/tcp works where iproute2 doesn't.
port_is_free() {
	local port=$1
	if command -v ss >/dev/null 2>&1 &&
		[[ -n "$(ss -Htan "sport = :$port" 2>/dev/null)" ]]; then
		return 1
	fi
	! timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null
}

# 20000-31999 stays below Linux's ephemeral range (32768+), where the tests'
# own outgoing connections take their ports. A random start makes two runs at
# once (two terminals, or a developer's run beside CI's) unlikely to race.
free_port() {
	local exclude=${1:-0} port i
	port=$((20000 + RANDOM % 12000))
	for ((i = 0; i < 500; i++)); do
		if ((port != exclude)) && port_is_free "$port"; then
			echo "$port"
			return 0
		fi
		port=$((port >= 31999 ? 20000 : port + 1))
	done
	die "no free TCP port found on 127.0.0.1"
}

# Runs a command as a system user when we are root: PostgreSQL refuses to run
# as root, and MariaDB is happier not to. A non-root caller runs the servers
# as itself.
as_user() {
	local user=$1 dir=$2
	shift 2
	if ((EUID == 0)); then
		# cd first: the system user may not be allowed into the caller's cwd.
		(cd "$dir" && runuser -u "$user" -- "$@")
	else
		(cd "$dir" && "$@")
	fi
}

ensure_system_user() {
	local user=$1
	if ((EUID == 0)) && ! id -u "$user" >/dev/null 2>&1; then
		useradd --system --user-group --no-create-home \
			--home-dir /nonexistent --shell /usr/sbin/nologin "$user"
	fi
}

# A private directory for one server. Private because its Unix socket lets
# anyone who reaches it in as superuser without a password.
make_server_dir() {
	local user=$1 dir=$2
	mkdir -m 0700 "$dir"
	if ((EUID == 0)); then
		chown "$user:" "$dir"
	fi
}

print_log_tail() {
	local name=$1 file
	shift
	log "$name failed to start"
	for file; do
		if [[ -s "$file" ]]; then
			log "last lines of $file:"
			tail -n 40 "$file" >&2
		fi
	done
}

apt_install() {
	((EUID == 0)) || die "need root to install missing packages: $*"
	# Debian's maintainer scripts start the packaged servers on the standard
	# ports unless policy-rc.d forbids it; we only want the binaries. Docker
	# images often ship such a file already, and then it is not ours to remove.
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		CREATED_POLICY_RC=1
	fi
	log "installing $* from Debian packages"
	# dpkg's progress output is long and only interesting when it fails. The
	# lock timeout lets a concurrent apt run (unattended-upgrades on a fresh
	# VM) finish instead of failing us.
	local apt_log
	apt_log=$(mktemp /tmp/vaultstore-apt.XXXXXX.log)
	if ! { apt-get -o DPkg::Lock::Timeout=300 update &&
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
			install -y --no-install-recommends "$@"; } >"$apt_log" 2>&1; then
		log "package installation failed; last lines of $apt_log:"
		tail -n 40 "$apt_log" >&2
		exit 1
	fi
	rm -f "$apt_log"
	if ((CREATED_POLICY_RC)); then
		rm -f /usr/sbin/policy-rc.d
		CREATED_POLICY_RC=0
	fi
}

# ---------------------------------------------------------------------------
# PostgreSQL

# Newest installed major version; Debian keeps each under its own directory
# and does not put the server binaries on PATH.
find_postgres_bin() {
	local dir
	while read -r dir; do
		if [[ -x "$dir/postgres" && -x "$dir/initdb" && -x "$dir/pg_ctl" &&
			-x "$dir/psql" ]]; then
			echo "$dir"
			return 0
		fi
	done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -rV)
	return 1
}

postgres_missing() { ! find_postgres_bin >/dev/null; }

start_postgres() {
	PG_BIN=$(find_postgres_bin) || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
	ensure_system_user postgres
	PG_DIR="$WORK_DIR/postgres"
	make_server_dir postgres "$PG_DIR"
	PG_PORT=$(free_port)

	# C.UTF-8 gives Unicode-aware lower()/upper() without depending on which
	# locales the machine has generated; plain C is the fallback.
	local locale_opt=--no-locale
	if locale -a 2>/dev/null | grep -qix 'c\.utf-\{0,1\}8'; then
		locale_opt=--locale=C.UTF-8
	fi
	# Local socket connections are trusted so that we can create the role
	# without a superuser password; TCP needs the password, as in production.
	if ! as_user postgres "$PG_DIR" "$PG_BIN/initdb" -D "$PG_DIR/data" \
		-U postgres --encoding=UTF8 "$locale_opt" \
		--auth-local=trust --auth-host=scram-sha-256 \
		>"$PG_DIR/initdb.log" 2>&1; then
		print_log_tail PostgreSQL "$PG_DIR/initdb.log"
		exit 1
	fi

	# Durability settings are off: the data is thrown away after the run.
	cat >>"$PG_DIR/data/postgresql.conf" <<-EOF

		listen_addresses = '127.0.0.1'
		port = $PG_PORT
		unix_socket_directories = '$PG_DIR'
		max_connections = 200
		fsync = off
		synchronous_commit = off
		full_page_writes = off
	EOF

	if ! as_user postgres "$PG_DIR" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" \
		-l "$PG_DIR/postgres.log" -w -t 60 start >"$PG_DIR/pg_ctl.log" 2>&1; then
		print_log_tail PostgreSQL "$PG_DIR/pg_ctl.log" "$PG_DIR/postgres.log"
		exit 1
	fi

	local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U postgres)
	as_user postgres "$PG_DIR" "${psql[@]}" -d postgres <<-EOF >&2
		CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD';
		CREATE DATABASE $DB_NAME OWNER $DB_USER ENCODING 'UTF8' TEMPLATE template0;
	EOF
	# The tests create tables in the public schema, which PostgreSQL 15 no
	# longer lets every role do.
	as_user postgres "$PG_DIR" "${psql[@]}" -d "$DB_NAME" \
		-c "ALTER SCHEMA public OWNER TO $DB_USER" >&2

	export VAULTSTORE_POSTGRES_DSN="postgres://$DB_USER:$DB_PASSWORD@127.0.0.1:$PG_PORT/$DB_NAME?sslmode=disable"

	# Prove the DSN works the way the tests will use it: TCP plus password.
	local version
	version=$(PGPASSWORD=$DB_PASSWORD "$PG_BIN/psql" -X -qAt \
		-h 127.0.0.1 -p "$PG_PORT" -U "$DB_USER" -d "$DB_NAME" \
		-c 'SHOW server_version') || {
		print_log_tail PostgreSQL "$PG_DIR/postgres.log"
		exit 1
	}
	log "PostgreSQL $version on 127.0.0.1:$PG_PORT (data in $PG_DIR)"
}

# shellcheck disable=SC2317  # reached through the EXIT trap
stop_postgres() {
	[[ -n "$PG_DIR" && -f "$PG_DIR/data/postmaster.pid" ]] || return 0
	local pid
	pid=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null) || pid=""
	# immediate: no checkpoint, the data is about to be deleted anyway.
	as_user postgres "$PG_DIR" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" \
		-m immediate -w -t 30 stop >/dev/null 2>&1 || true
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
}

# ---------------------------------------------------------------------------
# MariaDB

mariadb_missing() {
	local cmd
	for cmd in mariadbd mariadb-install-db mariadb mariadb-admin; do
		command -v "$cmd" >/dev/null 2>&1 || return 0
	done
	return 1
}

start_mariadb() {
	# --no-defaults on every MariaDB program: /etc/mysql/my.cnf points at the
	# packaged server's datadir and socket.
	ensure_system_user mysql
	MY_DIR="$WORK_DIR/mariadb"
	make_server_dir mysql "$MY_DIR"
	MY_PORT=$(free_port "$PG_PORT")

	local user_opt=()
	if ((EUID == 0)); then
		user_opt=(--user=mysql)
	fi

	# "normal" root authentication: root@localhost without a password, which
	# is fine for a socket in a private directory.
	if ! mariadb-install-db --no-defaults "${user_opt[@]}" \
		--datadir="$MY_DIR/data" --auth-root-authentication-method=normal \
		--skip-test-db >"$MY_DIR/install-db.log" 2>&1; then
		print_log_tail MariaDB "$MY_DIR/install-db.log"
		exit 1
	fi

	# Durability settings are off: the data is thrown away after the run.
	# skip-name-resolve so that 127.0.0.1 connections match 'user'@'127.0.0.1'
	# without a reverse DNS lookup.
	mariadbd --no-defaults "${user_opt[@]}" \
		--datadir="$MY_DIR/data" \
		--socket="$MY_DIR/mysql.sock" \
		--pid-file="$MY_DIR/mariadbd.pid" \
		--log-error="$MY_DIR/mariadbd.log" \
		--bind-address=127.0.0.1 --port="$MY_PORT" \
		--skip-name-resolve --skip-log-bin \
		--character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
		--max-connections=300 \
		--innodb-buffer-pool-size=256M \
		--innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
		--sync-binlog=0 \
		</dev/null >>"$MY_DIR/mariadbd.log" 2>&1 &
	MY_PID=$!

	local deadline=$((SECONDS + 60))
	until mariadb-admin --no-defaults --protocol=socket \
		--socket="$MY_DIR/mysql.sock" -uroot --connect-timeout=2 \
		ping >/dev/null 2>&1; do
		if ! kill -0 "$MY_PID" 2>/dev/null || ((SECONDS >= deadline)); then
			print_log_tail MariaDB "$MY_DIR/mariadbd.log"
			exit 1
		fi
		sleep 0.2
	done

	# Both hosts: the DSN connects over TCP (127.0.0.1), a developer poking
	# around with the mariadb client without -h comes in as localhost.
	mariadb --no-defaults --protocol=socket --socket="$MY_DIR/mysql.sock" -uroot <<-EOF
		CREATE DATABASE $DB_NAME CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
		CREATE USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
		CREATE USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
		GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
		GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'localhost';
	EOF

	export VAULTSTORE_MYSQL_DSN="$DB_USER:$DB_PASSWORD@tcp(127.0.0.1:$MY_PORT)/$DB_NAME?charset=utf8mb4&parseTime=true"

	local version
	version=$(mariadb --no-defaults -h 127.0.0.1 -P "$MY_PORT" -u "$DB_USER" \
		-p"$DB_PASSWORD" -N -B "$DB_NAME" -e 'SELECT VERSION()') || {
		print_log_tail MariaDB "$MY_DIR/mariadbd.log"
		exit 1
	}
	log "MariaDB $version on 127.0.0.1:$MY_PORT (data in $MY_DIR)"
}

# shellcheck disable=SC2317  # reached through the EXIT trap
stop_mariadb() {
	[[ -n "$MY_PID" ]] || return 0
	kill -0 "$MY_PID" 2>/dev/null || return 0
	# SIGTERM is a clean, quick shutdown; give it a few seconds, then force.
	kill -TERM "$MY_PID" 2>/dev/null || true
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$MY_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$MY_PID" 2>/dev/null || true
	wait "$MY_PID" 2>/dev/null || true
}

# ---------------------------------------------------------------------------
# Main

missing=()
if postgres_missing; then missing+=(postgresql); fi
if mariadb_missing; then missing+=(mariadb-server mariadb-client); fi
if ((${#missing[@]})); then
	apt_install "${missing[@]}"
fi

# /tmp rather than $TMPDIR: the postgres and mysql users must be able to walk
# down to their directories, and a Unix socket path must stay under ~100 bytes.
WORK_DIR=$(mktemp -d /tmp/vaultstore-db.XXXXXX)
chmod 0755 "$WORK_DIR"

start_postgres
start_mariadb

# Not exec: the trap must still stop the servers when COMMAND finishes.
rc=0
"$@" || rc=$?
exit "$rc"
