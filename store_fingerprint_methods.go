package vaultstore

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// Fingerprints (NewStoreOptions.FingerprintEnabled) let a store find the
// tokens that hold a value, and deduplicate on create, without decrypting
// the vault. Each value written gets
//
//	key         = HKDF-Expand(HKDF-Extract(SHA-256, salt = "", ikm = KEK), "vaultstore fingerprint", 32)
//	fingerprint = base64url-unpadded(HMAC-SHA256(key, value))
//
// where KEK is the v3 key that the store writes the password's values
// under (the vault salt and the store's current Argon2id parameters, and
// the root with a KeyWrapper). The key is never stored, so the database
// alone cannot test a guess of a value, and the fingerprints of one value
// under two passwords are unrelated. In the meta table:
//
//	object_type       object_id        meta_key     meta_value
//	record            r_<record id>    fingerprint  <fingerprint>
//	fingerprint_lock  <fingerprint>    lock         ""              (inside a deduplicating create only)
//
// A fingerprint is only ever a hint: every match is decrypted and compared
// before it is returned, so a stale fingerprint (a value changed by a
// release, or a store, that does not write them) or a planted one never
// yields a wrong token.

// META_KEY_FINGERPRINT is the meta key of a record's fingerprint (object
// type OBJECT_TYPE_RECORD).
const META_KEY_FINGERPRINT = "fingerprint"

// OBJECT_TYPE_FINGERPRINT_LOCK is the object type of the rows that a
// deduplicating TokenCreate inserts, and deletes again, inside its
// transaction, so that concurrent creates of one value wait for each
// other. No such row is ever committed.
const OBJECT_TYPE_FINGERPRINT_LOCK = "fingerprint_lock"

// dedupAttempts bounds how often a deduplicating create runs its
// transaction again after the database aborted it (deadlock, busy). When
// many creates of one value wait for one lock, InnoDB resolves each round
// of waiters by aborting all but one, so the bound is generous, and the
// pause before another attempt is random (up to dedupMaxPause) to spread
// the waiters out.
const (
	dedupAttempts = 40
	dedupMaxPause = 40 * time.Millisecond
)

// fingerprintKey derives the HMAC key of fingerprints from a KEK.
func fingerprintKey(kek []byte) ([]byte, error) {
	prk, err := hkdf.Extract(sha256.New, kek, nil)
	if err != nil {
		return nil, fmt.Errorf("vaultstore: HKDF extract: %w", err)
	}
	defer clear(prk)
	key, err := hkdf.Expand(sha256.New, prk, labelFingerprint, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("vaultstore: HKDF expand: %w", err)
	}
	return key, nil
}

// fingerprintWith is the fingerprint of value under kek.
func fingerprintWith(kek []byte, value string) (string, error) {
	key, err := fingerprintKey(kek)
	if err != nil {
		return "", err
	}
	defer clear(key)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), nil
}

// fingerprintOf is the fingerprint of value under password, or "" when
// fingerprints are off. It makes sure the meta table, where fingerprints
// go, is ready.
func (s *Store) fingerprintOf(ctx context.Context, value, password string) (string, error) {
	if !s.fingerprintEnabled {
		return "", nil
	}
	kek, _, _, err := s.writeKEK(ctx, password)
	if err != nil {
		return "", err
	}
	defer clear(kek)
	if err := s.ensureMetaTable(ctx); err != nil {
		return "", err
	}
	return fingerprintWith(kek, value)
}

// writeFingerprints stores the fingerprints of records (id → fingerprint)
// through db, replacing older ones.
func (s *Store) writeFingerprints(db *gorm.DB, fingerprints map[string]string) error {
	if len(fingerprints) == 0 {
		return nil
	}
	rows := make([]gormVaultMeta, 0, len(fingerprints))
	for _, id := range slices.Sorted(maps.Keys(fingerprints)) {
		rows = append(rows, gormVaultMeta{ObjectType: OBJECT_TYPE_RECORD, ObjectID: recordObjectID(id), Key: META_KEY_FINGERPRINT, Value: fingerprints[id]})
	}
	if err := db.Table(s.metaTable).Clauses(metaOnConflict(true)).CreateInBatches(rows, 500).Error; err != nil {
		return fmt.Errorf("vaultstore: failed to store fingerprints: %w", err)
	}
	return nil
}

