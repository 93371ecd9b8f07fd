package vaultstore

// hookPoint names a moment between a read and the write that depends on it.
// The write-safety tests (write_safety_test.go) set Store.testHook to change
// the row at exactly that moment, as another client could, and check that
// the method keeps its documented promise. Outside tests testHook is nil and
// a hook point costs one nil check.
type hookPoint int

const (
	// hookUpdateWrite: TokenUpdate has read the live, unexpired row (again)
	// and is about to write the new value.
	hookUpdateWrite hookPoint = iota + 1
	// hookUpdateLost: TokenUpdate's write matched no row; it is about to
	// read the row again.
	hookUpdateLost
	// hookRenewWrite: TokenRenew has read the live row and is about to
	// write the new expiry.
	hookRenewWrite
	// hookCreateCustomInsert: TokenCreateCustom found the token free and
	// is about to insert it.
	hookCreateCustomInsert
	// hookRotationWrite: a rotation batch was read and examined (again,
	// for attempt > 0) and is about to be written.
	hookRotationWrite
	// hookRotationChunk: inside a rotation batch's transaction (attempt
	// counts the transaction's retries), a compare-and-set statement has
	// run. An error returned here aborts the transaction as a database
	// error would.
	hookRotationChunk
)

// at runs the test hook, if any, at point p of the given attempt. An error
// from the hook is returned by the method as if the database had failed.
func (s *Store) at(p hookPoint, attempt int) error {
	if s.testHook == nil {
		return nil
	}
	return s.testHook(p, attempt)
}
