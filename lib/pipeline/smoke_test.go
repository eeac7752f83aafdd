package pipeline

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// These tests boot the fake kernel's bzImage under real QEMU (TCG). QEMU
// rejects it, so Smoke fails. What they check is where the console log goes.

// smokeSeeded returns a smoke request for the newest entry of a fresh cache
// holding one fake kernel, and the entry's directory.
func smokeSeeded(t *testing.T) (SmokeRequest, *bytes.Buffer, string) {
	t.Helper()
	root, key := seedCache(t)
	var stderr bytes.Buffer
	req := SmokeRequest{
		Request:      Request{CacheDir: root, Stderr: &stderr, Getenv: offline},
		Accel:        "tcg",
		Timeout:      5 * time.Second,
		guestInitDir: t.TempDir(),
	}
	return req, &stderr, filepath.Join(root, key)
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestSmokeLogGoesToLogsDir(t *testing.T) {
	req, stderr, entry := smokeSeeded(t)
	before := dirNames(t, entry)

	_, err := Smoke(context.Background(), req)
	if err == nil {
		t.Fatal("smoke of the fake kernel succeeded")
	}
	t.Logf("smoke error: %v", err)

	if after := dirNames(t, entry); !slices.Equal(before, after) {
		t.Errorf("entry %s changed from %q to %q", entry, before, after)
	}
	logs, _ := filepath.Glob(filepath.Join(req.CacheDir, ".logs", "smoke-"+filepath.Base(entry)+"-*-*.log"))
	if len(logs) != 1 {
		t.Fatalf("smoke logs in .logs = %q, want one\nstderr:\n%s", logs, stderr)
	}
	if !strings.Contains(stderr.String(), "console log "+logs[0]) {
		t.Errorf("stderr does not name the log %s:\n%s", logs[0], stderr)
	}
	if !strings.Contains(err.Error(), logs[0]) {
		t.Errorf("error does not name the log %s: %v", logs[0], err)
	}
	if text := readFile(t, logs[0]); !strings.Contains(text, "=== ktbuild smoke:") {
		t.Errorf("log %s lacks the boot header:\n%s", logs[0], text)
	}
}

// TestSmokeLogFallsBackToTemp makes .logs a file, so the cache takes no log
// as on a read-only mount; the boot must still run, logging to TMPDIR.
func TestSmokeLogFallsBackToTemp(t *testing.T) {
	req, stderr, entry := smokeSeeded(t)
	logsDir := filepath.Join(req.CacheDir, ".logs")
	if err := os.RemoveAll(logsDir); err != nil {
		t.Fatal(err)
	}
	writeFile(t, logsDir, "not a directory\n")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	_, err := Smoke(context.Background(), req)
	if err == nil {
		t.Fatal("smoke of the fake kernel succeeded")
	}
	if !strings.Contains(err.Error(), "under tcg") {
		t.Errorf("error = %v, want one from a tcg boot", err)
	}
	logs, _ := filepath.Glob(filepath.Join(tmp, "ktbuild-smoke-"+filepath.Base(entry)+"-*.log"))
	if len(logs) != 1 {
		t.Fatalf("smoke logs in TMPDIR = %q, want one\nstderr:\n%s", logs, stderr)
	}
	if !strings.Contains(stderr.String(), "console log "+logs[0]+" (the cache has no writable .logs") {
		t.Errorf("stderr does not name the fallback log %s and why:\n%s", logs[0], stderr)
	}
}

func TestCreateSmokeLog(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	root := t.TempDir()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	first, fallback, err := createSmokeLog(root, "6.12.1-tarball-x86_64-kc1", now)
	if err != nil {
		t.Fatal(err)
	}
	if fallback != nil {
		t.Errorf("fallback = %v with a writable root", fallback)
	}
	want := filepath.Join(root, ".logs", "smoke-6.12.1-tarball-x86_64-kc1-20260102T020405-"+strconvItoa(os.Getpid())+".log")
	if first != want {
		t.Errorf("path = %s, want %s", first, want)
	}
	second, _, err := createSmokeLog(root, "6.12.1-tarball-x86_64-kc1", now)
	if err != nil {
		t.Fatal(err)
	}
	if second != strings.TrimSuffix(first, ".log")+"-2.log" {
		t.Errorf("second log in the same second = %s, want a -2 name beside %s", second, first)
	}

	noEntry, fallback, err := createSmokeLog("", "", now)
	if err != nil {
		t.Fatal(err)
	}
	if fallback != nil {
		t.Errorf("fallback = %v without a root", fallback)
	}
	if filepath.Dir(noEntry) != tmp || !strings.HasPrefix(filepath.Base(noEntry), "ktbuild-smoke-kernel-") {
		t.Errorf("log without a root = %s, want a ktbuild-smoke-kernel- log in %s", noEntry, tmp)
	}

	t.Setenv("TMPDIR", filepath.Join(tmp, "missing"))
	blocked := filepath.Join(root, "blocked")
	if err := os.Mkdir(blocked, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(blocked, ".logs"), "")
	_, fallback, err = createSmokeLog(blocked, "k", now)
	if fallback == nil {
		t.Error("no fallback reason when .logs is a file")
	}
	if err == nil || !strings.Contains(err.Error(), "smoke console log: cannot create one in "+filepath.Join(tmp, "missing")) {
		t.Errorf("error = %v, want one naming the missing temp dir", err)
	}
}
