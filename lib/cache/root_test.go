package cache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// setEnv sets or, for value nil, unsets an environment variable for the
// rest of the test.
func setEnv(t *testing.T, name string, value *string) {
	t.Helper()
	t.Setenv(name, "")
	if value == nil {
		os.Unsetenv(name)
		return
	}
	os.Setenv(name, *value)
}

func TestResolveRoot(t *testing.T) {
	tests := []struct {
		name              string
		cacheDir, xdg, hm *string
		want              string
	}{
		{"cache dir wins", ptr("/srv/kernels"), ptr("/xdg"), ptr("/home/u"), "/srv/kernels"},
		{"cache dir verbatim", ptr("rel/cache"), nil, nil, "rel/cache"},
		{"xdg", nil, ptr("/xdg"), ptr("/home/u"), "/xdg/ktstr/kernels"},
		{"empty cache dir falls through", ptr(""), ptr("/xdg"), nil, "/xdg/ktstr/kernels"},
		{"home", nil, nil, ptr("/home/u"), "/home/u/.cache/ktstr/kernels"},
		{"empty xdg falls to home", ptr(""), ptr(""), ptr("/home/u"), "/home/u/.cache/ktstr/kernels"},
		{"xdg with bad home", nil, ptr("/xdg"), ptr("/"), "/xdg/ktstr/kernels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, "KTSTR_CACHE_DIR", tt.cacheDir)
			setEnv(t, "XDG_CACHE_HOME", tt.xdg)
			setEnv(t, "HOME", tt.hm)
			got, err := ResolveRoot()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ResolveRoot = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResolveRootBadHome(t *testing.T) {
	tests := []struct {
		name string
		home *string
		want string
	}{
		{"unset", nil, "HOME is not set"},
		{"empty", ptr(""), "HOME is empty"},
		{"slash", ptr("/"), `HOME is "/"`},
		{"relative", ptr("home/u"), `HOME="home/u" is not an absolute path`},
		{"dot", ptr("."), `HOME="." is not an absolute path`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, "KTSTR_CACHE_DIR", nil)
			setEnv(t, "XDG_CACHE_HOME", ptr(""))
			setEnv(t, "HOME", tt.home)
			got, err := ResolveRoot()
			if err == nil {
				t.Fatalf("ResolveRoot = %q, want an error", got)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not say %q", msg, tt.want)
			}
			if !strings.Contains(msg, "KTSTR_CACHE_DIR") || !strings.Contains(msg, "set HOME") {
				t.Errorf("error %q does not name the fix", msg)
			}
		})
	}
}

func TestOpenCreatesRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b", "kernels")
	c, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if c.Root != root {
		t.Errorf("Root = %q, want %q", c.Root, root)
	}
	if fi, err := os.Stat(filepath.Join(root, ".locks")); err != nil || !fi.IsDir() {
		t.Errorf(".locks not created: %v", err)
	}
	if got, want := c.EntryLockPath("k1"), filepath.Join(root, ".locks", "k1.lock"); got != want {
		t.Errorf("EntryLockPath = %q, want %q", got, want)
	}
	names, _ := os.ReadDir(root)
	if len(names) != 1 {
		t.Errorf("root holds %v after Open, want only .locks", names)
	}
}

func TestOpenRelativeRoot(t *testing.T) {
	t.Chdir(t.TempDir())
	c, err := Open("cache")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(c.Root) {
		t.Errorf("Root = %q, want an absolute path", c.Root)
	}
}

func TestOpenRejectsBadRoot(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{"", file, filepath.Join(file, "sub")} {
		if _, err := Open(root); err == nil {
			t.Errorf("Open(%q) = nil error, want one", root)
		}
	}
}

// readOnlyDir returns a directory this process cannot write: a read-only
// tmpfs when running as root, which ignores permission bits, else a 0555
// directory.
func readOnlyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		return dir
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_RDONLY, "size=64k"); err != nil {
		t.Skipf("cannot mount a read-only tmpfs as root: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func TestOpenUnwritableRoot(t *testing.T) {
	ro := readOnlyDir(t)
	for _, root := range []string{ro, filepath.Join(ro, "kernels")} {
		_, err := Open(root)
		if err == nil {
			t.Fatalf("Open(%s) on a read-only directory succeeded", root)
		}
		msg := err.Error()
		for _, want := range []string{root, "not a writable directory", "KTSTR_CACHE_DIR"} {
			if !strings.Contains(msg, want) {
				t.Errorf("Open(%s) error %q lacks %q", root, msg, want)
			}
		}
		if strings.Count(msg, " — ") != 1 {
			t.Errorf("Open(%s) error %q is not one \"what — fix\" message", root, msg)
		}
	}
}

func TestOpenReadOnlyCreatesNothing(t *testing.T) {
	parent := t.TempDir()
	missing := filepath.Join(parent, "kernels")
	c, err := OpenReadOnly(missing)
	if err != nil {
		t.Fatalf("OpenReadOnly of a missing root: %v", err)
	}
	entries, err := c.List()
	if err != nil || len(entries) != 0 {
		t.Errorf("List of a missing root = %v, %v; want no entries", entries, err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("OpenReadOnly created %s: %v", missing, err)
	}

	file := filepath.Join(parent, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReadOnly(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("OpenReadOnly of a file: err = %v, want one saying it is not a directory", err)
	}
}
