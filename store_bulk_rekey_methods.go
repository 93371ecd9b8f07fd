package vaultstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"gorm.io/gorm"
)

// defaultRekeyBatchSize is how many rows one page of a rotation reads and
// one transaction writes when ChangePasswordOptions.BatchSize is zero: large
// enough that per-transaction costs vanish, small enough that a batch's
// values (at most MaxValueSize each, but usually tiny) stay modest in memory
// and a transaction holds its locks briefly.
const defaultRekeyBatchSize = 500

// maxRekeyBatchSize keeps a batch's IN lists and memory bounded.
const maxRekeyBatchSize = 10000

// rekeyRetries bounds how often a row that changed under a rotation is read
// again, and how often a batch whose transaction the database aborted
// (deadlock, serialisation failure, busy) is written again.
const rekeyRetries = 3

// ChangePasswordOptions are the settings of TokensChangePasswordWithOptions.
type ChangePasswordOptions struct {
	// Progress, when set, is called after every batch, and at the end if
	// the last call did not show the final counts, from the goroutine that
	// called TokensChangePasswordWithOptions. It must not block for long:
	// the next batch waits for it.
	Progress func(ChangePasswordProgress)

	// DryRun counts the records that would change and writes nothing.
	DryRun bool

	// BatchSize is how many records one page reads and one transaction
	// writes. Zero means 500; at most 10,000.
	BatchSize int
}

// ChangePasswordProgress reports how far a rotation has come, and at the
// end what it did. Counts are of records; docs/rotation.md says what each
// can contain.
type ChangePasswordProgress struct {
	// Scanned records have been examined.
	Scanned int
	// Changed records have been re-encrypted and committed (in a dry run:
	// would have been).
	Changed int
	// FromV1, FromV2 and FromV3 split Changed by the format each value was
	// in before. Once a same-password rotation reports no FromV1 (or no
	// FromV1 and FromV2), NewStoreOptions.MinReadVersion can be raised.
	FromV1, FromV2, FromV3 int
	// Skipped records could not be examined: their value is malformed,
	// fails authentication, is in a format below MinReadVersion, or asks
	// for Argon2 parameters the store refuses. They are left
	// byte-identical. Records under another password are neither changed
	// nor skipped, and so are values damaged in a way that looks exactly
	// like another password (a v1 or v2 value that fails to open, a v3
	// value whose key-feeding header fields or commitment are damaged);
	// docs/rotation.md lists every case.
	Skipped int
	// Total is the number of records in the vault table when the rotation
	// started, soft-deleted and expired ones included; with password
	// identities, the number of records linked to the old password.
	Total int
}

// rekeyItem is one row of a batch and what became of it.
type rekeyItem struct {
	id, token, value string
	sealed           string // new value; "" when the row does not change
	version          string // format of value
	skipped          bool
	fingerprint      string // of the sealed value, with FingerprintEnabled
	fingerprinted    bool   // the stored fingerprint is the value's current one
}

// TokensChangePassword re-encrypts, with newPassword, every record whose
// value opens with oldPassword and returns how many it changed. It is
// TokensChangePasswordWithOptions with the default options.
func (s *Store) TokensChangePassword(ctx context.Context, oldPassword, newPassword string) (int, error) {
	p, err := s.TokensChangePasswordWithOptions(ctx, oldPassword, newPassword, ChangePasswordOptions{})
	return p.Changed, err
}

