package cache

import (
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"
)

// MaxKeyLen is the longest cache key accepted, in bytes. A key becomes the
// directory name {key}, the lock file {key}.lock and the store directory
// .tmp-{key}-{pid}; the last must still fit the 255-byte name limit of Linux
// filesystems.
const MaxKeyLen = 240

// maxSafeRefLen bounds the ref part of a git key so that the whole key stays
// well under MaxKeyLen.
const maxSafeRefLen = 100

// ValidateKey returns an error unless key can name a cache entry: non-empty,
// not only whitespace, at most MaxKeyLen bytes, without "/", "\", NUL or "..",
// and not starting with ".".
func ValidateKey(key string) error {
	problem := ""
	switch {
	case strings.TrimSpace(key) == "":
		problem = "is empty"
	case strings.ContainsAny(key, `/\`):
		problem = "contains a path separator"
	case strings.ContainsRune(key, 0):
		problem = "contains a NUL byte"
	case strings.Contains(key, ".."):
		problem = `contains ".."`
	case strings.HasPrefix(key, "."):
		problem = `starts with "." (names starting with "." are reserved for locks and stores in progress)`
	case len(key) > MaxKeyLen:
		problem = fmt.Sprintf("is %d bytes long, more than the maximum of %d", len(key), MaxKeyLen)
	}
	if problem == "" {
		return nil
	}
	return fmt.Errorf("invalid cache key %q: it %s — cache keys look like 6.12.3-tarball-x86_64-kc1a2b3c4d", key, problem)
}

// validateImageName returns an error unless name is a plain file name that
// does not collide with the other files of an entry.
func validateImageName(name string) error {
	problem := ""
	switch {
	case name == "":
		problem = "is empty"
	case strings.ContainsAny(name, `/\`):
		problem = "contains a path separator"
	case strings.ContainsRune(name, 0):
		problem = "contains a NUL byte"
	case strings.Contains(name, ".."):
		problem = `contains ".."`
	case name == MetadataName || name == VmlinuxName || name == BuildLogName:
		problem = "is the name of another file in a cache entry"
	}
	if problem == "" {
		return nil
	}
	return fmt.Errorf("invalid image name %q: it %s — pass the boot image's file name, such as bzImage or Image", name, problem)
}

// KconfigSuffix returns the key suffix for a kconfig fragment hash:
// "kc{fragmentHash}", or "kc{fragmentHash}-xkc{extraHash}" when an extra
// fragment was merged. An empty extraHash means no extra fragment.
func KconfigSuffix(fragmentHash, extraHash string) string {
	if extraHash == "" {
		return "kc" + fragmentHash
	}
	return "kc" + fragmentHash + "-xkc" + extraHash
}

// TarballKey returns the key of a kernel built from a release tarball:
// "{version}-tarball-{arch}-{suffix}".
func TarballKey(version, arch, suffix string) string {
	return version + "-tarball-" + arch + "-" + suffix
}

// GitKey returns the key of a kernel built from a git ref:
// "{SafeRef(ref)}-git-{hash7}-{arch}-{suffix}". The raw ref belongs in the
// entry's metadata.
func GitKey(ref, hash7, arch, suffix string) string {
	return SafeRef(ref) + "-git-" + hash7 + "-" + arch + "-" + suffix
}

// LocalKey returns the key of a kernel built from a clean local git tree:
// "local-{hash7}-{arch}-{suffix}", or "local-{hash7}-{arch}-cfg{configHash}-{suffix}"
// when the tree had its own .config before the build. An empty configHash
// means no such .config.
func LocalKey(hash7, arch, configHash, suffix string) string {
	if configHash == "" {
		return "local-" + hash7 + "-" + arch + "-" + suffix
	}
	return "local-" + hash7 + "-" + arch + "-cfg" + configHash + "-" + suffix
}

// LocalUnknownKey returns the key of a kernel built from a dirty or non-git
// local tree: "local-unknown-{crc32(canonicalPath)}-{arch}-{suffix}". Such a
// build cannot be identified by its content, so callers never store it.
func LocalUnknownKey(canonicalPath, arch, suffix string) string {
	return "local-unknown-" + CRC32Hex([]byte(canonicalPath)) + "-" + arch + "-" + suffix
}

// SafeRef returns a form of a git ref that can be part of a cache key.
//
// ASCII letters, digits, "_", "+", "-" and "." are kept, and every other
// byte becomes "_", so "refs/heads/main" becomes "refs_heads_main". A "."
// that starts the ref or follows another "." also becomes "_". A result
// longer than 100 bytes is cut and ends in "_" and the CRC32 of the whole
// ref. Two refs that differ only in replaced bytes map to the same text, but
// their keys still differ unless both refs name the same commit, which builds
// the same kernel.
func SafeRef(ref string) string {
	var b strings.Builder
	b.Grow(len(ref))
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == '+', c == '-':
			b.WriteByte(c)
		case c == '.' && i > 0 && ref[i-1] != '.':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	safe := b.String()
	if len(safe) > maxSafeRefLen {
		sum := CRC32Hex([]byte(ref))
		safe = safe[:maxSafeRefLen-len(sum)-1] + "_" + sum
	}
	return safe
}

// CRC32Hex returns the CRC32 (IEEE) of b as 8 lowercase hex digits, the hash
// that ktstr uses for kconfig fragments, .config files and paths.
func CRC32Hex(b []byte) string {
	return fmt.Sprintf("%08x", crc32.ChecksumIEEE(b))
}

// FileCRC32 returns the CRC32Hex of the contents of the file at path.
func FileCRC32(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("crc32 of %s: %w", path, err)
	}
	defer f.Close()

	h := crc32.NewIEEE()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("crc32 of %s: read failed: %w", path, err)
	}
	return fmt.Sprintf("%08x", h.Sum32()), nil
}

// LooksLikeKey reports whether name has the shape of a key that TarballKey,
// GitKey, LocalKey or LocalUnknownKey build: a valid key ending in
// "-kc{8 hex}" or "-kc{8 hex}-xkc{8 hex}" after one of the source forms.
// List uses it to tell entries without a metadata.json from directories that
// are not part of the cache.
func LooksLikeKey(name string) bool {
	if ValidateKey(name) != nil {
		return false
	}
	rest, ok := cutHexSuffix(name, "-xkc")
	if !ok {
		rest = name
	}
	rest, ok = cutHexSuffix(rest, "-kc")
	if !ok {
		return false
	}

	if body, ok := strings.CutPrefix(rest, "local-"); ok && looksLocal(body) {
		return true
	}
	// A git ref or a version may also start with "local-", so a failed
	// local match falls through.
	i := strings.LastIndexByte(rest, '-')
	if i < 0 || !isArch(rest[i+1:]) {
		return false
	}
	head := rest[:i]
	if version, ok := strings.CutSuffix(head, "-tarball"); ok && version != "" {
		return true
	}
	j := strings.LastIndexByte(head, '-')
	if j < 0 || !isHex(head[j+1:], 7, 40) {
		return false
	}
	ref, ok := strings.CutSuffix(head[:j], "-git")
	return ok && ref != ""
}

// looksLocal reports whether body, a key without "local-" and the kconfig
// suffix, is "{hash}-{arch}", "{hash}-{arch}-cfg{8 hex}" or
// "unknown-{8 hex}-{arch}".
func looksLocal(body string) bool {
	parts := strings.Split(body, "-")
	switch {
	case len(parts) == 3 && parts[0] == "unknown":
		return isHex(parts[1], 8, 8) && isArch(parts[2])
	case len(parts) == 2:
		return isHex(parts[0], 7, 40) && isArch(parts[1])
	case len(parts) == 3:
		cfg, ok := strings.CutPrefix(parts[2], "cfg")
		return ok && isHex(parts[0], 7, 40) && isArch(parts[1]) && isHex(cfg, 8, 8)
	}
	return false
}

// cutHexSuffix removes marker followed by 8 lowercase hex digits from the
// end of s.
func cutHexSuffix(s, marker string) (string, bool) {
	n := len(marker) + 8
	if len(s) <= n || s[len(s)-n:len(s)-8] != marker || !isHex(s[len(s)-8:], 8, 8) {
		return s, false
	}
	return s[:len(s)-n], true
}

// isHex reports whether s is lo to hi lowercase hex digits.
func isHex(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// isArch reports whether s can be an architecture name in a key, such as
// x86_64 or aarch64.
func isArch(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
