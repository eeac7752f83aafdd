package smoke

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// testCacheDir holds the guest init builds of one test run, so the go build
// runs once per arch and not once per test.
var testCacheDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ktbuild-smoke-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testCacheDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var guestInitOnce sync.Map // arch -> func() (string, error)

// testGuestInit returns the guest init for arch built in testCacheDir.
func testGuestInit(t *testing.T, arch string) string {
	t.Helper()
	f, _ := guestInitOnce.LoadOrStore(arch, sync.OnceValues(func() (string, error) {
		return GuestInit(context.Background(), arch, testCacheDir)
	}))
	path, err := f.(func() (string, error))()
	if err != nil {
		t.Fatalf("build guest init for %s: %v", arch, err)
	}
	return path
}

// writeImage writes a multiboot test kernel that prints msg and halts.
func writeImage(t *testing.T, msg string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kernel.bin")
	if err := os.WriteFile(path, multibootImage(msg, false), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