// TokensChangePasswordWithOptions re-encrypts, with newPassword, every
// record whose value opens with oldPassword, soft-deleted and expired ones
// included, and returns the final counts. Values are rewritten in the
// store's write format (v3 unless EncryptionVersion says v2) with the
// current CryptoConfig, so oldPassword == newPassword upgrades v1 and v2
// values and v3 values written with older parameters or another vault salt;
// v3 values that are already current are left alone, so running it again
// changes nothing.
//
// Records are read in batches ordered by id (keyset pagination), test-
// decrypted on a worker pool (v3 values cost microseconds once the key of
// their password is derived, v1 values a few hashes; v2 values cost a
// derivation each, spread over the cores within MaxConcurrentKDF), and each
// batch is written in one transaction with a compare-and-set on every row's
// old value: a concurrent TokenUpdate is never overwritten, and a row that
// changed is read again and retried. Records that do not open are left
// byte-identical; records that cannot be examined are counted as skipped.
//
// At every moment each record opens with the old or the new password. After
// a cancellation or a crash, nothing is lost: a new call with the same
// passwords finishes the rest. The counts returned, also with an error,
// cover every batch known to be committed (one whose COMMIT was cut off
// may have been committed too). After a rotation to another password, the
// keys of oldPassword are dropped from the store's cache.
//
// newPassword must meet the policy (ErrPasswordInvalid); oldPassword is not
// checked, so legacy passwords can be rotated away. With password identities
// enabled (NewStoreOptions.PasswordIdentityEnabled), only the records linked
// to oldPassword's identity are visited, and an oldPassword with no identity
// fails at once with ErrInvalidPassword.
func (s *Store) TokensChangePasswordWithOptions(ctx context.Context, oldPassword, newPassword string, opts ChangePasswordOptions) (result ChangePasswordProgress, err error) {
	ctx, op := s.observe(ctx, opTokensChangePassword)
	defer func() { s.rotationEnded(ctx, op, result, opts.DryRun, err); op.end(&err) }()
	if err := s.refuseBound("TokensChangePassword"); err != nil {
		return ChangePasswordProgress{}, err
	}
	s.tel.info(ctx, "vaultstore: rotation started", slog.String(attrOp, opTokensChangePassword), slog.String(attrTable, s.vaultTable),
		slog.Bool("dry_run", opts.DryRun), slog.Bool("identities", s.passwordIdentityEnabled))
	switch {
	case opts.BatchSize == 0:
		opts.BatchSize = defaultRekeyBatchSize
	case opts.BatchSize < 0 || opts.BatchSize > maxRekeyBatchSize:
		return ChangePasswordProgress{}, validationErrorf("BatchSize %d is outside 1..%d", opts.BatchSize, maxRekeyBatchSize)
	}
	if err := s.policy.check(newPassword); err != nil {
		return ChangePasswordProgress{}, err
	}
	if !opts.DryRun && oldPassword != newPassword {
		// Whatever the outcome, values under oldPassword are on their way
		// out; keys kept for it would only linger in memory.
		defer s.forgetPassword(oldPassword)
	}
	if s.passwordIdentityEnabled {
		return s.rotateByIdentity(ctx, oldPassword, newPassword, opts)
	}
	var total int64
	if err := s.vault(ctx).Count(&total).Error; err != nil {
		return ChangePasswordProgress{}, fmt.Errorf("vaultstore: failed to count records: %w", err)
	}
	r, err := s.newRotation(ctx, oldPassword, newPassword, opts, total)
	if err != nil {
		return ChangePasswordProgress{}, err
	}
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return r.finish(err)
		}
		var rows []gormVaultRecord
		q := s.vault(ctx).Select(COLUMN_ID, COLUMN_VAULT_TOKEN, COLUMN_VAULT_VALUE).Order(COLUMN_ID + " ASC").Limit(opts.BatchSize)
		if after != "" {
			q = q.Where(COLUMN_ID+" > ?", after)
		}
		if err := q.Find(&rows).Error; err != nil {
			return r.finish(fmt.Errorf("vaultstore: failed to read records to re-encrypt: %w", err))
		}
		if len(rows) == 0 {
			return r.finish(nil)
		}
		after = rows[len(rows)-1].ID
		if err := r.batch(ctx, rows); err != nil {
			return r.finish(err)
		}
		r.report()
	}
}

