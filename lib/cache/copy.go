package cache

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// copyChunk is how many bytes copyFile copies before it starts their
// writeback.
const copyChunk = 8 << 20

// copyFile copies src to the new file dst.
//
// The kernel copies the bytes (copy_file_range), and each chunk's writeback
// starts as soon as it is copied (sync_file_range), so the later syncDir
// waits only for the last chunk instead of the whole file.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()

	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := copyData(in, out); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out.Close()
}

func copyData(in, out *os.File) error {
	inFd, outFd := int(in.Fd()), int(out.Fd())
	var buf []byte // set once copy_file_range is found unusable
	var off int64
	for {
		var n int
		var err error
		if buf == nil {
			n, err = unix.CopyFileRange(inFd, nil, outFd, nil, copyChunk, 0)
			if err != nil && off == 0 && fallbackErr(err) {
				buf = make([]byte, 1<<20)
				continue
			}
		} else {
			var m int64
			m, err = io.CopyBuffer(out, io.LimitReader(onlyReader{in}, copyChunk), buf)
			n = int(m)
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		// Only a hint: a failure here just leaves the work to fdatasync.
		unix.SyncFileRange(outFd, off, int64(n), unix.SYNC_FILE_RANGE_WRITE)
		off += int64(n)
	}
}

// fallbackErr reports whether copy_file_range cannot copy between these two
// files at all, so a read/write copy must.
func fallbackErr(err error) bool {
	return errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) ||
		errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EPERM)
}

// onlyReader hides the WriterTo of *os.File, so io.CopyBuffer uses the
// buffer instead of trying copy_file_range again.
type onlyReader struct{ io.Reader }

// gzipFile writes src compressed to the new file dst.
func gzipFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()

	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	buf := bufio.NewWriterSize(out, 1<<20)
	zw, _ := gzip.NewWriterLevel(buf, gzip.BestSpeed)
	_, err = io.Copy(zw, in)
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = buf.Flush()
	}
	if err != nil {
		out.Close()
		return fmt.Errorf("compress %s to %s: %w", src, dst, err)
	}
	return out.Close()
}

// writeNewFile writes data to the new file path.
func writeNewFile(path string, data []byte) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := out.Write(data); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// syncDir makes the files directly in dir and their names durable. The
// files are synced at the same time, so a journaling filesystem can commit
// them together instead of once per file.
func syncDir(dir string) error {
	dirents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	errs := make([]error, len(dirents))
	var wg sync.WaitGroup
	for i, d := range dirents {
		if !d.Type().IsRegular() {
			continue
		}
		wg.Go(func() { errs[i] = datasync(filepath.Join(dir, d.Name())) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}

	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some filesystems cannot sync a directory and return EINVAL.
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

func datasync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return &os.PathError{Op: "fdatasync", Path: path, Err: err}
	}
	return nil
}
