package vaultstore

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// Password identities (NewStoreOptions.PasswordIdentityEnabled) record which
// password each record is under, so that a rotation visits only that
// password's records. In the meta table:
//
//	object_type        object_id          meta_key      meta_value
//	password_identity  p_<32 digits>      hash          $argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>
//	record             r_<record id>      password_id   p_<32 digits>
//
// The hash is a PHC string: the usual Argon2id password-hash encoding, with
// unpadded standard base64. Anyone who reads the meta table learns which
// records share a password, which the default mode does not reveal.

// phcB64 is the base64 of PHC strings.
var phcB64 = base64.RawStdEncoding

// identityHash is a parsed PHC string.
type identityHash struct {
	params argon2Params
	salt   []byte
	hash   []byte
}

func formatPHC(p argon2Params, salt, hash []byte) string {
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", p.MemoryKiB, p.Iterations, p.Parallelism, phcB64.EncodeToString(salt), phcB64.EncodeToString(hash))
}

// parsePHC reads an Argon2id PHC string, within the ceilings that bound v3
// headers: the meta table is as untrusted as the vault table.
func parsePHC(s string) (identityHash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v=19" {
		return identityHash{}, decryptionErrorf("password identity is not an Argon2id PHC string")
	}
	var p argon2Params
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil {
			return identityHash{}, decryptionErrorf("password identity has a malformed parameter")
		}
		switch k {
		case "m":
			p.MemoryKiB = uint32(n)
		case "t":
			p.Iterations = uint32(n)
		case "p":
			if n > 255 {
				return identityHash{}, decryptionErrorf("password identity parallelism %d is too large", n)
			}
			p.Parallelism = uint8(n)
		default:
			return identityHash{}, decryptionErrorf("password identity has an unknown parameter")
		}
	}
	salt, err1 := phcB64.DecodeString(parts[4])
	hash, err2 := phcB64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 16 || len(salt) > 64 || len(hash) < 16 || len(hash) > 64 {
		return identityHash{}, decryptionErrorf("password identity has a malformed salt or hash")
	}
	p.KeyLength = uint32(len(hash))
	if err := checkArgon2Bounds(p); err != nil {
		return identityHash{}, err
	}
	return identityHash{params: p, salt: salt, hash: hash}, nil
}

// identityMatches verifies password against an identity. It bypasses the
// key cache, whose entries serve values: identityFor remembers its answer,
// and a rotation checks each identity once.
func (s *Store) identityMatches(ctx context.Context, h identityHash, password string) (bool, error) {
	key, err := s.keys.deriveUncached(ctx, password, h.salt, h.params)
	if err != nil {
		return false, err
	}
	defer clear(key)
	return subtle.ConstantTimeCompare(key, h.hash) == 1, nil
}

// identitiesOf returns the ids of every identity that password opens.
// Normally there is one; concurrent first writers in different processes
// may have made two, and both are honoured.
func (s *Store) identitiesOf(ctx context.Context, password string) ([]string, error) {
	var rows []gormVaultMeta
	err := s.meta(ctx).
		Where(COLUMN_OBJECT_TYPE+" = ? AND "+COLUMN_META_KEY+" = ?", OBJECT_TYPE_PASSWORD_IDENTITY, META_KEY_HASH).
		Order(COLUMN_ID + " ASC").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("vaultstore: failed to read password identities: %w", err)
	}
	var ids []string
	for _, row := range rows {
		h, err := parsePHC(row.Value)
		if err != nil {
			continue // a damaged identity matches nothing
		}
		ok, err := s.identityMatches(ctx, h, password)
		if err != nil {
			return nil, err
		}
		if ok {
			ids = append(ids, row.ObjectID)
		}
	}
	return ids, nil
}

// identityFor returns the identity of password, creating it if there is
// none. Results are remembered per process under an HMAC of the password.
func (s *Store) identityFor(ctx context.Context, password string) (string, error) {
	fp := s.keys.fingerprint(password)
	if id, ok := s.identityIDs.Load(fp); ok {
		return id.(string), nil
	}
	if err := s.identityMu.lock(ctx); err != nil {
		return "", err
	}
	defer s.identityMu.unlock()
	if id, ok := s.identityIDs.Load(fp); ok {
		return id.(string), nil
	}
	if err := s.ensureMetaTable(ctx); err != nil {
		return "", err
	}
	ids, err := s.identitiesOf(ctx, password)
	if err != nil {
		return "", err
	}
	id := ""
	if len(ids) > 0 {
		id = ids[0]
	} else if id, err = s.createIdentity(ctx, password); err != nil {
		return "", err
	}
	s.identityIDs.Store(fp, id)
	return id, nil
}

