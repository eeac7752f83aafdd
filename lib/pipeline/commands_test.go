package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ktstr/ktbuild/internal/fakekernel"
	"github.com/ktstr/ktbuild/lib/flock"
	"github.com/ktstr/ktbuild/lib/kernelorg/kernelorgtest"
)

func TestSourceFlagsSpec(t *testing.T) {
	str := func(s string) *string { return &s }
	cases := []struct {
		name          string
		flags         SourceFlags
		want, wantErr string
	}{
		{"none", SourceFlags{}, "", ""},
		{"absolute path", SourceFlags{Source: str("/src/linux")}, "/src/linux", ""},
		{"bare directory name", SourceFlags{Source: str("linux")}, "./linux", ""},
		{"bare tarball name", SourceFlags{Source: str("linux-6.12.tar.xz")}, "./linux-6.12.tar.xz", ""},
		{"version", SourceFlags{Version: str("6.12")}, "6.12", ""},
		{"range", SourceFlags{Version: str("6.10..6.12")}, "6.10..6.12", ""},
		{"git", SourceFlags{Git: str("https://example.invalid/linux.git"), Ref: str("for-next/sched")}, "git+https://example.invalid/linux.git#for-next/sched", ""},
		{"empty source", SourceFlags{Source: str("")}, "", "-source is empty"},
		{"empty version", SourceFlags{Version: str(" ")}, "", "-version is empty"},
		{"not a version", SourceFlags{Version: str("6.x")}, "", "-version=6.x is not a kernel version"},
		{"ref without git", SourceFlags{Ref: str("main")}, "", "-ref=main needs -git"},
		{"git without ref", SourceFlags{Git: str("https://example.invalid/linux.git")}, "", "needs -ref"},
		{"source and version", SourceFlags{Source: str("/src/linux"), Version: str("6.12")}, "", "-source and -version"},
		{"version and git", SourceFlags{Version: str("6.12"), Git: str("u"), Ref: str("r")}, "", "-version and -git"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.flags.Spec()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Spec() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// seedCache builds one fake kernel into a fresh cache and adds a corrupt
// entry beside it.
func seedCache(t *testing.T) (root string, key string) {
	t.Helper()
	tree := gitTree(t, fakekernel.Options{})
	extra := filepath.Join(t.TempDir(), "extra.kconfig")
	writeFile(t, extra, "CONFIG_FAKE_PARENT=y\n")
	req, out := testRequest(t, tree, nil)
	req.ExtraKconfig = extra
	res, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	corrupt := filepath.Join(req.CacheDir, "6.1.0-tarball-x86_64-kc00000000")
	if err := os.MkdirAll(corrupt, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(corrupt, "metadata.json"), `{"version": "6.1.0", "sour`)
	return req.CacheDir, res.Key
}

func TestListShowsTagsAndCorruptEntries(t *testing.T) {
	root, key := seedCache(t)
	var stdout, stderr bytes.Buffer
	if err := List(context.Background(), ListRequest{CacheDir: root, Stdout: &stdout, Stderr: &stderr, Getenv: offline}); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if strings.HasSuffix(line, " ") {
			t.Errorf("row ends in spaces: %q", line)
		}
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and 2 rows, got:\n%s", stdout.String())
	}
	if !strings.HasPrefix(lines[1], key) || !strings.Contains(lines[1], "extra kconfig") {
		t.Errorf("valid row should come first with its extra kconfig tag: %q", lines[1])
	}
	if !strings.Contains(lines[2], "corrupt (truncated)") {
		t.Errorf("corrupt row should come last, classed truncated: %q", lines[2])
	}
	if gap := strings.Index(lines[0], "ARCH") - strings.Index(lines[0], "SOURCE"); gap > 20 {
		t.Errorf("the corrupt row's reason widens the SOURCE column to %d characters:\n%s", gap, stdout.String())
	}
	if !strings.Contains(stderr.String(), "extra kconfig:") {
		t.Errorf("no legend for the extra kconfig tag on stderr: %q", stderr.String())
	}
}

func TestListJSON(t *testing.T) {
	root, key := seedCache(t)
	var stdout, stderr bytes.Buffer
	if err := List(context.Background(), ListRequest{CacheDir: root, JSON: true, Stdout: &stdout, Stderr: &stderr, Getenv: offline}); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &rows); err != nil {
		t.Fatalf("cache:list -json is not a JSON array: %v\n%s", err, stdout.String())
	}
	if len(rows) != 2 {
		t.Fatalf("want 2 rows, got %d", len(rows))
	}
	if rows[0]["key"] != key || rows[0]["kconfig_status"] != "current" || rows[0]["metadata"] == nil {
		t.Errorf("valid row = %v", rows[0])
	}
	if rows[1]["status"] != "corrupt" || rows[1]["corrupt_kind"] != "truncated" {
		t.Errorf("corrupt row = %v", rows[1])
	}
}

func TestCleanWithoutTerminalRefuses(t *testing.T) {
	root, _ := seedCache(t)
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	var stderr bytes.Buffer
	err = Clean(context.Background(), CleanRequest{CacheDir: root, Stdin: devNull, Stdout: &stderr, Stderr: &stderr})
	if err == nil || !strings.Contains(err.Error(), "-force") {
		t.Fatalf("clean without a terminal: want an error suggesting -force, got %v", err)
	}
	if n := len(cacheEntries(t, root)); n != 2 {
		t.Errorf("refused clean removed entries: %d left, want 2", n)
	}
}

func TestCleanKeepsNewestValid(t *testing.T) {
	root, key := seedCache(t)
	one := 1
	var stderr bytes.Buffer
	if err := Clean(context.Background(), CleanRequest{CacheDir: root, Keep: &one, Force: true, Stdout: &stderr, Stderr: &stderr}); err != nil {
		t.Fatal(err)
	}
	if got := cacheEntries(t, root); len(got) != 1 || got[0] != key {
		t.Errorf("after -keep=1: entries %v, want only %s (corrupt ones never keep a slot)", got, key)
	}
}

func TestCleanRejectsConflictingFlags(t *testing.T) {
	zero := 0
	err := Clean(context.Background(), CleanRequest{CacheDir: t.TempDir(), Keep: &zero, CorruptOnly: true})
	if err == nil || !strings.Contains(err.Error(), "-corruptonly") {
		t.Errorf("want a conflict error, got %v", err)
	}
}

func offline(name string) string {
	if name == OfflineEnv {
		return "1"
	}
	return ""
}

func TestListTagsEndOfLifeSeries(t *testing.T) {
	root, key := seedCache(t)
	srv := kernelorgtest.New(t)
	srv.SetReleases(kernelorgtest.Row{Moniker: "stable", Version: "6.13.2"})
	env := map[string]string{"KTSTR_KERNEL_ORG_URL": srv.URL}
	var stdout, stderr bytes.Buffer

	err := List(context.Background(), ListRequest{CacheDir: root, Stdout: &stdout, Stderr: &stderr, Getenv: func(n string) string { return env[n] }})
	if err != nil {
		t.Fatal(err)
	}
	row := regexpLine(t, stdout.String(), key)
	if !strings.Contains(row, "EOL") {
		t.Errorf("6.12 is gone from releases.json but the row has no EOL tag: %q", row)
	}
	if !strings.Contains(stderr.String(), "EOL:") {
		t.Errorf("no legend line for EOL: %q", stderr.String())
	}
}

func TestListSaysOnceWhenReleasesUnavailable(t *testing.T) {
	root, _ := seedCache(t)
	srv := kernelorgtest.New(t)
	srv.SetFile("/releases.json", []byte("<html>maintenance</html>"), "text/html")
	env := map[string]string{"KTSTR_KERNEL_ORG_URL": srv.URL}
	var stdout, stderr bytes.Buffer

	if err := List(context.Background(), ListRequest{CacheDir: root, Stdout: &stdout, Stderr: &stderr, Getenv: func(n string) string { return env[n] }}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(stderr.String(), "no EOL tags"); n != 1 {
		t.Errorf("want one note about missing EOL tags, got %d:\n%s", n, stderr.String())
	}
	if strings.Contains(stdout.String(), "EOL") {
		t.Errorf("EOL tag shown without a release list:\n%s", stdout.String())
	}
}

func TestListNotesForeignDirectories(t *testing.T) {
	root, key := seedCache(t)
	for _, name := range []string{"projects", "Documents"} {
		if err := os.MkdirAll(filepath.Join(root, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	if err := List(context.Background(), ListRequest{CacheDir: root, Stdout: &stdout, Stderr: &stderr, Getenv: offline}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout.String(), "projects") || strings.Contains(stdout.String(), "Documents") {
		t.Errorf("foreign directories listed as entries:\n%s", stdout.String())
	}
	if !strings.Contains(stdout.String(), key) {
		t.Errorf("the real entry %s is missing:\n%s", key, stdout.String())
	}
	if !strings.Contains(stderr.String(), "ignored 2 directories that are not cache entries") {
		t.Errorf("no note about the 2 foreign directories on stderr: %q", stderr.String())
	}
}

func TestListAndPathOnReadOnlyCache(t *testing.T) {
	root, key := seedCache(t)
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "--bind", root, ro).CombinedOutput(); err != nil {
		t.Skipf("cannot bind-mount a cache (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", ro).Run() })
	if out, err := exec.Command("mount", "-o", "remount,bind,ro", ro).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(ro, "probe"), nil, 0o644); err == nil {
		t.Fatal("the read-only mount is writable, so the test proves nothing")
	}

	var stdout, stderr bytes.Buffer
	if err := List(context.Background(), ListRequest{CacheDir: ro, Stdout: &stdout, Stderr: &stderr, Getenv: offline}); err != nil {
		t.Fatalf("cache:list on a read-only cache: %v", err)
	}
	if !strings.Contains(stdout.String(), key) {
		t.Errorf("cache:list on a read-only cache lacks %s:\n%s", key, stdout.String())
	}

	req, _ := testRequest(t, key, nil)
	req.CacheDir = ro
	res, err := Path(context.Background(), req)
	if err != nil {
		t.Fatalf("kernel:path on a read-only cache: %v", err)
	}
	if want := filepath.Join(ro, key); !strings.HasPrefix(res.ImagePath, want) {
		t.Errorf("kernel:path = %s, want a path under %s", res.ImagePath, want)
	}
}

func TestCacheRootFromGetenv(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	root := filepath.Join(t.TempDir(), "injected")
	env := map[string]string{"KTSTR_CACHE_DIR": root, OfflineEnv: "1"}
	req, out := testRequest(t, tree, env)
	req.CacheDir = ""
	t.Setenv("KTSTR_CACHE_DIR", filepath.Join(t.TempDir(), "process"))

	res, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if !strings.HasPrefix(res.ImagePath, root+string(filepath.Separator)) {
		t.Errorf("image %s is not under the injected cache root %s", res.ImagePath, root)
	}

	var stdout bytes.Buffer
	if err := List(context.Background(), ListRequest{Stdout: &stdout, Stderr: io.Discard, Getenv: req.Getenv}); err != nil {
		t.Fatalf("list: %v", err)
	}
	if !strings.Contains(stdout.String(), res.Key) {
		t.Errorf("list through the injected environment does not show %s:\n%s", res.Key, stdout.String())
	}
}

func TestListAndCleanNilWriters(t *testing.T) {
	root := t.TempDir()
	if err := List(context.Background(), ListRequest{CacheDir: root, Getenv: offline}); err != nil {
		t.Errorf("list with nil writers: %v", err)
	}
	if err := Clean(context.Background(), CleanRequest{CacheDir: root, Force: true}); err != nil {
		t.Errorf("clean with nil writers: %v", err)
	}
}

func TestPathDirtyTreeNotCached(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	appendFile(t, filepath.Join(tree, "init", "main.c"), "/* edit */\n")
	req, _ := testRequest(t, tree, nil)

	_, err := Path(context.Background(), req)
	if !errors.Is(err, ErrNotCached) {
		t.Errorf("path of a dirty tree: %v is not ErrNotCached", err)
	}
	if err == nil || !strings.Contains(err.Error(), "uncommitted changes") {
		t.Errorf("path of a dirty tree: want a message naming the uncommitted changes, got %v", err)
	}
}

func TestCleanSweepsLeftovers(t *testing.T) {
	root := t.TempDir()
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	dead := strconvItoa(exited.Process.Pid)
	leftovers := []string{
		workPrefix + dead + "-0123456789ab",
		".tmp-6.12.0-tarball-x86_64-kcb7244b33-" + dead,
		".remote-0123456789abcdef",
	}
	// A push in progress holds its scratch directory's lock.
	live := ".remote-fedcba9876543210"
	for _, name := range append([]string{live, ".locks"}, leftovers...) {
		if err := os.MkdirAll(filepath.Join(root, name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, name, "partial"), "half-written\n")
	}
	lock, err := flock.TryLock(filepath.Join(root, ".locks", live+".lock"), flock.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()

	var stderr bytes.Buffer
	if err := Clean(context.Background(), CleanRequest{CacheDir: root, Force: true, Stdout: io.Discard, Stderr: &stderr}); err != nil {
		t.Fatalf("clean: %v\n%s", err, stderr.String())
	}
	for _, name := range leftovers {
		if _, err := os.Stat(filepath.Join(root, name)); !os.IsNotExist(err) {
			t.Errorf("leftover %s is still there after kernel:clean: %v", name, err)
		}
		if !strings.Contains(stderr.String(), name) {
			t.Errorf("kernel:clean does not name the removed %s:\n%s", name, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(root, live)); err != nil {
		t.Errorf("the scratch directory of a live push was removed: %v", err)
	}
	if strings.Contains(stderr.String(), "nothing to remove") {
		t.Errorf("kernel:clean removed leftovers and still said nothing to remove:\n%s", stderr.String())
	}
}