// fingerprintCandidates returns the readable (neither soft-deleted nor
// expired) records whose fingerprint is fp, through db, in token order.
func (s *Store) fingerprintCandidates(db *gorm.DB, fp string) ([]gormVaultRecord, error) {
	now := nowString()
	var rows []gormVaultRecord
	if err := db.Raw(s.fingerprintCandidatesSQL(), META_KEY_FINGERPRINT, fp, now, now).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("vaultstore: failed to find tokens by fingerprint: %w", err)
	}
	return rows, nil
}

// fingerprintCandidatesIfAny is fingerprintCandidates for a search that
// usually finds nothing, as a deduplicating create of a new value: a
// lookup in the meta table's index alone, a simpler statement than the
// join, decides whether the join is needed.
func (s *Store) fingerprintCandidatesIfAny(db *gorm.DB, fp string) ([]gormVaultRecord, error) {
	var ids []string
	err := db.Table(s.metaTable).Where(recordMetaRecord).
		Where(COLUMN_META_KEY+" = ? AND "+COLUMN_META_VALUE+" = ?", META_KEY_FINGERPRINT, fp).
		Limit(1).Pluck(COLUMN_OBJECT_ID, &ids).Error
	if err != nil {
		return nil, fmt.Errorf("vaultstore: failed to find tokens by fingerprint: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return s.fingerprintCandidates(db, fp)
}

// fingerprintCandidatesSQL is the search of fingerprintCandidates; its
// arguments are the meta key, the fingerprint and now twice. As in
// findByMetadataSQL, the meta table's lookup index leads.
func (s *Store) fingerprintCandidatesSQL() string {
	q := s.quoteIdent
	return fmt.Sprintf("SELECT v.%[1]s, v.%[2]s, v.%[3]s FROM %[4]s m JOIN %[5]s v ON v.%[1]s = SUBSTR(m.%[6]s, %[7]d)"+
		" WHERE m.%[8]s AND m.%[9]s = ? AND m.%[10]s = ? AND v.%[11]s > ? AND v.%[12]s > ? ORDER BY v.%[2]s",
		q(COLUMN_ID), q(COLUMN_VAULT_TOKEN), q(COLUMN_VAULT_VALUE), q(s.metaTable), q(s.vaultTable), q(COLUMN_OBJECT_ID), len(RECORD_META_ID_PREFIX)+1,
		recordMetaRecord, q(COLUMN_META_KEY), q(COLUMN_META_VALUE), q(COLUMN_SOFT_DELETED_AT), q(COLUMN_EXPIRES_AT))
}

// equalValues returns the tokens of rows whose value opens with password to
// exactly value. Rows that do not open (a planted or stale fingerprint, a
// damaged value) are left out; only a failure to try (a cancelled context)
// is an error.
func (s *Store) equalValues(ctx context.Context, rows []gormVaultRecord, value, password string) ([]string, error) {
	var tokens []string
	for _, r := range rows {
		plain, err := s.decrypt(ctx, r.Value, password, r.Token)
		switch {
		case err == nil:
		case errors.Is(err, ErrInvalidPassword), errors.Is(err, ErrDecryptionFailed), errors.Is(err, ErrKeyUnavailable):
			continue
		default:
			return nil, err
		}
		if len(plain) == len(value) && subtle.ConstantTimeCompare([]byte(plain), []byte(value)) == 1 {
			tokens = append(tokens, r.Token)
		}
	}
	return tokens, nil
}

// TokensFindByValue returns, in token order, the readable (neither
// soft-deleted nor expired) tokens whose value under password equals value.
// It needs NewStoreOptions.FingerprintEnabled (otherwise
// ErrValidationFailed): the value's fingerprint under password is looked
// up through the meta table's index, and each match is decrypted and
// compared before it is returned, so the cost grows with the number of
// equal values, not with the vault. An empty list means no such token.
//
// Values find each other only under one password and one fingerprint key:
// values written before fingerprints were on, by a store with another
// CryptoConfig, or through the Record* methods are not found until
// TokensChangePassword(ctx, password, password) has given them current
// fingerprints (docs/encryption.md).
func (s *Store) TokensFindByValue(ctx context.Context, value, password string) (tokens []string, err error) {
	ctx, op := s.observe(ctx, opTokensFindByValue)
	defer func() { op.setCount(int64(len(tokens))); op.end(&err) }()
	if !s.fingerprintEnabled {
		return nil, validationErrorf("TokensFindByValue needs NewStoreOptions.FingerprintEnabled")
	}
	if len(value) > MaxValueSize {
		return nil, validationErrorf("value is %d bytes, more than %d", len(value), MaxValueSize)
	}
	fp, err := s.fingerprintOf(ctx, value, password)
	if err != nil {
		return nil, err
	}
	rows, err := s.fingerprintCandidates(s.db.WithContext(ctx), fp)
	if err != nil {
		return nil, err
	}
	tokens, err = s.equalValues(ctx, rows, value, password)
	if err != nil {
		return nil, err
	}
	if tokens == nil {
		tokens = []string{}
	}
	return tokens, nil
}

// dedupPause, in nanoseconds, holds a deduplicating create between its
// search and its insert: tests widen the race window with it. Zero outside
// tests.
var dedupPause atomic.Int64

// errDedupFound ends a deduplicating create's transaction, unwritten, when
// an equal value exists.
var errDedupFound = errors.New("vaultstore: an equal value exists")

// insertDeduplicated is insertTokenWithExtras for a deduplicating create:
// in one transaction it takes the value's fingerprint lock (a meta row
// keyed by the fingerprint, which concurrent creates of the same value
// must wait for: the meta table's unique index makes them), looks for a
// readable token under the password with an equal value, and either
// returns that one (extras.found, nothing written) or inserts row with its
// extras and drops the lock. The lock row is inserted and deleted in the
// same transaction, so it is never committed and needs no cleaning up; on
// SQLite, where a write transaction excludes all others, it costs little.
// A transaction the database aborts (a deadlock between waiters on MySQL,
// a busy database on SQLite) runs again.
func (s *Store) insertDeduplicated(ctx context.Context, row *gormVaultRecord, identity string, extras *tokenExtras, password, value string) error {
	lock := gormVaultMeta{ObjectType: OBJECT_TYPE_FINGERPRINT_LOCK, ObjectID: extras.fingerprint, Key: "lock", Value: ""}
	for attempt := 0; ; attempt++ {
		var insertErr, lockErr error
		lock.ID = 0
		err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			// SQLite needs no lock row: it runs one write transaction at a
			// time, and a transaction that has read cannot start writing
			// once another has committed since its read (WAL:
			// SQLITE_BUSY_SNAPSHOT; rollback journal: SQLITE_BUSY while the
			// other holds its lock), so of two creates that both found
			// nothing, the second fails, runs again and finds the first.
			if s.dialect != dialectSQLite {
				if lockErr = tx.Table(s.metaTable).Create(&lock).Error; lockErr != nil {
					return lockErr
				}
			}
			rows, err := s.fingerprintCandidatesIfAny(tx, extras.fingerprint)
			if err != nil {
				return err
			}
			found, err := s.equalValues(ctx, rows, value, password)
			if err != nil {
				return err
			}
			if len(found) > 0 {
				extras.found = found[0]
				return errDedupFound
			}
			if d := dedupPause.Load(); d > 0 {
				time.Sleep(time.Duration(d))
			}
			if insertErr = s.insertRowAndExtras(tx, row, identity, extras); insertErr != nil {
				return insertErr
			}
			if s.dialect == dialectSQLite {
				return nil
			}
			return tx.Table(s.metaTable).Where(COLUMN_ID+" = ?", lock.ID).Delete(&gormVaultMeta{}).Error
		})
		switch {
		case errors.Is(err, errDedupFound):
			return nil
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case lockErr != nil && isUniqueViolation(lockErr) && attempt < dedupAttempts:
			// A committed lock: no create leaves one, so it was planted or
			// copied in with a backup. Remove it and try again.
			err := s.meta(ctx).Where(COLUMN_OBJECT_TYPE+" = ? AND "+COLUMN_OBJECT_ID+" = ?", OBJECT_TYPE_FINGERPRINT_LOCK, extras.fingerprint).
				Delete(&gormVaultMeta{}).Error
			if err != nil {
				return fmt.Errorf("vaultstore: failed to remove a stale fingerprint lock: %w", err)
			}
			continue
		case isRetryableTxError(err) && attempt < dedupAttempts && !s.bound:
			// (A bound store runs inside a transaction it does not own: an
			// aborted one is the caller's, or auditedWrite's, to run again.)
			extras.found = ""
			// Waiters that deadlocked would all restart at once; a
			// random, growing pause lets them through one by one.
			ceiling := min(time.Duration(1<<min(attempt, 10))*time.Millisecond, dedupMaxPause)
			time.Sleep(time.Duration(rand.Int64N(int64(ceiling) + 1)))
			continue
		case insertErr != nil:
			return s.classifyInsertError(ctx, row, insertErr)
		case lockErr != nil:
			// MySQL names the duplicate key, a fingerprint, in its message:
			// keep the driver's text out.
			return errors.New("vaultstore: failed to take the fingerprint lock of a deduplicating create")
		default:
			return fmt.Errorf("vaultstore: failed to create a deduplicated token: %w", err)
		}
	}
}

