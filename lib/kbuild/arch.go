package kbuild

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// HostArch returns the kernel architecture name of this machine as ktstr
// writes it in cache keys: "x86_64" or "aarch64", else Go's GOARCH.
func HostArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

// ImageName returns the boot image file name for arch: "Image" for aarch64
// and "bzImage" otherwise.
func ImageName(arch string) string {
	if arch == "aarch64" || arch == "arm64" {
		return "Image"
	}
	return "bzImage"
}

// imageDir returns the directory, relative to the tree, where kbuild writes
// arch's boot image.
func imageDir(arch string) (string, error) {
	switch arch {
	case "x86_64", "amd64":
		return "arch/x86/boot", nil
	case "aarch64", "arm64":
		return "arch/arm64/boot", nil
	}
	return "", fmt.Errorf("kbuild: architecture %q is not supported — build on x86_64 or aarch64", arch)
}

// FindImage returns the path of the boot image built in dir for arch: the
// arch/*/boot image, or else one in the tree root.
func FindImage(dir, arch string) (string, error) {
	sub, err := imageDir(arch)
	if err != nil {
		return "", err
	}
	name := ImageName(arch)
	candidates := []string{filepath.Join(dir, sub, name), filepath.Join(dir, name)}
	for _, path := range candidates {
		if info, err := os.Stat(path); err == nil && info.Mode().IsRegular() {
			return path, nil
		}
	}
	return "", fmt.Errorf("kbuild: no %s in %s — looked for %s; check the build log for a failed final link", name, dir, strings.Join(candidates, " and "))
}

// FindVmlinux returns dir/vmlinux and true when it is a regular file.
func FindVmlinux(dir string) (string, bool) {
	path := filepath.Join(dir, "vmlinux")
	info, err := os.Stat(path)
	if err != nil || !info.Mode().IsRegular() {
		return "", false
	}
	return path, true
}
