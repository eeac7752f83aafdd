// Package source parses kernel specs and acquires kernel source trees: local
// directories, local or downloaded tarballs, and the git state of a tree.
package source

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// SpecKind is the kind of source a kernel spec names.
type SpecKind int

// The spec kinds. ParseSpec tries git, range, path, version and cache key,
// in that order.
const (
	SpecPath SpecKind = iota
	SpecVersion
	SpecGit
	SpecRange
	SpecCacheKey
)

// String returns the kind's name as messages print it.
func (k SpecKind) String() string {
	switch k {
	case SpecPath:
		return "path"
	case SpecVersion:
		return "version"
	case SpecGit:
		return "git"
	case SpecRange:
		return "range"
	case SpecCacheKey:
		return "cache key"
	}
	return "SpecKind(" + strconv.Itoa(int(k)) + ")"
}

// Spec is a parsed kernel spec. Raw is the text as given; the other fields
// are set according to Kind:
//   - SpecPath: Path (with a leading ~ expanded, otherwise as given)
//   - SpecVersion: Version
//   - SpecGit: GitURL and GitRef
//   - SpecRange: From and To, both versions with From <= To
//   - SpecCacheKey: Key
type Spec struct {
	Kind    SpecKind
	Raw     string
	Path    string
	Version string
	GitURL  string
	GitRef  string
	From    string
	To      string
	Key     string
}

// specHint lists the accepted spec forms; every spec error ends with it.
const specHint = "pass a path (./linux, ~/src/linux, /tmp/linux-6.12.tar.xz), a version (6.12, 6.12.3, 6.13-rc2), a range (6.10..6.12), git+URL#REF or a cache key"

var (
	// versionRE is MAJOR.MINOR[.PATCH][-rcN].
	versionRE = regexp.MustCompile(`^([0-9]+)\.([0-9]+)(?:\.([0-9]+))?(?:-rc([0-9]+))?$`)
	// versionLikeRE matches text that is meant as a version but may be
	// malformed, so "6.12.1.4" gets a version error instead of becoming a
	// cache key that matches no entry. Keys such as "6.12-tarball-..." do
	// not match it.
	versionLikeRE = regexp.MustCompile(`^[0-9]+(\.[0-9]*)+(-rc[0-9]*)?$`)
)

// ParseSpec parses a kernel spec. The first matching form wins:
// git+URL#REF (split at the last '#'), A..B of two versions, a path (the
// text contains '/' or starts with '.' or '~'), MAJOR.MINOR[.PATCH][-rcN],
// and anything else is a cache key.
func ParseSpec(s string) (Spec, error) {
	raw := s
	s = strings.TrimSpace(s)
	spec := Spec{Raw: raw}
	if s == "" {
		return spec, fmt.Errorf("kernel spec: empty — %s", specHint)
	}
	if i := strings.IndexFunc(s, isControl); i >= 0 {
		return spec, fmt.Errorf("kernel spec %q: contains control character %q — %s", raw, s[i], specHint)
	}

	if rest, ok := strings.CutPrefix(s, "git+"); ok {
		return parseGitSpec(spec, rest)
	}

	if looksLikeRange(s) {
		return parseRange(spec, s)
	}

	if strings.Contains(s, "/") || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "~") {
		p, err := expandHome(s)
		if err != nil {
			return spec, fmt.Errorf("kernel spec %q: %w", raw, err)
		}
		spec.Kind = SpecPath
		spec.Path = p
		return spec, nil
	}

	if versionRE.MatchString(s) {
		spec.Kind = SpecVersion
		spec.Version = s
		return spec, nil
	}
	if versionLikeRE.MatchString(s) {
		return spec, fmt.Errorf("kernel spec %q: malformed version — write MAJOR.MINOR[.PATCH][-rcN], e.g. 6.12, 6.12.3 or 6.13-rc2", raw)
	}

	if strings.ContainsAny(s, " \t\\") {
		return spec, fmt.Errorf("kernel spec %q: a cache key cannot contain spaces or backslashes — %s", raw, specHint)
	}
	spec.Kind = SpecCacheKey
	spec.Key = s
	return spec, nil
}

