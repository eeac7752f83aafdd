package smoke

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// guestInitSource is the guest init program. It imports only the standard
// library, so it builds in a throwaway module with no network access and no
// dependence on the caller's module or vendor directory.
//
//go:embed guestinit/main.go
var guestInitSource []byte

const guestInitGoMod = "module ktbuild.local/guestinit\n\ngo 1.22\n"

// goArch maps a kernel arch name to GOARCH.
func goArch(arch string) (string, error) {
	switch arch {
	case "x86_64", "amd64":
		return "amd64", nil
	case "aarch64", "arm64":
		return "arm64", nil
	}
	return "", fmt.Errorf("smoke: unsupported arch %q — use x86_64 or aarch64", arch)
}

// BuildGuestInit compiles the guest init for arch (x86_64 or aarch64) into a
// static Linux executable at outPath, with the go command found on PATH.
//
// The build runs with CGO_ENABLED=0 in a temporary module, with GOFLAGS and
// GOWORK cleared and GOTOOLCHAIN=local so the caller's settings cannot pull in
// a vendor directory, a workspace or a toolchain download.
func BuildGuestInit(ctx context.Context, arch, outPath string) error {
	goarch, err := goArch(arch)
	if err != nil {
		return err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("smoke: go command not found on PATH: %w — install Go or add it to PATH to build the guest init", err)
	}

	src, err := os.MkdirTemp("", "ktbuild-guestinit-*")
	if err != nil {
		return fmt.Errorf("smoke: create guest init build dir: %w", err)
	}
	defer os.RemoveAll(src)
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(guestInitGoMod), 0o644); err != nil {
		return fmt.Errorf("smoke: write guest init go.mod: %w", err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), guestInitSource, 0o644); err != nil {
		return fmt.Errorf("smoke: write guest init source: %w", err)
	}

	abs, err := filepath.Abs(outPath)
	if err != nil {
		return fmt.Errorf("smoke: guest init output path %s: %w", outPath, err)
	}
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-ldflags=-s -w", "-o", abs, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch,
		"GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("smoke: go build of the guest init for %s failed: %w\n%s", goarch, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// GuestInit returns the path of a guest init for arch in cacheDir, building
// it with BuildGuestInit when no build of the same source, GOARCH and Go
// version is there yet. An empty cacheDir means DefaultCacheDir.
//
// Concurrent callers may both build, but each renames its finished file
// into place, so a reader never sees a partial binary.
func GuestInit(ctx context.Context, arch, cacheDir string) (string, error) {
	goarch, err := goArch(arch)
	if err != nil {
		return "", err
	}
	if cacheDir == "" {
		if cacheDir, err = DefaultCacheDir(); err != nil {
			return "", err
		}
	}
	goVersion, err := goVersion(ctx)
	if err != nil {
		return "", err
	}

	sum := sha256.New()
	sum.Write(guestInitSource)
	fmt.Fprintf(sum, "\x00%s\x00%s", goarch, goVersion)
	path := filepath.Join(cacheDir, "guestinit-"+goarch+"-"+hex.EncodeToString(sum.Sum(nil))[:16])

	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
		return path, nil
	}

	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("smoke: create cache dir %s: %w", cacheDir, err)
	}
	// A unique name per build, so concurrent builds in one process or
	// several never write the same file.
	f, err := os.CreateTemp(cacheDir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("smoke: create guest init build file in %s: %w", cacheDir, err)
	}
	tmp := f.Name()
	f.Close()
	if err := BuildGuestInit(ctx, arch, tmp); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("smoke: store guest init in %s: %w", cacheDir, err)
	}
	return path, nil
}

// DefaultCacheDir returns the directory GuestInit caches builds in:
// ktbuild/smoke under os.UserCacheDir.
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("smoke: no user cache dir for the guest init: %w — set XDG_CACHE_HOME or HOME, or pass a cache dir", err)
	}
	return filepath.Join(dir, "ktbuild", "smoke"), nil
}

// goVersion returns the version of the go command on PATH, which is part of
// the cache key because a new toolchain produces a different binary.
func goVersion(ctx context.Context) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("smoke: go command not found on PATH: %w — install Go or add it to PATH to build the guest init", err)
	}
	cmd := exec.CommandContext(ctx, goTool, "env", "GOVERSION")
	cmd.Dir = os.TempDir() // outside any go.mod that could ask for another toolchain
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("smoke: go env GOVERSION failed: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}
