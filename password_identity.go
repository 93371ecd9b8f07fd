package vaultstore

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// Password identities (NewStoreOptions.PasswordIdentityEnabled) record which
// password each record is under, so that a rotation visits only that
// password's records. In the meta table:
//
//	object_type        object_id          meta_key      meta_value
//	password_identity  p_<32 digits>      hash          $vaultstore-identity$v=2$m=…,t=…,p=…[,k=2]$<salt>$<verifier>
//	record             r_<record id>      password_id   p_<32 digits>
//
// The verifier never is a key: it is
//
//	K        = Argon2id(password, salt, t, m, p, 32), mixed with the vault's root key when k=2 (mixRoot)
//	verifier = HKDF-Expand(HKDF-Extract(SHA-256, salt = "", ikm = K), "vaultstore identity verifier", 32)
//
// New identities take the vault salt and the store's parameters, so K is
// the password's v3 KEK, usually already in the key cache, and finding a
// password's identity costs at most one Argon2id per distinct salt and
// parameter set, however many identities there are. The label keeps the
// verifier apart from every key and commitment the codec uses.
//
// Releases before this one stored the Argon2id output itself, as a PHC
// string ("$argon2id$v=19$…"): that is a working v3 KEK for anyone who
// reads the meta table. Such an identity is checked the old way once, when
// its password is next looked up, and rewritten in place, under the same id
// so that its links stay valid.
//
// Anyone who reads the meta table learns which records share a password,
// which the default mode does not reveal.

// Stored identity forms.
const (
	identityPrefixV2     = "$vaultstore-identity$v=2$"
	identityPrefixLegacy = "$argon2id$v=19$"
)

// Identity lookups are bounded whatever the meta table holds: at most
// maxIdentityParamSets derivations for current identities and
// maxLegacyIdentities for legacy ones. A store only ever writes identities
// under the vault salt and its own parameters, so the first bound is met
// unless the configuration changed that many times.
const (
	maxIdentityParamSets = 16
	maxLegacyIdentities  = 256
)

// maxRememberedIdentities bounds the process's memory of which identity
// each password has.
const maxRememberedIdentities = 1024

// phcB64 is the base64 of PHC strings.
var phcB64 = base64.RawStdEncoding

// storedIdentity is a parsed identity.
type storedIdentity struct {
	legacy bool // hash is the Argon2id output itself
	params argon2Params
	salt   []byte
	hash   []byte // the verifier, or the legacy Argon2id output
}

func formatIdentity(p argon2Params, salt, verifier []byte) string {
	kdf := ""
	if p.Root {
		kdf = fmt.Sprintf(",k=%d", v3KDFRooted)
	}
	return fmt.Sprintf("%sm=%d,t=%d,p=%d%s$%s$%s", identityPrefixV2, p.MemoryKiB, p.Iterations, p.Parallelism, kdf, phcB64.EncodeToString(salt), phcB64.EncodeToString(verifier))
}

