package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ktstr/ktbuild/internal/fakekernel"
)

// TestMakeFixture writes a fake kernel tree into $KTBUILD_BENCH_FIXTURE, or
// into a temp dir when that is unset, and checks the files a build needs.
func TestMakeFixture(t *testing.T) {
	dir := os.Getenv(fixtureEnv)
	if dir == "" {
		dir = t.TempDir()
	}

	fakekernel.Write(t, dir, fakekernel.Options{})

	for _, name := range []string{"Makefile", "Kconfig", ".fake/vmlinux", ".fake/olddefconfig.awk"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("fixture lacks %s: %v", name, err)
			continue
		}
		if st.Size() == 0 {
			t.Errorf("fixture file %s is empty", name)
		}
	}
	if n := fakekernel.CompileCount(dir); n != 0 {
		t.Errorf("fresh fixture has compile count %d, want 0", n)
	}
}
