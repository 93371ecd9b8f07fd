package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// tokenCreateAttempts bounds the retries when a generated token collides
// with a stored one. With at least 12 random base32 characters (60 bits) a
// second collision in a row means something other than chance is wrong.
const tokenCreateAttempts = 8

// concurrentWriteAttempts bounds how often a write that lost a race with
// another client re-reads the row and tries again.
const concurrentWriteAttempts = 4

// upsertTokenLength is the length of tokens TokenUpsert creates.
const upsertTokenLength = 20

// tokensReadChunk bounds the tokens bound in one IN list, well under the
// parameter limits of every supported database.
const tokensReadChunk = 1000

// TokenCreate encrypts value with password and stores it under a new random
// token of tokenLength characters (TOKEN_MIN_TOTAL_LENGTH to
// TOKEN_MAX_TOTAL_LENGTH, "tk_" included), which it returns.
//
// The password must meet the store's policy (ErrPasswordInvalid); a bad
// length, an over-long value or more than one options value is
// ErrValidationFailed.
func (s *Store) TokenCreate(ctx context.Context, value, password string, tokenLength int, options ...TokenCreateOptions) (token string, err error) {
	ctx, op := s.observe(ctx, opTokenCreate)
	op.tokenOut = &token
	defer op.end(&err)
	if s.auditTx() {
		err = s.auditedWrite(ctx, op, true, func(b *Store) (err error) {
			token, err = b.TokenCreate(ctx, value, password, tokenLength, options...)
			return err
		})
		return token, err
	}
	if tokenLength < TOKEN_MIN_TOTAL_LENGTH || tokenLength > TOKEN_MAX_TOTAL_LENGTH {
		return "", validationErrorf("token length %d is outside %d..%d", tokenLength, TOKEN_MIN_TOTAL_LENGTH, TOKEN_MAX_TOTAL_LENGTH)
	}
	expires, err := s.checkWrite(value, password, options)
	if err != nil {
		return "", err
	}
	extras, err := s.tokenExtrasFor(ctx, value, password, options, false)
	if err != nil {
		return "", err
	}
	for range tokenCreateAttempts {
		token, err := newToken(tokenLength)
		if err != nil {
			return "", err
		}
		err = s.createTokenWith(ctx, token, value, password, expires, extras)
		if errors.Is(err, ErrTokenAlreadyExists) {
			continue
		}
		if err != nil {
			return "", err
		}
		return extras.tokenOr(token), nil
	}
	return "", fmt.Errorf("vaultstore: failed to create a unique token in %d attempts: %w", tokenCreateAttempts, ErrTokenAlreadyExists)
}

