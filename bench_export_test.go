package vaultstore

import "context"

// BenchSeal and BenchOpen give the raw baselines of bench_test.go the
// store's own sealing and opening of a value (key cache included), without
// any SQL: a raw baseline is the driver's statement plus exactly this work.
func BenchSeal(s *Store, ctx context.Context, value, password, token string) (string, error) {
	return s.encrypt(ctx, value, password, token)
}

func BenchOpen(s *Store, ctx context.Context, stored, password, token string) (string, error) {
	return s.decrypt(ctx, stored, password, token)
}