func (s *Store) createIdentity(ctx context.Context, password string) (string, error) {
	suffix, err := newRecordID()
	if err != nil {
		return "", err
	}
	salt := make([]byte, 16)
	if _, err := io.ReadFull(randReader, salt); err != nil {
		return "", fmt.Errorf("vaultstore: failed to read random bytes: %w", err)
	}
	p := v3Params(&s.crypto)
	// Its salt is new, so the cache could never serve this hash again.
	hash, err := s.keys.deriveUncached(ctx, password, salt, p)
	if err != nil {
		return "", err
	}
	id := PASSWORD_ID_PREFIX + suffix
	row := gormVaultMeta{ObjectType: OBJECT_TYPE_PASSWORD_IDENTITY, ObjectID: id, Key: META_KEY_HASH, Value: formatPHC(p, salt, hash)}
	if err := s.meta(ctx).Create(&row).Error; err != nil {
		return "", fmt.Errorf("vaultstore: failed to store a password identity: %w", err)
	}
	return id, nil
}

// linkRecords points the records ids at identity, through db (which may be
// a transaction), in one upsert.
func (s *Store) linkRecords(db *gorm.DB, identity string, ids ...string) error {
	rows := make([]gormVaultMeta, len(ids))
	for i, id := range ids {
		rows[i] = gormVaultMeta{ObjectType: OBJECT_TYPE_RECORD, ObjectID: RECORD_META_ID_PREFIX + id, Key: META_KEY_PASSWORD_ID, Value: identity}
	}
	err := db.Table(s.metaTable).Clauses(metaOnConflict(true)).CreateInBatches(rows, 500).Error
	if err != nil {
		return fmt.Errorf("vaultstore: failed to link records to their password identity: %w", err)
	}
	return nil
}

// unlinkRecords removes the links of records that no longer exist.
func (s *Store) unlinkRecords(db *gorm.DB, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	objectIDs := make([]string, len(ids))
	for i, id := range ids {
		objectIDs[i] = RECORD_META_ID_PREFIX + id
	}
	err := db.Table(s.metaTable).
		Where(COLUMN_OBJECT_TYPE+" = ? AND "+COLUMN_META_KEY+" = ? AND "+COLUMN_OBJECT_ID+" IN ?", OBJECT_TYPE_RECORD, META_KEY_PASSWORD_ID, objectIDs).
		Delete(&gormVaultMeta{}).Error
	if err != nil {
		return fmt.Errorf("vaultstore: failed to remove password identity links: %w", err)
	}
	return nil
}

// pruneLinksBatch bounds the stale links pruneLinks reads per round.
const pruneLinksBatch = 1000

