package pipeline

import (
	"errors"
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
