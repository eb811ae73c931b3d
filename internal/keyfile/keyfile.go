// Package keyfile reads and creates the secret files of a data
// directory: keys and seeds, kept with mode 0600 and refused when others
// may read them.
package keyfile

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// CheckPrivate refuses a key file that others may read: the key must be
// assumed known, and silently using it would hide that. A missing file is
// fine.
func CheckPrivate(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("key file %s has mode %04o, readable by others; run chmod 600 on it if the key is still secret", path, m)
	}
	return nil
}

// Load reads the n-byte secret in path, or creates it (mode 0600)
// if the file does not exist.
func Load(path string, n int) ([]byte, error) {
	if err := CheckPrivate(path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if len(b) != n {
			return nil, fmt.Errorf("%s holds %d bytes, not %d", path, len(b), n)
		}
		return b, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	b = make([]byte, n)
	rand.Read(b)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	if err := syncFile(tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return b, nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
