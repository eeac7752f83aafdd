package flock

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnreliableFilesystemMagic(t *testing.T) {
	tests := []struct {
		magic      uint32
		name       string
		unreliable bool
	}{
		{0x6969, "nfs", true},
		{0x517b, "smb", true},
		{0xff534d42, "cifs", true},
		{0xfe534d42, "smb2", true},
		{0x00c36400, "ceph", true},
		{0x5346414f, "afs", true},
		{0x6b414653, "afs", true},
		{0x65735546, "fuse", true},
		{0xef53, "", false},     // ext2/3/4
		{0x01021994, "", false}, // tmpfs
		{0x9123683e, "", false}, // btrfs
		{0x58465342, "", false}, // xfs
		{0x794c7630, "", false}, // overlayfs
	}
	for _, tt := range tests {
		name, bad := UnreliableFilesystem(tt.magic)
		if name != tt.name || bad != tt.unreliable {
			t.Errorf("UnreliableFilesystem(%#x) = %q, %v; want %q, %v", tt.magic, name, bad, tt.name, tt.unreliable)
		}
	}
}

func TestMagicErrorMessage(t *testing.T) {
	err := magicError("/home/u/.cache/ktstr/kernels/.locks", 0x6969)
	if !errors.Is(err, ErrUnreliableFilesystem) {
		t.Fatalf("magicError for NFS: %v, want ErrUnreliableFilesystem", err)
	}
	for _, part := range []string{"/home/u/.cache/ktstr/kernels/.locks", "nfs", "0x6969", "flock is unreliable", "KTSTR_CACHE_DIR"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("message %q lacks %q", err, part)
		}
	}
	if err := magicError("/x", 0xef53); err != nil {
		t.Errorf("magicError for ext4: %v, want nil", err)
	}
}

func TestCheckFilesystemLocal(t *testing.T) {
	dir := t.TempDir()
	if err := CheckFilesystem(dir); err != nil {
		t.Errorf("CheckFilesystem(%s): %v", dir, err)
	}
	missing := filepath.Join(dir, "not", "yet", "made")
	if err := CheckFilesystem(missing); err != nil {
		t.Errorf("CheckFilesystem of a missing path: %v, want the ancestor checked", err)
	}
}