// newRotation prepares a rotation over total records.
func (s *Store) newRotation(ctx context.Context, oldPassword, newPassword string, opts ChangePasswordOptions, total int64) (*rotation, error) {
	r := &rotation{s: s, old: oldPassword, new: newPassword, opts: opts, parallel: total > int64(s.parallelThreshold)}
	r.progress.Total = int(total)
	if oldPassword == newPassword && s.writeVersion == ENCRYPTION_VERSION_V3 {
		salt, err := s.readVaultSalt(ctx)
		switch {
		case errors.Is(err, ErrRecordNotFound):
			// No v3 value was written in this vault: nothing is current.
		case err != nil:
			return nil, err
		default:
			p := s.writeParams()
			r.current = func(stored string) bool {
				v, err := parseV3(stored)
				return err == nil && v.params == p && bytes.Equal(v.vaultSalt, salt)
			}
		}
	}
	return r, nil
}

// rotation is the state of one TokensChangePassword call.
type rotation struct {
	s        *Store
	old, new string
	opts     ChangePasswordOptions
	parallel bool
	progress ChangePasswordProgress
	reported bool // progress was reported as it is now
	// current, when set, reports values already in the write format with
	// the current parameters and vault salt: a same-password rotation
	// leaves them alone, so running it again changes nothing.
	current func(stored string) bool
	// onCommit, when set, runs inside each batch's transaction after its
	// updates, with the ids that changed: password identities relink them
	// atomically with the values.
	onCommit func(tx *gorm.DB, ids []string) error
}

func (r *rotation) report() {
	if r.opts.Progress != nil {
		r.opts.Progress(r.progress)
	}
	r.reported = true
}

// finish reports the final state unless the last report already showed it.
func (r *rotation) finish(err error) (ChangePasswordProgress, error) {
	if !r.reported {
		r.report()
	}
	return r.progress, err
}

// count adds committed (or, in a dry run, would-be) changes to the counts.
func (r *rotation) count(changed []rekeyItem) {
	r.progress.Changed += len(changed)
	for _, c := range changed {
		switch c.version {
		case ENCRYPTION_VERSION_V1:
			r.progress.FromV1++
		case ENCRYPTION_VERSION_V2:
			r.progress.FromV2++
		case ENCRYPTION_VERSION_V3:
			r.progress.FromV3++
		}
	}
}

// batch examines rows, writes the ones that open with the old password and
// retries those that changed meanwhile.
func (r *rotation) batch(ctx context.Context, rows []gormVaultRecord) error {
	items := rekeyItems(rows)
	if err := r.examine(ctx, items); err != nil {
		return err
	}
	r.reported = false
	r.progress.Scanned += len(items)
	pending := items
	for attempt := 0; ; attempt++ {
		if err := r.s.at(hookRotationWrite, attempt); err != nil {
			return err
		}
		lost, err := r.write(ctx, pending)
		if err != nil {
			return err
		}
		if len(lost) == 0 {
			return nil
		}
		if attempt == rekeyRetries {
			return fmt.Errorf("vaultstore: %d records kept changing during re-encryption; run it again", len(lost))
		}
		// Rows that changed since they were read: the new value may be
		// under the old password too, so read and examine them again.
		if pending, err = r.reread(ctx, lost); err != nil {
			return err
		}
		if err := r.examine(ctx, pending); err != nil {
			return err
		}
	}
}

// examine decides, for each item, whether it opens with the old password
// and, unless this is a dry run, seals it with the new one. It counts the
// items it skips.
func (r *rotation) examine(ctx context.Context, items []rekeyItem) error {
	if err := r.checkFingerprints(ctx, items); err != nil {
		return err
	}
	if err := r.examineEach(ctx, items); err != nil {
		return err
	}
	for _, it := range items {
		if it.skipped {
			r.progress.Skipped++
			r.s.tel.warn(ctx, "vaultstore: rotation skipped a value that cannot be examined",
				slog.String(attrOp, opTokensChangePassword), slog.String("record", it.id), slog.String("token", it.token))
		}
	}
	return nil
}