// TokenCreateCustom encrypts value with password and stores it under token,
// chosen by the caller (at most TOKEN_MAX_TOTAL_LENGTH bytes, no whitespace
// or control characters). A token already stored, soft-deleted or not, is
// ErrTokenAlreadyExists, also when a concurrent call stores it first.
func (s *Store) TokenCreateCustom(ctx context.Context, token, value, password string, options ...TokenCreateOptions) (err error) {
	ctx, op := s.observe(ctx, opTokenCreateCustom, token)
	defer op.end(&err)
	if s.auditTx() {
		return s.auditedWrite(ctx, op, true, func(b *Store) error { return b.TokenCreateCustom(ctx, token, value, password, options...) })
	}
	if err := validateTokenInput(token); err != nil {
		return err
	}
	expires, err := s.checkWrite(value, password, options)
	if err != nil {
		return err
	}
	extras, err := s.tokenExtrasFor(ctx, value, password, options, true)
	if err != nil {
		return err
	}
	// Checking first spares the encryption when the token is taken, which
	// costs a key derivation for a v2 value or a password not yet cached;
	// the unique index still decides a race.
	var n int64
	if err := s.vault(ctx).Where(COLUMN_VAULT_TOKEN+" = ?", token).Count(&n).Error; err != nil {
		return fmt.Errorf("vaultstore: failed to look up token: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("%w: %q", ErrTokenAlreadyExists, token)
	}
	if err := s.at(hookCreateCustomInsert, 0); err != nil {
		return err
	}
	return s.createTokenWith(ctx, token, value, password, expires, extras)
}

// checkWrite validates what every token write takes and returns the expiry.
func (s *Store) checkWrite(value, password string, options []TokenCreateOptions) (string, error) {
	if len(value) > MaxValueSize {
		return "", validationErrorf("value is %d bytes, more than %d", len(value), MaxValueSize)
	}
	if len(options) > 1 {
		return "", validationErrorf("at most one TokenCreateOptions may be given, got %d", len(options))
	}
	if err := s.policy.check(password); err != nil {
		return "", err
	}
	if len(options) == 1 {
		return expiryTimestamp(options[0].ExpiresAt)
	}
	return MAX_DATETIME, nil
}

func (s *Store) createToken(ctx context.Context, token, value, password, expires string) error {
	return s.createTokenWith(ctx, token, value, password, expires, nil)
}

// createTokenWith is createToken storing extras (metadata, fingerprint) in
// the same transaction as the row.
func (s *Store) createTokenWith(ctx context.Context, token, value, password, expires string, extras *tokenExtras) error {
	// The identity comes first: finding it upgrades a legacy identity of
	// this password, whose stored hash is a working key, before anything
	// is written under the vault salt.
	identity := ""
	if s.passwordIdentityEnabled {
		var err error
		if identity, err = s.identityFor(ctx, password); err != nil {
			return err
		}
	}
	stored, err := s.encrypt(ctx, value, password, token)
	if err != nil {
		return err
	}
	id, err := newRecordID()
	if err != nil {
		return err
	}
	now := dbTimestamp(nowString())
	row := gormVaultRecord{
		ID:          id,
		Token:       token,
		Value:       stored,
		Created:     now,
		Updated:     now,
		Expires:     dbTimestamp(expires),
		SoftDeleted: MAX_DATETIME,
	}
	if extras.needTx() {
		return s.insertTokenWithExtras(ctx, &row, identity, extras)
	}
	if !s.passwordIdentityEnabled {
		return s.insertRecord(ctx, &row)
	}
	var insertErr error
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if insertErr = tx.Table(s.vaultTable).Create(&row).Error; insertErr != nil {
			return insertErr
		}
		return s.linkRecords(tx, identity, row.ID)
	})
	if insertErr != nil {
		return s.classifyInsertError(ctx, &row, insertErr)
	}
	return err
}

// liveRow loads the row of token unless it is absent or soft-deleted
// (ErrRecordNotFound).
func (s *Store) liveRow(ctx context.Context, token string) (*gormVaultRecord, error) {
	if err := validateTokenInput(token); err != nil {
		return nil, err
	}
	var rows []gormVaultRecord
	err := s.vault(ctx).
		Where(COLUMN_VAULT_TOKEN+" = ?", token).
		Where(COLUMN_SOFT_DELETED_AT+" > ?", nowString()).
		Limit(1).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("vaultstore: failed to read token: %w", err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: token %q", ErrRecordNotFound, token)
	}
	return &rows[0], nil
}

// isExpired compares in the stored layout, which orders like time.
func isExpired(expires dbTimestamp, now string) bool {
	return expires != "" && string(expires) <= now
}

// TokenRead returns the value stored under token, decrypted with password.
// An absent or soft-deleted token is ErrRecordNotFound; an expired one is
// ErrTokenExpired, and is not decrypted. A password that does not open the
// value is ErrInvalidPassword; a damaged value is ErrDecryptionFailed. The
// password policy is not applied, so values written under an older policy
// stay readable.
func (s *Store) TokenRead(ctx context.Context, token, password string) (value string, err error) {
	ctx, op := s.observe(ctx, opTokenRead, token)
	defer endRead(op, &value, &err)
	if err := validateTokenInput(token); err != nil {
		return "", err
	}
	now := nowString()
	stored, expires, err := s.readLiveValue(ctx, token, now)
	if err != nil {
		return "", err
	}
	if isExpired(expires, now) {
		return "", fmt.Errorf("%w: token %q", ErrTokenExpired, token)
	}
	value, err = s.decrypt(ctx, stored, password, token)
	if err != nil {
		return "", fmt.Errorf("token %q: %w", token, err)
	}
	return value, nil
}