// parseIdentity reads either stored form, within the ceilings that bound v3
// headers: the meta table is as untrusted as the vault table. The store's
// floor and budget are checked by the caller.
func parseIdentity(s string) (storedIdentity, error) {
	var id storedIdentity
	var rest string
	switch {
	case strings.HasPrefix(s, identityPrefixV2):
		rest = s[len(identityPrefixV2):]
	case strings.HasPrefix(s, identityPrefixLegacy):
		rest, id.legacy = s[len(identityPrefixLegacy):], true
	default:
		return storedIdentity{}, decryptionErrorf("password identity is in no known form")
	}
	parts := strings.Split(rest, "$")
	if len(parts) != 3 {
		return storedIdentity{}, decryptionErrorf("password identity does not have parameters, salt and hash")
	}
	var seen [4]bool
	for _, kv := range strings.Split(parts[0], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || (len(v) > 1 && v[0] == '0') {
			return storedIdentity{}, decryptionErrorf("password identity has a malformed parameter")
		}
		var i int
		switch k {
		case "m":
			i, id.params.MemoryKiB = 0, uint32(n)
		case "t":
			i, id.params.Iterations = 1, uint32(n)
		case "p":
			if n > 255 {
				return storedIdentity{}, decryptionErrorf("password identity parallelism %d is too large", n)
			}
			i, id.params.Parallelism = 2, uint8(n)
		case "k":
			// The KDF, as in a v3 header: 2 mixes in the vault's root key.
			if id.legacy || n != v3KDFRooted {
				return storedIdentity{}, decryptionErrorf("password identity names an unknown KDF")
			}
			i, id.params.Root = 3, true
		default:
			return storedIdentity{}, decryptionErrorf("password identity has an unknown parameter")
		}
		if seen[i] {
			return storedIdentity{}, decryptionErrorf("password identity repeats a parameter")
		}
		seen[i] = true
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return storedIdentity{}, decryptionErrorf("password identity lacks a parameter")
	}
	salt, err1 := phcB64.DecodeString(parts[1])
	hash, err2 := phcB64.DecodeString(parts[2])
	if err1 != nil || err2 != nil || len(salt) < 16 || len(salt) > 64 {
		return storedIdentity{}, decryptionErrorf("password identity has a malformed salt or hash")
	}
	switch {
	case !id.legacy && len(hash) != identityVerifierLen:
		return storedIdentity{}, decryptionErrorf("password identity verifier is %d bytes, not %d", len(hash), identityVerifierLen)
	case id.legacy && (len(hash) < 16 || len(hash) > 64):
		return storedIdentity{}, decryptionErrorf("password identity hash is %d bytes, outside 16..64", len(hash))
	}
	id.params.KeyLength = v3KeyLen
	if id.legacy {
		id.params.KeyLength = uint32(len(hash))
	}
	if err := checkArgon2Bounds(id.params); err != nil {
		return storedIdentity{}, err
	}
	id.salt, id.hash = salt, hash
	return id, nil
}

// identityVerifierLen is the length of a verifier.
const identityVerifierLen = 32

// identityVerifier derives the stored verifier from K, the Argon2id output
// of the password under the identity's salt and parameters.
func identityVerifier(k []byte) ([]byte, error) {
	prk, err := hkdf.Extract(sha256.New, k, nil)
	if err != nil {
		return nil, fmt.Errorf("vaultstore: HKDF extract: %w", err)
	}
	defer clear(prk)
	v, err := hkdf.Expand(sha256.New, prk, labelIdentityVerifier, identityVerifierLen)
	if err != nil {
		return nil, fmt.Errorf("vaultstore: HKDF expand: %w", err)
	}
	return v, nil
}

// identityRow is an identity as read from the meta table.
type identityRow struct {
	rowID    uint64
	objectID string
	stored   string
	identity storedIdentity
}

