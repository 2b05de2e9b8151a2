package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/caddyserver/certmagic"
)

// fileEntries gives [Caddy] two atomic operations on Caddy's file system
// storage that certmagic.Storage lacks, both of which hold across processes
// on a POSIX file system, NFS included:
//
//   - create writes a key only if it does not exist: link(2) of a complete
//     temporary file fails when the name is taken;
//   - claim lets exactly one caller retire one particular write of a key:
//     an exclusive create of a file named after that write's bytes (every
//     envelope carries a random nonce, so no two writes share them).
//
// SetIfAbsent creates a missing key, and replaces an expired one by claiming
// it, removing it and creating the key afresh; Cleanup claims before it
// removes. No live entry is ever removed or overwritten, so SetIfAbsent has
// one winner per key even when FileStorage's lock fails to exclude: it
// takes a lock file that stays empty for two seconds for a crashed
// process's and deletes it, which under heavy load happens to live locks
// too (two winners for 5 of 1,000 keys in a test of two instances on two
// CPUs, before this type existed). The lock still orders replacers, so that
// they wait for each other rather than fail their claims.
type fileEntries struct {
	fs *certmagic.FileStorage
}

// Markers of the names of fileEntries' own files. They contain "..", so no
// key ever names them and List never returns them.
const (
	fileNewMarker   = "..idv-new-"
	fileClaimMarker = "..idv-claim-"
)

// newNonce returns the random part of an envelope.
func newNonce() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// create writes raw under the storage key name unless the key exists, and
// reports whether it did.
func (f fileEntries) create(name string, raw []byte) (bool, error) {
	target := f.fs.Filename(name)
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	tmp := filepath.Join(dir, fileNewMarker+newNonce())
	if err := writeSynced(tmp, raw); err != nil {
		return false, err
	}
	defer os.Remove(tmp)
	err := os.Link(tmp, target)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

func writeSynced(name string, raw []byte) error {
	fp, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = fp.Write(raw)
	if err == nil {
		err = fp.Sync()
	}
	if cerr := fp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
	}
	return err
}

// claim reports whether the caller is the one that may remove the write raw
// of storage key name. Claims stay until Cleanup removes them as leftovers,
// so that a caller that read raw long before cannot claim it again after it
// was replaced.
func (f fileEntries) claim(name string, raw []byte) (bool, error) {
	sum := sha256.Sum256(raw)
	path := filepath.Join(filepath.Dir(f.fs.Filename(name)), fileClaimMarker+hex.EncodeToString(sum[:16]))
	fp, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, fp.Close()
}

// remove removes the file of storage key name, which the caller has claimed.
func (f fileEntries) remove(name string) error {
	err := os.Remove(f.fs.Filename(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// isOwnFile reports whether storage key name is one of fileEntries' files:
// a temporary file of create, or a claim.
func isOwnFile(name string) bool {
	base := filepath.Base(filepath.FromSlash(name))
	return strings.HasPrefix(base, fileNewMarker) || strings.HasPrefix(base, fileClaimMarker)
}
