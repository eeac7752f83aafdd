package sandbox

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestNewSweepsOrphans(t *testing.T) {
	h := newFakeHost(t)
	parent := h.v1Group(t, "/", "0-3", "0")
	h.selfCgroup(t, "3:cpuset:/\n0::/")
	mustMkdir(t, filepath.Join(h.procRoot, "777"))

	dayOld := time.Now().Add(-25 * time.Hour)
	hourOld := time.Now().Add(-time.Hour)
	groups := []struct {
		name    string
		mtime   time.Time
		removed bool
	}{
		{GroupPrefix + "1700000000000000000-4242", dayOld, true},
		{GroupPrefix + "1700000000000000001-4242", hourOld, false},
		{GroupPrefix + "1700000000000000002-777", dayOld, false},
		{GroupPrefix + "garbage", dayOld, false},
		{"other-4242", dayOld, false},
	}
	for _, g := range groups {
		dir := filepath.Join(parent, g.name)
		mustWrite(t, filepath.Join(dir, "cpuset.cpus"), "0")
		if err := os.Chtimes(dir, g.mtime, g.mtime); err != nil {
			t.Fatal(err)
		}
	}

	s, err := New(context.Background(), h.options([]int{0}, &warnings{}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	for _, g := range groups {
		_, err := os.Stat(filepath.Join(parent, g.name))
		if missing := errors.Is(err, fs.ErrNotExist); missing != g.removed {
			t.Errorf("%s: removed = %v, want %v", g.name, missing, g.removed)
		}
	}
	if _, err := os.Stat(s.Dir); err != nil {
		t.Errorf("our own group: %v", err)
	}
}

func TestGroupPID(t *testing.T) {
	tests := []struct {
		name string
		pid  int
		ok   bool
	}{
		{"ktstr-build-1700000000000000000-123", 123, true},
		{"ktstr-build-5-1", 1, true},
		{"ktstr-build-123", 0, false},
		{"ktstr-build-x-123", 0, false},
		{"ktstr-build-1-0", 0, false},
		{"ktstr-build-1-12a", 0, false},
		{"build-1-123", 0, false},
	}
	for _, tt := range tests {
		pid, ok := groupPID(tt.name)
		if pid != tt.pid || ok != tt.ok {
			t.Errorf("groupPID(%q) = %d, %v; want %d, %v", tt.name, pid, ok, tt.pid, tt.ok)
		}
	}
}