// pruneLinks removes the links of records that no longer exist, such as
// those TokensExpiredDelete has just removed in one statement. Each round
// finds the next pruneLinksBatch of them with a plain read, then deletes
// those, on SQLite and PostgreSQL only where their record is still absent.
//
// MySQL gets neither that re-check nor the default REPEATABLE READ. InnoDB
// takes shared locks on the vault rows a DELETE's subquery reads, after the
// link rows it has locked, while writers lock a vault row first and its
// link second: the two deadlock, as
// TestDatabasesExpiredDeleteWithConcurrentCreates showed. At READ COMMITTED
// the DELETE keeps no lock on the rows it scans and leaves; at REPEATABLE
// READ it would hold them, and the gaps between them, until it ends, in the
// way of every writer's link. Without the re-check, a link written between
// the two statements is lost only if a record was created again under a
// deleted record's id (RecordCreate with an explicit id) in that instant.
func (s *Store) pruneLinks(ctx context.Context) error {
	if !s.passwordIdentityEnabled {
		return nil
	}
	q := s.quoteIdent
	// The record id follows the "r_" prefix; SUBSTR counts from 1 in all
	// three dialects.
	orphan := fmt.Sprintf("NOT EXISTS (SELECT 1 FROM %s WHERE %s.%s = SUBSTR(%s.%s, %d))",
		q(s.vaultTable), q(s.vaultTable), q(COLUMN_ID), q(s.metaTable), q(COLUMN_OBJECT_ID), len(RECORD_META_ID_PREFIX)+1)
	links := func(db *gorm.DB) *gorm.DB {
		return db.Table(s.metaTable).
			Where(COLUMN_OBJECT_TYPE+" = ? AND "+COLUMN_META_KEY+" = ?", OBJECT_TYPE_RECORD, META_KEY_PASSWORD_ID)
	}
	db := s.db.WithContext(ctx)
	after := ""
	for {
		// Keyset pages, so that no round walks again over the live links
		// an earlier round has passed.
		var stale []string
		err := links(db).Where(COLUMN_OBJECT_ID+" > ?", after).Where(orphan).
			Order(COLUMN_OBJECT_ID+" ASC").Limit(pruneLinksBatch).Pluck(COLUMN_OBJECT_ID, &stale).Error
		if err != nil {
			return fmt.Errorf("vaultstore: failed to find password identity links of deleted records: %w", err)
		}
		if len(stale) == 0 {
			return nil
		}
		after = stale[len(stale)-1]
		if s.dialect == dialectMySQL {
			err = db.Transaction(func(tx *gorm.DB) error {
				return links(tx).Where(COLUMN_OBJECT_ID+" IN ?", stale).Delete(&gormVaultMeta{}).Error
			}, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
		} else {
			err = links(db).Where(COLUMN_OBJECT_ID+" IN ?", stale).Where(orphan).Delete(&gormVaultMeta{}).Error
		}
		if err != nil {
			return fmt.Errorf("vaultstore: failed to remove password identity links of deleted records: %w", err)
		}
		if len(stale) < pruneLinksBatch {
			return nil
		}
	}
}

// rotateByIdentity is TokensChangePassword over the records linked to the
// old password's identities. Each batch relinks the records it rewrote in
// the same transaction, so a re-run after a crash visits only the rest.
func (s *Store) rotateByIdentity(ctx context.Context, oldPassword, newPassword string, opts ChangePasswordOptions) (int, error) {
	if err := s.ensureMetaTable(ctx); err != nil {
		return 0, err
	}
	oldIDs, err := s.identitiesOf(ctx, oldPassword)
	if err != nil {
		return 0, err
	}
	if len(oldIDs) == 0 {
		return 0, fmt.Errorf("%w: no record is linked to this password", ErrInvalidPassword)
	}
	newID := ""
	if !opts.DryRun {
		if newID, err = s.identityFor(ctx, newPassword); err != nil {
			return 0, err
		}
	}
	links := func() *gorm.DB {
		return s.meta(ctx).Where(COLUMN_OBJECT_TYPE+" = ? AND "+COLUMN_META_KEY+" = ? AND "+COLUMN_META_VALUE+" IN ?", OBJECT_TYPE_RECORD, META_KEY_PASSWORD_ID, oldIDs)
	}
	var total int64
	if err := links().Count(&total).Error; err != nil {
		return 0, fmt.Errorf("vaultstore: failed to count linked records: %w", err)
	}
	r, err := s.newRotation(ctx, oldPassword, newPassword, opts, total)
	if err != nil {
		return 0, err
	}
	if !opts.DryRun {
		r.onCommit = func(tx *gorm.DB, ids []string) error { return s.linkRecords(tx, newID, ids...) }
	}
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return r.finish(err)
		}
		var page []gormVaultMeta
		q := links().Select(COLUMN_OBJECT_ID).Order(COLUMN_OBJECT_ID + " ASC").Limit(opts.BatchSize)
		if after != "" {
			q = q.Where(COLUMN_OBJECT_ID+" > ?", after)
		}
		if err := q.Find(&page).Error; err != nil {
			return r.finish(fmt.Errorf("vaultstore: failed to read linked records: %w", err))
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].ObjectID
		ids := make([]string, len(page))
		for i, l := range page {
			ids[i] = strings.TrimPrefix(l.ObjectID, RECORD_META_ID_PREFIX)
		}
		var rows []gormVaultRecord
		err := s.vault(ctx).Select(COLUMN_ID, COLUMN_VAULT_TOKEN, COLUMN_VAULT_VALUE).
			Where(COLUMN_ID+" IN ?", ids).Order(COLUMN_ID + " ASC").Find(&rows).Error
		if err != nil {
			return r.finish(fmt.Errorf("vaultstore: failed to read records to re-encrypt: %w", err))
		}
		if err := r.batch(ctx, rows); err != nil {
			return r.finish(err)
		}
		r.report()
	}
	// The old identity is kept, not deleted: a writer in another process
	// may still hold its id and link a new record to it, and a rotation
	// must then find that record. A retired password therefore still
	// matches its identity, and rotating from it again changes nothing.
	return r.finish(nil)
}