func (r *rotation) examineEach(ctx context.Context, items []rekeyItem) error {
	one := func(ctx context.Context, i int) error {
		it := &items[i]
		it.sealed, it.skipped = "", false
		it.version, _ = valueVersion(it.value)
		if r.current != nil && r.current(it.value) && it.fingerprinted {
			return nil
		}
		plain, err := r.s.decryptOnce(ctx, it.value, r.old, it.token)
		switch {
		case err == nil:
		case errors.Is(err, ErrInvalidPassword):
			// Another password (v1/v2 failures match this too).
			return nil
		case errors.Is(err, ErrDecryptionFailed):
			it.skipped = true
			return nil
		default:
			return err // the context ended, or randomness failed
		}
		if r.opts.DryRun {
			it.sealed = it.value // marks "would change"
			return nil
		}
		if it.sealed, err = r.s.encrypt(ctx, plain, r.new, it.token); err != nil {
			return err
		}
		it.fingerprint, err = r.s.fingerprintOf(ctx, plain, r.new)
		return err
	}
	if !r.parallel {
		for i := range items {
			if err := one(ctx, i); err != nil {
				return err
			}
		}
		return nil
	}
	return forEachParallel(ctx, len(items), one)
}

// write commits the batch's changes in one transaction, each row with a
// compare-and-set on the value it was read with (compareAndSetValues, a
// statement per casChunkRows rows), and returns the ids of rows that no
// longer held that value.
func (r *rotation) write(ctx context.Context, items []rekeyItem) (lost []string, err error) {
	var changes []rekeyItem
	for _, it := range items {
		if it.sealed != "" {
			changes = append(changes, it)
		}
	}
	if len(changes) == 0 {
		return nil, nil
	}
	if r.opts.DryRun {
		r.count(changes)
		return nil, nil
	}
	for attempt := 0; ; attempt++ {
		var done []string
		var doneItems []rekeyItem
		lost = nil
		err = r.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			now := nowString()
			for rest := changes; len(rest) > 0; {
				chunk := rest[:casChunkLen(rest)]
				rest = rest[len(chunk):]
				chunkLost, err := r.s.compareAndSetValues(tx, chunk, now)
				if err != nil {
					return err
				}
				if err := r.s.at(hookRotationChunk, attempt); err != nil {
					return err
				}
				lost = append(lost, chunkLost...)
				for _, c := range chunk {
					if !slices.Contains(chunkLost, c.id) {
						done = append(done, c.id)
						doneItems = append(doneItems, c)
					}
				}
			}
			if err := r.s.writeFingerprints(tx, rotatedFingerprints(doneItems)); err != nil {
				return err
			}
			if r.onCommit != nil && len(done) > 0 {
				if err := r.onCommit(tx, done); err != nil {
					return err
				}
			}
			if r.s.auditTx() && len(done) > 0 {
				return r.s.auditBatch(ctx, done)
			}
			return nil
		})
		if err == nil {
			r.count(doneItems)
			return lost, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !isRetryableTxError(err) || attempt == rekeyRetries {
			return nil, fmt.Errorf("vaultstore: failed to write re-encrypted records: %w", err)
		}
		r.s.tel.warn(ctx, "vaultstore: rotation batch retried after the database aborted it",
			slog.String(attrOp, opTokensChangePassword), slog.Int(attrRecords, len(changes)), slog.Int("attempt", attempt+1))
	}
}

// A compare-and-set statement covers at most casChunkRows rows and, beyond
// its first row, casChunkBytes of old and new values, well under MySQL's
// default packet size. The database searches the CASE lists once per row,
// so a statement's cost grows with the square of its rows: 50 saves nearly
// all round trips (against one statement per row) while SQLite, which has
// none to save, stays as fast as before.
const (
	casChunkRows  = 50
	casChunkBytes = 1 << 20
)

// casChunkLen is how many of changes, at least one, the next
// compare-and-set statement takes.
func casChunkLen(changes []rekeyItem) int {
	n, size := 0, 0
	for _, c := range changes {
		size += len(c.value) + len(c.sealed)
		if n == casChunkRows || (n > 0 && size > casChunkBytes) {
			break
		}
		n++
	}
	return n
}