func parseGitSpec(spec Spec, rest string) (Spec, error) {
	i := strings.LastIndexByte(rest, '#')
	if i < 0 {
		return spec, fmt.Errorf("kernel spec %q: git spec has no #REF — write git+URL#REF, e.g. git+https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git#v6.12", spec.Raw)
	}
	url, ref := strings.TrimSpace(rest[:i]), strings.TrimSpace(rest[i+1:])
	if url == "" {
		return spec, fmt.Errorf("kernel spec %q: git spec has an empty URL — write git+URL#REF", spec.Raw)
	}
	if ref == "" {
		return spec, fmt.Errorf("kernel spec %q: git spec has an empty ref after '#' — name a branch, tag or commit", spec.Raw)
	}
	spec.Kind = SpecGit
	spec.GitURL = url
	spec.GitRef = ref
	return spec, nil
}

// looksLikeRange reports whether s is meant as A..B: it holds ".." and is
// not a path. A cache key can never contain "..", so such text is either a
// range or an error.
func looksLikeRange(s string) bool {
	if !strings.Contains(s, "..") || strings.Contains(s, "/") {
		return false
	}
	return !strings.HasPrefix(s, ".") && !strings.HasPrefix(s, "~")
}

func parseRange(spec Spec, s string) (Spec, error) {
	from, to, _ := strings.Cut(s, "..")
	if !versionRE.MatchString(from) || !versionRE.MatchString(to) {
		return spec, fmt.Errorf("kernel spec %q: malformed range — write FROM..TO with two versions, e.g. 6.10..6.12", spec.Raw)
	}
	if CompareVersions(from, to) > 0 {
		return spec, fmt.Errorf("kernel spec %q: range starts after it ends — write the older version first (%s..%s)", spec.Raw, to, from)
	}
	spec.Kind = SpecRange
	spec.From = from
	spec.To = to
	return spec, nil
}

// CompareVersions compares two MAJOR.MINOR[.PATCH][-rcN] versions and
// returns -1, 0 or +1. A missing patch counts as 0 and a release candidate
// sorts before its release (6.13-rc7 < 6.13). Text that is not a version
// sorts before every version, and two such texts compare as strings.
func CompareVersions(a, b string) int {
	va, okA := parseVersion(a)
	vb, okB := parseVersion(b)
	switch {
	case !okA && !okB:
		return strings.Compare(a, b)
	case !okA:
		return -1
	case !okB:
		return 1
	}
	for i := range va {
		if va[i] != vb[i] {
			if va[i] < vb[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// parseVersion returns major, minor, patch and an rc rank where a release
// ranks above every release candidate.
func parseVersion(s string) ([4]uint64, bool) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return [4]uint64{}, false
	}
	var v [4]uint64
	for i, part := range m[1:4] {
		if part == "" {
			continue
		}
		n, err := strconv.ParseUint(part, 10, 64)
		if err != nil {
			return [4]uint64{}, false
		}
		v[i] = n
	}
	v[3] = ^uint64(0)
	if m[4] != "" {
		rc, err := strconv.ParseUint(m[4], 10, 64)
		if err != nil {
			return [4]uint64{}, false
		}
		v[3] = rc
	}
	return v, true
}

// expandHome replaces a leading "~" or "~user" with that home directory.
func expandHome(p string) (string, error) {
	if !strings.HasPrefix(p, "~") {
		return p, nil
	}
	name, rest, _ := strings.Cut(p[1:], "/")
	var home string
	if name == "" {
		h, err := os.UserHomeDir()
		if err != nil || h == "" {
			return "", fmt.Errorf("cannot expand ~: HOME is not set — set HOME or write the path without ~")
		}
		home = h
	} else {
		u, err := user.Lookup(name)
		if err != nil {
			return "", fmt.Errorf("cannot expand ~%s: %w — write the path without ~", name, err)
		}
		home = u.HomeDir
	}
	if rest == "" {
		return home, nil
	}
	return filepath.Join(home, rest), nil
}

func isControl(r rune) bool {
	return r < 0x20 && r != '\t' || r == 0x7f
}
