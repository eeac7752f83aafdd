package pipeline

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ktstr/ktbuild/internal/syncbuf"
	"github.com/ktstr/ktbuild/kconfig"
	"github.com/ktstr/ktbuild/lib/flock"
)

// syncBuffer collects a build's stderr while the test reads it.
type syncBuffer = syncbuf.Buffer

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Error(err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// cacheEntries lists the entry directories of a cache root (names not
// starting with a dot).
func cacheEntries(t testing.TB, root string) []string {
	t.Helper()
	dirents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range dirents {
		if !strings.HasPrefix(d.Name(), ".") {
			names = append(names, d.Name())
		}
	}
	return names
}

// tempTrees lists extraction and store temp dirs left in a cache root.
func tempTrees(t testing.TB, root string) []string {
	t.Helper()
	dirents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range dirents {
		if strings.HasPrefix(d.Name(), ".extract") || strings.HasPrefix(d.Name(), ".tmp-") || strings.HasPrefix(d.Name(), workPrefix) {
			names = append(names, d.Name())
		}
	}
	return names
}

// tarTree packs dir into a gzip tarball whose single top-level directory is
// top.
func tarTree(t testing.TB, dir, top, tarball string) {
	t.Helper()
	cmd := exec.Command("tar", "czf", tarball, "--transform", "s,^\\.,"+top+",", "-C", dir, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
}

// buildFails runs req and fails the test unless the build returns an error
// that contains each of wants.
func buildFails(t testing.TB, req Request, out *syncBuffer, wants ...string) {
	t.Helper()
	res, err := Build(context.Background(), req)
	if err == nil {
		t.Fatalf("build succeeded with %s, want an error\n%s", res.ImagePath, out)
	}
	for _, want := range wants {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("build error %q does not contain %q", err, want)
		}
	}
}

// storedTarball packs dir like tarTree with fixed times and owners and stored
// gzip blocks, so trees whose files have equal sizes give equal-size tarballs.
func storedTarball(t testing.TB, dir, top, tarball string) {
	t.Helper()
	f, err := os.Create(tarball)
	if err != nil {
		t.Fatal(err)
	}
	zw, err := gzip.NewWriterLevel(f, gzip.NoCompression)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(filepath.Join(top, rel))
		if d.IsDir() {
			hdr.Name += "/"
		}
		hdr.ModTime = time.Unix(1700000000, 0)
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.Format = tar.FormatUSTAR
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = zw.Close()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		t.Fatalf("pack %s into %s: %v", dir, tarball, err)
	}
}

func mustFragmentHash() string { return kconfig.FragmentHash() }

// assertNoLocksHeld fails when any lock file under dir is still locked.
func assertNoLocksHeld(t testing.TB, dir string) {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "*.lock"))
	for _, p := range paths {
		l, err := flock.TryLock(p, flock.Exclusive)
		if err != nil {
			t.Errorf("lock %s still held: %v", p, err)
			continue
		}
		l.Release()
	}
}

func strconvItoa(n int) string { return strconv.Itoa(n) }

// regexpLine returns the first line of text starting with prefix.
func regexpLine(t testing.TB, text, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	t.Fatalf("no line starting with %q in:\n%s", prefix, text)
	return ""
}

// waitForLock waits until another process holds a lock on path.
func waitForLock(t testing.TB, path string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if l, err := flock.TryLock(path, flock.Shared); err == nil {
			l.Release()
		} else if errors.Is(err, flock.ErrWouldBlock) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("nobody locked %s within 5 s", path)
}
