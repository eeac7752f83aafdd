package flock

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrUnreliableFilesystem is returned, wrapped, by CheckFilesystem for a
// filesystem on which flock(2) does not exclude other hosts or clients.
var ErrUnreliableFilesystem = errors.New("flock is unreliable on network and FUSE filesystems")

// unreliableMagics maps statfs f_type values from linux/magic.h to names.
// On these, flock either goes to a server whose behaviour depends on the
// protocol and mount options (NFS emulates it with POSIX byte-range locks)
// or is left to a userspace daemon.
var unreliableMagics = map[uint32]string{
	unix.NFS_SUPER_MAGIC:  "nfs",
	unix.SMB_SUPER_MAGIC:  "smb",
	unix.CIFS_SUPER_MAGIC: "cifs",
	unix.SMB2_SUPER_MAGIC: "smb2",
	unix.CEPH_SUPER_MAGIC: "ceph",
	unix.AFS_SUPER_MAGIC:  "afs",
	unix.AFS_FS_MAGIC:     "afs",
	unix.FUSE_SUPER_MAGIC: "fuse",
}

// UnreliableFilesystem returns the name of the filesystem with statfs
// magic number magic and true when flock is unreliable on it. For any
// other magic it returns "" and false.
func UnreliableFilesystem(magic uint32) (name string, unreliable bool) {
	name, unreliable = unreliableMagics[magic]
	return name, unreliable
}

// CheckFilesystem returns an error wrapping ErrUnreliableFilesystem when
// path, or its nearest existing ancestor, is on NFS, CIFS/SMB, Ceph, AFS or
// FUSE.
func CheckFilesystem(path string) error {
	p, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("check filesystem of %s: %w", path, err)
	}
	var st unix.Statfs_t
	for {
		err = unix.Statfs(p, &st)
		if !errors.Is(err, unix.ENOENT) || p == "/" {
			break
		}
		p = filepath.Dir(p)
	}
	if err != nil {
		return fmt.Errorf("check filesystem of %s: statfs %s: %w", path, p, err)
	}
	// f_type is a signed word, so CIFS's 0xff534d42 is negative on 32-bit
	// systems; the low 32 bits are the magic either way.
	return magicError(path, uint32(st.Type))
}

func magicError(path string, magic uint32) error {
	name, bad := UnreliableFilesystem(magic)
	if !bad {
		return nil
	}
	return fmt.Errorf("lock directory %s is on %s (statfs magic %#x): %w — set KTSTR_CACHE_DIR to a directory on a local filesystem", path, name, magic, ErrUnreliableFilesystem)
}