// TokenUpdate replaces the value under token with value encrypted with
// password, keeping the token and its expiry. An absent or soft-deleted
// token is ErrRecordNotFound and an expired one ErrTokenExpired (renew it
// first); the password must meet the policy.
func (s *Store) TokenUpdate(ctx context.Context, token, value, password string) (err error) {
	ctx, op := s.observe(ctx, opTokenUpdate, token)
	defer op.end(&err)
	if s.auditTx() {
		return s.auditedWrite(ctx, op, true, func(b *Store) error { return b.TokenUpdate(ctx, token, value, password) })
	}
	if err := validateTokenInput(token); err != nil {
		return err
	}
	if _, err := s.checkWrite(value, password, nil); err != nil {
		return err
	}
	row, err := s.liveRow(ctx, token)
	if err != nil {
		return err
	}
	if isExpired(row.Expires, nowString()) {
		return fmt.Errorf("%w: token %q", ErrTokenExpired, token)
	}
	// As in createToken, the identity comes before the encryption.
	identity := ""
	if s.passwordIdentityEnabled {
		if identity, err = s.identityFor(ctx, password); err != nil {
			return err
		}
	}
	stored, err := s.encrypt(ctx, value, password, token)
	if err != nil {
		return err
	}
	fp, err := s.fingerprintOf(ctx, value, password)
	if err != nil {
		return err
	}
	// The row is updated by primary key: a single-row lock taken in the
	// same order as every other writer's, where a search by token and
	// expiry could lock index entries in another order and deadlock
	// against a concurrent TokenRenew on InnoDB. The conditions are
	// repeated so that a soft delete or expiry that lands in between wins.
	for attempt := range concurrentWriteAttempts {
		if err := s.at(hookUpdateWrite, attempt); err != nil {
			return err
		}
		updated, err := s.updateLiveValue(ctx, row.ID, stored, identity, fp)
		if err != nil {
			return err
		}
		if updated {
			return nil
		}
		if err := s.at(hookUpdateLost, attempt); err != nil {
			return err
		}
		// Something changed the row between the read and the write; read
		// it again to tell which outcome the caller gets.
		if row, err = s.liveRow(ctx, token); err != nil {
			return err
		}
		if isExpired(row.Expires, nowString()) {
			return fmt.Errorf("%w: token %q", ErrTokenExpired, token)
		}
	}
	return fmt.Errorf("vaultstore: token %q kept changing during the update; try again", token)
}

// updateLiveValue writes a new value to the row id if it is neither
// soft-deleted nor expired, and links it to identity and stores its
// fingerprint fp when those are set, in one transaction.
func (s *Store) updateLiveValue(ctx context.Context, id, stored, identity, fp string) (bool, error) {
	updated := false
	write := func(db *gorm.DB) error {
		now := nowString()
		res := db.Table(s.vaultTable).
			Where(COLUMN_ID+" = ?", id).
			Where(COLUMN_SOFT_DELETED_AT+" > ?", now).
			Where(COLUMN_EXPIRES_AT+" > ?", now).
			Updates(map[string]any{COLUMN_VAULT_VALUE: stored, COLUMN_UPDATED_AT: now})
		if res.Error != nil {
			return fmt.Errorf("vaultstore: failed to update token: %w", res.Error)
		}
		updated = res.RowsAffected > 0
		if updated && identity != "" {
			if err := s.linkRecords(db, identity, id); err != nil {
				return err
			}
		}
		if updated && fp != "" {
			return s.writeFingerprints(db, map[string]string{id: fp})
		}
		return nil
	}
	var err error
	if identity == "" && fp == "" {
		err = write(s.db.WithContext(ctx))
	} else {
		err = s.db.WithContext(ctx).Transaction(write)
	}
	return updated && err == nil, err
}

// TokenUpsert updates existingToken with value, or, when existingToken is
// "", creates a new token of 20 characters. It returns the token that holds
// the value.
func (s *Store) TokenUpsert(ctx context.Context, existingToken, value, password string) (token string, err error) {
	ctx, op := s.observe(ctx, opTokenUpsert, existingToken)
	op.tokenOut = &token
	defer op.end(&err)
	if existingToken == "" {
		return s.TokenCreate(ctx, value, password, upsertTokenLength)
	}
	if err := s.TokenUpdate(ctx, existingToken, value, password); err != nil {
		return "", err
	}
	return existingToken, nil
}

