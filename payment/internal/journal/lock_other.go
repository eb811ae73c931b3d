//go:build !unix

package journal

import "os"

// lock is a no-op where flock(2) does not exist.
func lock(*os.File) error { return nil }