// compareAndSetValues writes, through tx, each change's sealed value to its
// row where the row still holds the value it was read with, in one UPDATE,
// and returns the ids of the rows that no longer did.
func (s *Store) compareAndSetValues(tx *gorm.DB, changes []rekeyItem, now string) (lost []string, err error) {
	ids := make([]string, len(changes))
	oldByID := make([]any, 0, 2*len(changes))
	newByID := make([]any, 0, 2*len(changes))
	for i, c := range changes {
		ids[i] = c.id
		oldByID = append(oldByID, c.id, c.value)
		newByID = append(newByID, c.id, c.sealed)
	}
	byID := "CASE " + COLUMN_ID + strings.Repeat(" WHEN ? THEN ?", len(changes)) + " END"
	res := tx.Table(s.vaultTable).
		Where(COLUMN_ID+" IN ?", ids).
		Where(COLUMN_VAULT_VALUE+" = "+byID, oldByID...).
		Updates(map[string]any{COLUMN_VAULT_VALUE: gorm.Expr(byID, newByID...), COLUMN_UPDATED_AT: now})
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == int64(len(changes)) {
		return nil, nil
	}
	// Some rows changed since they were read. A sealed value is new random
	// ciphertext that this statement wrote to its own row only, so the rows
	// holding one are exactly the rows written.
	sealed := make([]string, len(changes))
	for i, c := range changes {
		sealed[i] = c.sealed
	}
	var written []string
	err = tx.Table(s.vaultTable).
		Where(COLUMN_ID+" IN ? AND "+COLUMN_VAULT_VALUE+" IN ?", ids, sealed).
		Pluck(COLUMN_ID, &written).Error
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if !slices.Contains(written, id) {
			lost = append(lost, id)
		}
	}
	return lost, nil
}

// reread loads the current values of ids; rows deleted meanwhile drop out.
func (r *rotation) reread(ctx context.Context, ids []string) ([]rekeyItem, error) {
	var rows []gormVaultRecord
	err := r.s.vault(ctx).Select(COLUMN_ID, COLUMN_VAULT_TOKEN, COLUMN_VAULT_VALUE).
		Where(COLUMN_ID+" IN ?", ids).Order(COLUMN_ID + " ASC").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("vaultstore: failed to re-read records: %w", err)
	}
	return rekeyItems(rows), nil
}

func rekeyItems(rows []gormVaultRecord) []rekeyItem {
	items := make([]rekeyItem, len(rows))
	for i, row := range rows {
		items[i] = rekeyItem{id: row.ID, token: row.Token, value: row.Value}
	}
	return items
}

var (
	rotatedChanged = metric.WithAttributes(attribute.String("result", "changed"))
	rotatedSkipped = metric.WithAttributes(attribute.String("result", "skipped"))
	rotatedOther   = metric.WithAttributes(attribute.String("result", "other"))
)

// rotationEnded logs and counts what a rotation did.
func (s *Store) rotationEnded(ctx context.Context, op *operation, p ChangePasswordProgress, dryRun bool, err error) {
	op.setCount(int64(p.Changed))
	if !dryRun {
		s.tel.rotated.Add(ctx, int64(p.Changed), rotatedChanged)
		s.tel.rotated.Add(ctx, int64(p.Skipped), rotatedSkipped)
		s.tel.rotated.Add(ctx, int64(p.Scanned-p.Changed-p.Skipped), rotatedOther)
	}
	s.tel.info(ctx, "vaultstore: rotation ended", slog.String(attrOp, opTokensChangePassword), slog.Bool("dry_run", dryRun),
		slog.Int(attrRecords, p.Scanned), slog.Int("changed", p.Changed), slog.Int("skipped", p.Skipped), slog.Int("total", p.Total),
		slog.Int("from_v1", p.FromV1), slog.Int("from_v2", p.FromV2), slog.Int("from_v3", p.FromV3),
		slog.Duration(attrDuration, time.Since(op.start)), slog.String(attrErr, errorClass(err)))
}