// identitiesOf returns the ids of every identity that password opens.
// Normally there is one; concurrent first writers in different processes
// may have made two, and both are honoured. Identities that do not parse,
// or ask for parameters the store's read policy refuses, match nothing.
// Unless dryRun, a legacy identity that matches is rewritten in the
// current form.
func (s *Store) identitiesOf(ctx context.Context, password string, dryRun bool) ([]string, error) {
	var rows []gormVaultMeta
	err := s.meta(ctx).
		Where(COLUMN_OBJECT_TYPE+" = ? AND "+COLUMN_META_KEY+" = ?", OBJECT_TYPE_PASSWORD_IDENTITY, META_KEY_HASH).
		Order(COLUMN_ID + " ASC").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("vaultstore: failed to read password identities: %w", err)
	}
	// Current identities, grouped by what their K is derived from.
	type group struct {
		params argon2Params
		salt   []byte
		rows   []identityRow
	}
	var groups []*group
	var legacy []identityRow
	for _, row := range rows {
		id, err := parseIdentity(row.Value)
		if err != nil || s.read.admit(id.params) != nil {
			continue
		}
		r := identityRow{rowID: row.ID, objectID: row.ObjectID, stored: row.Value, identity: id}
		if id.legacy {
			legacy = append(legacy, r)
			continue
		}
		i := slices.IndexFunc(groups, func(g *group) bool { return g.params == id.params && bytes.Equal(g.salt, id.salt) })
		if i < 0 {
			if len(groups) == maxIdentityParamSets {
				return nil, decryptionErrorf("password identities use more than %d salts and parameter sets", maxIdentityParamSets)
			}
			groups = append(groups, &group{params: id.params, salt: id.salt})
			i = len(groups) - 1
		}
		groups[i].rows = append(groups[i].rows, r)
	}
	if len(legacy) > maxLegacyIdentities {
		return nil, decryptionErrorf("the meta table holds %d legacy password identities, more than the %d checked", len(legacy), maxLegacyIdentities)
	}

	var ids []string
	keys := cachedKeys{ctx, s.keys, s}
	for _, g := range groups {
		k, fresh, err := keys.key(password, g.salt, g.params)
		if errors.Is(err, ErrKeyUnavailable) {
			continue // bound to a root this store cannot have: matches nothing
		}
		if err != nil {
			return nil, err
		}
		verifier, err := identityVerifier(k)
		if err != nil {
			clear(k)
			return nil, err
		}
		var matched []identityRow
		for _, r := range g.rows {
			if subtle.ConstantTimeCompare(verifier, r.identity.hash) == 1 {
				ids, matched = append(ids, r.objectID), append(matched, r)
			}
		}
		if len(matched) > 0 && fresh {
			s.keys.remember(password, g.salt, g.params, k)
		}
		clear(k)
		// An identity made before the vault had a KMS root is an offline
		// test of the password without the KMS: bind it to the root now,
		// in place, as a legacy one is upgraded.
		if !dryRun && !g.params.Root && s.bindsRoot() {
			for _, r := range matched {
				if err := s.upgradeIdentity(ctx, r, password); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, r := range legacy {
		h, err := s.keys.run(ctx, password, r.identity.salt, r.identity.params)
		if err != nil {
			return nil, err
		}
		ok := subtle.ConstantTimeCompare(h, r.identity.hash) == 1
		clear(h)
		if !ok {
			continue
		}
		ids = append(ids, r.objectID)
		if !dryRun {
			if err := s.upgradeIdentity(ctx, r, password); err != nil {
				return nil, err
			}
		}
	}
	return ids, nil
}

// newIdentityValue is the stored form of password's identity as this store
// writes it: under the vault salt and the store's parameters, so that its K
// is the KEK that writes the password's values.
func (s *Store) newIdentityValue(ctx context.Context, password string) (string, error) {
	k, salt, p, err := s.writeKEK(ctx, password)
	if err != nil {
		return "", err
	}
	defer clear(k)
	verifier, err := identityVerifier(k)
	if err != nil {
		return "", err
	}
	return formatIdentity(p, salt, verifier), nil
}

// upgradeIdentity rewrites a legacy identity that password matched in the
// current form, in place, only if it still holds what was read.
func (s *Store) upgradeIdentity(ctx context.Context, r identityRow, password string) error {
	value, err := s.newIdentityValue(ctx, password)
	if err != nil {
		return err
	}
	err = s.meta(ctx).Where(COLUMN_ID+" = ? AND "+COLUMN_META_VALUE+" = ?", r.rowID, r.stored).
		Update(COLUMN_META_VALUE, value).Error
	if err != nil {
		return fmt.Errorf("vaultstore: failed to upgrade a password identity: %w", err)
	}
	s.tel.info(ctx, "vaultstore: password identity upgraded to a verifier", slog.String(attrOp, "identity upgrade"), slog.String("identity", r.objectID))
	return nil
}

// identityFor returns the identity of password, creating it if there is
// none. Results are remembered per process under an HMAC of the password.
func (s *Store) identityFor(ctx context.Context, password string) (string, error) {
	fp := s.keys.fingerprint(password)
	keep := func(id string) string { return id }
	if id, ok := s.shared.identityIDs.get(fp, keep); ok {
		return id, nil
	}
	unlock, err := s.lockShared(ctx, &s.shared.identityMu)
	if err != nil {
		return "", err
	}
	defer unlock()
	if id, ok := s.shared.identityIDs.get(fp, keep); ok {
		return id, nil
	}
	if err := s.ensureMetaTable(ctx); err != nil {
		return "", err
	}
	ids, err := s.identitiesOf(ctx, password, false)
	if err != nil {
		return "", err
	}
	id := ""
	if len(ids) > 0 {
		id = ids[0]
	} else if id, err = s.createIdentity(ctx, password); err != nil {
		return "", err
	}
	if !s.bound {
		// An identity made in the caller's transaction may be rolled back.
		s.shared.identityIDs.add(fp, id)
	}
	return id, nil
}

// forgetPassword drops what the process keeps of password: its keys and
// its identity id.
func (s *Store) forgetPassword(password string) {
	s.keys.forget(password)
	fp := s.keys.fingerprint(password)
	s.shared.identityIDs.removeIf(func(k [32]byte) bool { return k == fp })
}

func (s *Store) createIdentity(ctx context.Context, password string) (string, error) {
	suffix, err := newRecordID()
	if err != nil {
		return "", err
	}
	value, err := s.newIdentityValue(ctx, password)
	if err != nil {
		return "", err
	}
	id := PASSWORD_ID_PREFIX + suffix
	row := gormVaultMeta{ObjectType: OBJECT_TYPE_PASSWORD_IDENTITY, ObjectID: id, Key: META_KEY_HASH, Value: value}
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

// unlinkRecords removes the meta rows of records that no longer exist:
// password identity links, metadata and fingerprints.
func (s *Store) unlinkRecords(db *gorm.DB, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	objectIDs := make([]string, len(ids))
	for i, id := range ids {
		objectIDs[i] = RECORD_META_ID_PREFIX + id
	}
	err := db.Table(s.metaTable).
		Where(COLUMN_OBJECT_TYPE+" = ? AND "+COLUMN_OBJECT_ID+" IN ?", OBJECT_TYPE_RECORD, objectIDs).
		Delete(&gormVaultMeta{}).Error
	if err != nil {
		return fmt.Errorf("vaultstore: failed to remove the meta rows of deleted records: %w", err)
	}
	return nil
}

// pruneLinksBatch bounds the stale links pruneLinks reads per round.
const pruneLinksBatch = 1000

// pruneLinks removes the meta rows of records that no longer exist
// (password identity links, metadata, fingerprints: every row of object
// type record), such as those TokensExpiredDelete has just removed in one
// statement. Each round
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
	if err := s.ensureMetaTable(ctx); err != nil {
		return err
	}
	q := s.quoteIdent
	// The record id follows the "r_" prefix; SUBSTR counts from 1 in all
	// three dialects.
	orphan := fmt.Sprintf("NOT EXISTS (SELECT 1 FROM %s WHERE %s.%s = SUBSTR(%s.%s, %d))",
		q(s.vaultTable), q(s.vaultTable), q(COLUMN_ID), q(s.metaTable), q(COLUMN_OBJECT_ID), len(RECORD_META_ID_PREFIX)+1)
	links := func(db *gorm.DB) *gorm.DB {
		return db.Table(s.metaTable).Where(COLUMN_OBJECT_TYPE+" = ?", OBJECT_TYPE_RECORD)
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
			return fmt.Errorf("vaultstore: failed to find meta rows of deleted records: %w", err)
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
			return fmt.Errorf("vaultstore: failed to remove meta rows of deleted records: %w", err)
		}
		if len(stale) < pruneLinksBatch {
			return nil
		}
	}
}

// rotateByIdentity is TokensChangePassword over the records linked to the
// old password's identities. Each batch relinks the records it rewrote in
// the same transaction, so a re-run after a crash visits only the rest.
func (s *Store) rotateByIdentity(ctx context.Context, oldPassword, newPassword string, opts ChangePasswordOptions) (ChangePasswordProgress, error) {
	var none ChangePasswordProgress
	if err := s.ensureMetaTable(ctx); err != nil {
		return none, err
	}
	oldIDs, err := s.identitiesOf(ctx, oldPassword, opts.DryRun)
	if err != nil {
		return none, err
	}
	if len(oldIDs) == 0 {
		return none, fmt.Errorf("%w: no record is linked to this password", ErrInvalidPassword)
	}
	newID := ""
	if !opts.DryRun {
		if newID, err = s.identityFor(ctx, newPassword); err != nil {
			return none, err
		}
	}
	links := func() *gorm.DB {
		return s.meta(ctx).Where(COLUMN_OBJECT_TYPE+" = ? AND "+COLUMN_META_KEY+" = ? AND "+COLUMN_META_VALUE+" IN ?", OBJECT_TYPE_RECORD, META_KEY_PASSWORD_ID, oldIDs)
	}
	var total int64
	if err := links().Count(&total).Error; err != nil {
		return none, fmt.Errorf("vaultstore: failed to count linked records: %w", err)
	}
	r, err := s.newRotation(ctx, oldPassword, newPassword, opts, total)
	if err != nil {
		return none, err
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