// TokenDelete permanently deletes token, soft-deleted or not. An absent
// token is ErrRecordNotFound.
func (s *Store) TokenDelete(ctx context.Context, token string) (err error) {
	ctx, op := s.observe(ctx, opTokenDelete, token)
	defer op.end(&err)
	if s.auditTx() {
		return s.auditedWrite(ctx, op, false, func(b *Store) error { return b.TokenDelete(ctx, token) })
	}
	if err := validateTokenInput(token); err != nil {
		return err
	}
	return s.deleteWhere(ctx, COLUMN_VAULT_TOKEN, token)
}

// TokenSoftDelete marks token as deleted now; it then reads as absent. An
// absent or already soft-deleted token is ErrRecordNotFound.
func (s *Store) TokenSoftDelete(ctx context.Context, token string) (err error) {
	ctx, op := s.observe(ctx, opTokenSoftDelete, token)
	defer op.end(&err)
	if s.auditTx() {
		return s.auditedWrite(ctx, op, false, func(b *Store) error { return b.TokenSoftDelete(ctx, token) })
	}
	if err := validateTokenInput(token); err != nil {
		return err
	}
	return s.softDeleteWhere(ctx, COLUMN_VAULT_TOKEN, token)
}

// TokenExists reports whether token is stored and not soft-deleted. An
// expired token exists (it can be renewed).
func (s *Store) TokenExists(ctx context.Context, token string) (exists bool, err error) {
	ctx, op := s.observe(ctx, opTokenExists, token)
	defer op.end(&err)
	if err := validateTokenInput(token); err != nil {
		return false, err
	}
	return s.liveTokenExists(ctx, token)
}

