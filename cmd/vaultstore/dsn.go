package main

import (
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"

	_ "github.com/glebarez/sqlite" // registers "sqlite"
	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
)

// acceptedDSNs names the forms --db accepts, for error messages.
const acceptedDSNs = "sqlite:PATH, a bare PATH, postgres://user:pass@host:port/db?params, postgresql://..., or mysql://user:pass@host:port/db?params"

// dbTarget is a parsed --db: the dialect, the driver and its DSN, and the
// database password (to be kept out of messages).
type dbTarget struct {
	dialect  string // "sqlite", "postgres" or "mysql"
	driver   string // the database/sql driver name
	dsn      string // the driver's DSN
	path     string // SQLite only
	password string
}

// schemeRE matches a URL scheme or a "name:" prefix that is not a bare path.
var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)

// parseDSN reads --db. It never quotes the DSN in an error: it may hold a
// database password.
func parseDSN(s string) (dbTarget, error) {
	switch {
	case s == "":
		return dbTarget{}, usagef("no database: give --db or set %s (%s)", envDB, acceptedDSNs)
	case strings.HasPrefix(s, "sqlite:"):
		path := strings.TrimPrefix(s, "sqlite:")
		if path == "" {
			return dbTarget{}, usagef("--db sqlite: needs a path")
		}
		return dbTarget{dialect: "sqlite", driver: "sqlite", path: path}, nil
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return dbTarget{}, usagef("--db: not a valid postgres:// URL (want postgres://user:pass@host:port/db?params)")
		}
		pw, _ := u.User.Password()
		return dbTarget{dialect: "postgres", driver: "pgx", dsn: s, password: pw}, nil
	case strings.HasPrefix(s, "mysql://"):
		dsn, pw, err := mysqlDriverDSN(s)
		if err != nil {
			return dbTarget{}, err
		}
		return dbTarget{dialect: "mysql", driver: "mysql", dsn: dsn, password: pw}, nil
	case schemeRE.MatchString(s) && !isWindowsDrive(s):
		return dbTarget{}, usagef("--db: unsupported database; accepted forms: %s", acceptedDSNs)
	default:
		return dbTarget{dialect: "sqlite", driver: "sqlite", path: s}, nil
	}
}

func isWindowsDrive(s string) bool {
	return len(s) >= 3 && s[1] == ':' && (s[2] == '\\' || s[2] == '/')
}

// mysqlDriverDSN translates mysql://user:pass@host:port/db?params into the
// go-sql-driver/mysql form user:pass@tcp(host:port)/db?params, with
// parseTime=true unless the URL sets it (the library reads both).
func mysqlDriverDSN(s string) (dsn, password string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", "", usagef("--db: not a valid mysql:// URL (want mysql://user:pass@host:port/db?params)")
	}
	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net = "tcp"
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "3306"
	}
	cfg.Addr = net.JoinHostPort(host, port)
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" || strings.Contains(cfg.DBName, "/") {
		return "", "", usagef("--db: the mysql:// URL must name one database (mysql://user:pass@host:port/db)")
	}
	q := u.Query()
	if !q.Has("parseTime") {
		q.Set("parseTime", "true")
	}
	dsn = cfg.FormatDSN()
	if strings.Contains(dsn, "?") {
		dsn += "&" + q.Encode()
	} else {
		dsn += "?" + q.Encode()
	}
	if _, err := mysql.ParseDSN(dsn); err != nil {
		// The driver's message names the parameter, never the password;
		// scrub would catch it anyway.
		return "", "", usageError{fmt.Errorf("--db: the mysql:// URL's parameters are not valid: %w", err)}
	}
	return dsn, cfg.Passwd, nil
}

// open opens the database. SQLite files are opened read-write and must
// exist unless create is set; a busy timeout lets the command wait for an
// application that is writing. The journal mode is left as the file has it.
func (t dbTarget) open(create bool) (*sql.DB, error) {
	dsn := t.dsn
	if t.dialect == "sqlite" {
		mode := "rw"
		if create {
			mode = "rwc"
		} else if _, err := os.Stat(t.path); err != nil {
			// The driver would say "out of memory" for a missing file.
			return nil, fmt.Errorf("no SQLite database at %s (vaultstore migrate creates one): %w", t.path, errors.Unwrap(err))
		}
		escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(t.path)
		dsn = "file:" + escaped + "?mode=" + mode + "&_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(t.driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("cannot open the %s database: %w", t.dialect, err)
	}
	return db, nil
}
