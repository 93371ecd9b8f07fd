package vaultstore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vaultstore/vaultstore"
)

func TestTokenRestoreAfterSoftDelete(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		expiry := timeIn(48)
		mustCustom(t, s, "tk_restore0000001", "restored value", testPassword, vaultstore.TokenCreateOptions{ExpiresAt: expiry})
		before := rowOf(t, s, "tk_restore0000001").Data()
		if err := s.TokenSoftDelete(ctx, "tk_restore0000001"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TokenRead(ctx, "tk_restore0000001", testPassword); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Fatalf("read after soft delete: %v, want ErrRecordNotFound", err)
		}
		if err := s.TokenRestore(ctx, "tk_restore0000001"); err != nil {
			t.Fatalf("TokenRestore: %v", err)
		}
		v, err := s.TokenRead(ctx, "tk_restore0000001", testPassword)
		if err != nil || v != "restored value" {
			t.Fatalf("read after restore = %q, %v", v, err)
		}
		after := rowOf(t, s, "tk_restore0000001").Data()
		for _, c := range []string{vaultstore.COLUMN_ID, vaultstore.COLUMN_VAULT_VALUE, vaultstore.COLUMN_CREATED_AT, vaultstore.COLUMN_EXPIRES_AT} {
			if before[c] != after[c] {
				t.Errorf("%s changed through soft delete and restore: %q -> %q", c, before[c], after[c])
			}
		}
		if after[vaultstore.COLUMN_EXPIRES_AT] != utc(expiry) {
			t.Errorf("expires_at = %q, want %q", after[vaultstore.COLUMN_EXPIRES_AT], utc(expiry))
		}
		if after[vaultstore.COLUMN_SOFT_DELETED_AT] != vaultstore.MAX_DATETIME {
			t.Errorf("soft_deleted_at after restore = %q, want MAX_DATETIME", after[vaultstore.COLUMN_SOFT_DELETED_AT])
		}
		// A live token cannot be restored again.
		if err := s.TokenRestore(ctx, "tk_restore0000001"); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("restore of a live token: %v, want ErrRecordNotFound", err)
		}
	})
}

func TestTokenRestoreRefusals(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		mustCustom(t, s, "tk_restorelive001", "live", testPassword)
		mustCustom(t, s, "tk_restoregone001", "gone", testPassword)
		if err := s.TokenDelete(ctx, "tk_restoregone001"); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{"tk_restorelive001", "tk_restoregone001", "tk_restorenever01"} {
			if err := s.TokenRestore(ctx, tok); !errors.Is(err, vaultstore.ErrRecordNotFound) {
				t.Errorf("TokenRestore(%s): %v, want ErrRecordNotFound", tok, err)
			}
		}
		for _, bad := range []string{"", "tk with space", string(make([]byte, 41))} {
			if err := s.TokenRestore(ctx, bad); !errors.Is(err, vaultstore.ErrValidationFailed) {
				t.Errorf("TokenRestore(%q): %v, want ErrValidationFailed", bad, err)
			}
		}
		if err := s.RecordRestoreByID(ctx, ""); !errors.Is(err, vaultstore.ErrValidationFailed) {
			t.Errorf("RecordRestoreByID(\"\"): %v, want ErrValidationFailed", err)
		}
		// The live token was not touched by the refused restore.
		if v, err := s.TokenRead(ctx, "tk_restorelive001", testPassword); err != nil || v != "live" {
			t.Errorf("live token after refused restore = %q, %v", v, err)
		}
	})
}

func TestRecordRestoreByID(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		r := mustCreateRecord(t, s, "tk_restorerecord1", "raw value")
		if err := s.RecordSoftDeleteByID(ctx, r.GetID()); err != nil {
			t.Fatal(err)
		}
		if got, err := s.RecordFindByID(ctx, r.GetID()); err != nil || got != nil {
			t.Fatalf("find after soft delete = %v, %v; want nil, nil", got, err)
		}
		if err := s.RecordRestoreByID(ctx, r.GetID()); err != nil {
			t.Fatalf("RecordRestoreByID: %v", err)
		}
		got, err := s.RecordFindByID(ctx, r.GetID())
		if err != nil || got == nil || got.GetValue() != "raw value" || got.GetToken() != "tk_restorerecord1" {
			t.Fatalf("find after restore = %v, %v", got, err)
		}
		if err := s.RecordRestoreByID(ctx, r.GetID()); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("restore of a live record: %v, want ErrRecordNotFound", err)
		}
		if err := s.RecordRestoreByID(ctx, "no-such-id"); !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Errorf("restore of an absent record: %v, want ErrRecordNotFound", err)
		}
	})
}

// TestTokenRestoreConcurrent: of concurrent restores of one soft-deleted
// token, exactly one succeeds.
func TestTokenRestoreConcurrent(t *testing.T) {
	t.Parallel()
	forEachDatabase(t, func(t *testing.T, b dbBackend) {
		ctx := context.Background()
		s := newStore(t, b.open(t))
		mustCustom(t, s, "tk_restorerace001", "v", testPassword)
		if err := s.TokenSoftDelete(ctx, "tk_restorerace001"); err != nil {
			t.Fatal(err)
		}
		var ok, notFound atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				switch err := s.TokenRestore(ctx, "tk_restorerace001"); {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, vaultstore.ErrRecordNotFound):
					notFound.Add(1)
				default:
					t.Errorf("TokenRestore: %v", err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 || notFound.Load() != 7 {
			t.Errorf("%d restores succeeded and %d found nothing, want 1 and 7", ok.Load(), notFound.Load())
		}
	})
}
