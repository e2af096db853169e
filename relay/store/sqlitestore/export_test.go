package sqlitestore

// OpenHooked is Open with a hook the committer calls in every committing
// transaction after staged and before the commit writes or syncs; an
// error from it fails the commit (storetest.OpenHooked). Set before the
// store's first write, it is seen by the committer through the channel
// that carries that write.
func OpenHooked(path string, opts Options, beforeCommit func() error) (*Store, error) {
	s, err := Open(path, opts)
	if err != nil {
		return nil, err
	}
	s.beforeCommit = beforeCommit
	return s, nil
}
