package smoke

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

// Mode bits of the cpio "newc" format, which match the Linux st_mode bits.
const (
	cpioDir  = 0o040000
	cpioFile = 0o100000
	cpioChar = 0o020000
)

// cpioEntry is one member of a newc archive.
type cpioEntry struct {
	name      string
	mode      uint32
	nlink     uint32
	rdevMajor uint32
	rdevMinor uint32
	size      int64
	body      io.Reader
}

// BuildInitramfs writes a cpio "newc" archive to w holding /init (the file
// initBinary, mode 0755), the directories /dev, /proc and /sys, and the
// character device /dev/console (5:1).
//
// The console node lets the kernel open the console for /init before any
// filesystem is mounted. The archive ends with the TRAILER!!! entry and is
// not compressed, which every kernel with CONFIG_BLK_DEV_INITRD reads.
// Timestamps are zero, so the same init binary gives the same bytes.
func BuildInitramfs(initBinary string, w io.Writer) error {
	f, err := os.Open(initBinary)
	if err != nil {
		return fmt.Errorf("smoke: open guest init %s: %w — build it with BuildGuestInit", initBinary, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("smoke: stat guest init %s: %w", initBinary, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("smoke: guest init %s is not a regular file — pass the compiled init binary", initBinary)
	}

	entries := []cpioEntry{
		{name: "dev", mode: cpioDir | 0o755, nlink: 2},
		{name: "dev/console", mode: cpioChar | 0o600, nlink: 1, rdevMajor: 5, rdevMinor: 1},
		{name: "proc", mode: cpioDir | 0o755, nlink: 2},
		{name: "sys", mode: cpioDir | 0o755, nlink: 2},
		{name: "init", mode: cpioFile | 0o755, nlink: 1, size: fi.Size(), body: f},
	}

	bw := bufio.NewWriterSize(w, 1<<16)
	cw := &cpioWriter{w: bw}
	for i, e := range entries {
		if err := cw.write(uint32(i+1), e); err != nil {
			return fmt.Errorf("smoke: write initramfs entry %s: %w", e.name, err)
		}
	}
	if err := cw.write(0, cpioEntry{name: "TRAILER!!!", nlink: 1}); err != nil {
		return fmt.Errorf("smoke: write initramfs trailer: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("smoke: write initramfs: %w", err)
	}
	return nil
}

// WriteInitramfs writes the archive of BuildInitramfs to the file path.
func WriteInitramfs(initBinary, path string) error {
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("smoke: create initramfs %s: %w", path, err)
	}
	if err := BuildInitramfs(initBinary, out); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("smoke: write initramfs %s: %w", path, err)
	}
	return nil
}

// cpioWriter tracks the offset because newc pads every header+name and
// every body to a multiple of four bytes.
type cpioWriter struct {
	w   io.Writer
	off int64
}

func (c *cpioWriter) write(ino uint32, e cpioEntry) error {
	if e.size > int64(^uint32(0)) {
		return fmt.Errorf("file of %d bytes does not fit the newc size field", e.size)
	}

	// Header: magic, then 13 fields of 8 hex digits: ino, mode, uid, gid,
	// nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
	// namesize (with the NUL) and check (always 0 for newc).
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, e.mode, 0, 0, e.nlink, 0, uint32(e.size), 0, 0,
		e.rdevMajor, e.rdevMinor, len(e.name)+1, 0)
	if err := c.put([]byte(hdr + e.name + "\x00")); err != nil {
		return err
	}
	if err := c.pad(); err != nil {
		return err
	}

	if e.body != nil {
		n, err := io.Copy(c.w, e.body)
		c.off += n
		if err != nil {
			return err
		}
		if n != e.size {
			return fmt.Errorf("read %d bytes, expected %d (file changed while archiving)", n, e.size)
		}
		if err := c.pad(); err != nil {
			return err
		}
	}
	return nil
}

func (c *cpioWriter) put(b []byte) error {
	n, err := c.w.Write(b)
	c.off += int64(n)
	return err
}

func (c *cpioWriter) pad() error {
	if r := c.off % 4; r != 0 {
		return c.put(make([]byte, 4-r))
	}
	return nil
}