// checkFingerprints sets, for each item of a rotation, whether its stored
// fingerprint is current: present, and equal to the fingerprint of its
// value under the rotation's password. A same-password rotation leaves a
// value that is already current alone only if it is; so
// TokensChangePassword(pw, pw) gives fingerprints to values written before
// FingerprintEnabled, and replaces stale ones. Without fingerprints, or in
// a rotation to another password (which rewrites every value it opens
// anyway), every item counts as fingerprinted.
func (r *rotation) checkFingerprints(ctx context.Context, items []rekeyItem) error {
	if !r.s.fingerprintEnabled || r.current == nil {
		for i := range items {
			items[i].fingerprinted = true
		}
		return nil
	}
	if err := r.s.ensureMetaTable(ctx); err != nil {
		return err
	}
	var objectIDs []string
	for i := range items {
		items[i].fingerprinted = false
		if r.current(items[i].value) {
			objectIDs = append(objectIDs, recordObjectID(items[i].id))
		}
	}
	if len(objectIDs) == 0 {
		return nil
	}
	var rows []gormVaultMeta
	err := r.s.meta(ctx).Select(COLUMN_OBJECT_ID, COLUMN_META_VALUE).
		Where(recordMetaRecord).
		Where(COLUMN_META_KEY+" = ? AND "+COLUMN_OBJECT_ID+" IN ?", META_KEY_FINGERPRINT, objectIDs).
		Find(&rows).Error
	if err != nil {
		return fmt.Errorf("vaultstore: failed to read fingerprints: %w", err)
	}
	stored := make(map[string]string, len(rows))
	for _, row := range rows {
		stored[row.ObjectID] = row.Value
	}
	kek, _, _, err := r.s.writeKEK(ctx, r.new)
	if err != nil {
		return err
	}
	defer clear(kek)
	for i := range items {
		it := &items[i]
		fp, ok := stored[recordObjectID(it.id)]
		if !ok {
			continue
		}
		plain, err := r.s.decryptOnce(ctx, it.value, r.old, it.token)
		if err != nil {
			continue // examineEach decides what it is
		}
		want, err := fingerprintWith(kek, plain)
		if err != nil {
			return err
		}
		it.fingerprinted = subtle.ConstantTimeCompare([]byte(fp), []byte(want)) == 1
	}
	return nil
}

// rotatedFingerprints maps the ids of items that a rotation rewrote to
// their new fingerprints.
func rotatedFingerprints(items []rekeyItem) map[string]string {
	var out map[string]string
	for _, it := range items {
		if it.fingerprint == "" {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(items))
		}
		out[it.id] = it.fingerprint
	}
	return out
}
