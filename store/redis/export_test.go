package redisstore

import "time"

// SetLease sets the lease of the locks that s hands out from now on, so
// that a test can watch leases run out without waiting 15 s.
func SetLease(s *Store, d time.Duration) { s.lease = d }