// TokenRenew sets when token expires; the zero time means never. Expired
// tokens can be renewed; absent or soft-deleted ones are ErrRecordNotFound.
func (s *Store) TokenRenew(ctx context.Context, token string, expiresAt time.Time) (err error) {
	ctx, op := s.observe(ctx, opTokenRenew, token)
	defer op.end(&err)
	if s.auditTx() {
		return s.auditedWrite(ctx, op, false, func(b *Store) error { return b.TokenRenew(ctx, token, expiresAt) })
	}
	if err := validateTokenInput(token); err != nil {
		return err
	}
	expires, err := expiryTimestamp(expiresAt)
	if err != nil {
		return err
	}
	row, err := s.liveRow(ctx, token)
	if err != nil {
		return err
	}
	if err := s.at(hookRenewWrite, 0); err != nil {
		return err
	}
	now := nowString()
	res := s.vault(ctx).
		Where(COLUMN_ID+" = ?", row.ID).
		Where(COLUMN_SOFT_DELETED_AT+" > ?", now).
		Updates(map[string]any{COLUMN_EXPIRES_AT: expires, COLUMN_UPDATED_AT: now})
	if res.Error != nil {
		return fmt.Errorf("vaultstore: failed to renew token: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		// MySQL reports zero when nothing changed; tell that from a
		// soft delete or hard delete that came in between.
		if _, err := s.liveRow(ctx, token); err != nil {
			return err
		}
	}
	return nil
}

// TokensExpiredSoftDelete soft-deletes every expired token that is not
// soft-deleted yet, in one statement, and returns how many.
func (s *Store) TokensExpiredSoftDelete(ctx context.Context) (n int64, err error) {
	ctx, op := s.observe(ctx, opTokensExpiredSoftDelete)
	defer endCount(op, &n, &err)
	if s.auditTx() {
		err = s.auditedWrite(ctx, op, false, func(b *Store) (err error) { n, err = b.TokensExpiredSoftDelete(ctx); return err })
		return n, err
	}
	now := nowString()
	res := s.vault(ctx).
		Where(COLUMN_EXPIRES_AT+" <= ?", now).
		Where(COLUMN_SOFT_DELETED_AT+" > ?", now).
		Updates(map[string]any{COLUMN_SOFT_DELETED_AT: now, COLUMN_UPDATED_AT: now})
	if res.Error != nil {
		return 0, fmt.Errorf("vaultstore: failed to soft delete expired tokens: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// TokensExpiredDelete permanently deletes every expired token, soft-deleted
// or not, in one statement, and returns how many. It then removes the meta
// rows (password identity links, metadata, fingerprints) of records that no
// longer exist; should that fail, the count of deleted tokens is returned
// with the error.
func (s *Store) TokensExpiredDelete(ctx context.Context) (n int64, err error) {
	ctx, op := s.observe(ctx, opTokensExpiredDelete)
	defer endCount(op, &n, &err)
	if s.auditTx() {
		err = s.auditedWrite(ctx, op, false, func(b *Store) (err error) { n, err = b.TokensExpiredDelete(ctx); return err })
		return n, err
	}
	res := s.vault(ctx).Where(COLUMN_EXPIRES_AT+" <= ?", nowString()).Delete(&gormVaultRecord{})
	if res.Error != nil {
		return 0, fmt.Errorf("vaultstore: failed to delete expired tokens: %w", res.Error)
	}
	if res.RowsAffected > 0 {
		return res.RowsAffected, s.pruneLinks(ctx)
	}
	return 0, nil
}

// TokensRead reads many tokens with one query and returns their values
// keyed by token. Repeated tokens are read once. Expired tokens are left out
// of the map; absent or soft-deleted ones fail the call with an error that
// matches ErrRecordNotFound and names them. Every value must open with
// password, or the call fails (ErrInvalidPassword, ErrDecryptionFailed).
func (s *Store) TokensRead(ctx context.Context, tokens []string, password string) (values map[string]string, err error) {
	ctx, op := s.observe(ctx, opTokensRead, tokens...)
	defer endRead(op, &values, &err)
	unique := make([]string, 0, len(tokens))
	seen := make(map[string]struct{}, len(tokens))
	for _, t := range tokens {
		if err := validateTokenInput(t); err != nil {
			return nil, err
		}
		if _, ok := seen[t]; !ok {
			seen[t] = struct{}{}
			unique = append(unique, t)
		}
	}
	if len(unique) == 0 {
		return map[string]string{}, nil
	}
	now := nowString()
	rows := make([]tokenRow, 0, len(unique))
	for chunk := range slices.Chunk(unique, tokensReadChunk) {
		var err error
		if rows, err = s.readLiveTokens(ctx, rows, chunk, now); err != nil {
			return nil, err
		}
	}
	for _, r := range rows {
		delete(seen, r.token)
	}
	if len(seen) > 0 {
		missing := slices.Sorted(func(yield func(string) bool) {
			for t := range seen {
				if !yield(t) {
					return
				}
			}
		})
		return nil, fmt.Errorf("%w: tokens %s", ErrRecordNotFound, quoteList(missing))
	}
	rows = slices.DeleteFunc(rows, func(r tokenRow) bool { return isExpired(r.expires, now) })
	opened := make([]string, len(rows))
	open := func(ctx context.Context, i int) error {
		v, err := s.decrypt(ctx, rows[i].value, password, rows[i].token)
		if err != nil {
			return fmt.Errorf("token %q: %w", rows[i].token, err)
		}
		opened[i] = v
		return nil
	}
	// v3 values under one password share a cached key and open in
	// microseconds: they are opened here, in order, since handing each to
	// a worker cost more than opening it (TokensRead of 100 ran 1.5 to 1.8
	// times its raw baseline on the servers with the pool). v2 values cost
	// a derivation each, which the pool spreads over the cores within
	// MaxConcurrentKDF.
	if !slices.ContainsFunc(rows, func(r tokenRow) bool { return !strings.HasPrefix(r.value, ENCRYPTION_PREFIX_V3) }) {
		for i := range rows {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err := open(ctx, i); err != nil {
				return nil, err
			}
		}
	} else if err := forEachParallel(ctx, len(rows), open); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	for i, r := range rows {
		out[r.token] = opened[i]
	}
	return out, nil
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// TokensReadToResolvedMap resolves a map of key to token into a map of key
// to value, reading all tokens with TokensRead. Keys may share a token.
// Keys whose token has expired are left out; empty values are kept.
func (s *Store) TokensReadToResolvedMap(ctx context.Context, keyTokenMap map[string]string, password string) (map[string]string, error) {
	tokens := make([]string, 0, len(keyTokenMap))
	for _, t := range keyTokenMap {
		tokens = append(tokens, t)
	}
	values, err := s.TokensRead(ctx, tokens, password)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(keyTokenMap))
	for k, t := range keyTokenMap {
		if v, ok := values[t]; ok {
			out[k] = v
		}
	}
	return out, nil
}
