package source

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// OriginKind is the kind of source an acquired tree came from.
type OriginKind int

// The origins of an acquired tree.
const (
	OriginTarball OriginKind = iota
	OriginGit
	OriginLocal
)

// String returns the origin's name as metadata.json spells the source type.
func (o OriginKind) String() string {
	switch o {
	case OriginTarball:
		return "tarball"
	case OriginGit:
		return "git"
	case OriginLocal:
		return "local"
	}
	return "OriginKind(" + strconv.Itoa(int(o)) + ")"
}

// TarballFile identifies the local tarball a tree was extracted from, so a
// later build of the same file can hit the cache before extracting it.
type TarballFile struct {
	Path    string // canonical path
	Size    int64
	ModTime time.Time
	SHA256  string // hex SHA-256 of the file, computed while extracting it
}

// Acquired is a kernel source tree ready to configure and build.
type Acquired struct {
	Dir       string // top directory of the tree (holds Makefile and Kconfig)
	Version   string // from the spec, or from the tree's Makefile
	Origin    OriginKind
	GitHash   string // 7-character short hash of HEAD; "" when unknown or dirty
	Ref       string // git ref for git sources
	LocalPath string // canonical path of a local tree
	Dirty     bool
	IsGit     bool
	IsTemp    bool         // Dir lives in a temp dir that Cleanup removes
	Tarball   *TarballFile // set when the tree was extracted from a local tarball
	// OnlyConfigDirty marks a git tree whose only change is to a .config
	// tracked in git.
	OnlyConfigDirty bool
}

// Cleanup removes the temp tree when IsTemp is set, and does nothing
// otherwise. It removes the .extract-* dir around a Dir that Extract
// returned, and Dir itself for any other temp tree, such as a clone.
// Calling it again after success does nothing.
func (a *Acquired) Cleanup() error {
	if a == nil || !a.IsTemp {
		return nil
	}
	if a.Dir == "" {
		return nil
	}
	root := extractRoot(a.Dir)
	if root == "" {
		root = a.Dir
	}
	if err := os.RemoveAll(root); err != nil {
		return fmt.Errorf("source: remove temp tree %s: %w — delete it by hand", root, err)
	}
	a.IsTemp = false
	return nil
}

// OpenLocal opens a local kernel tree: path must be a directory holding
// Makefile and Kconfig. The returned tree has its canonical path (absolute,
// symlinks resolved), the version from its Makefile and its git state.
func OpenLocal(path string) (*Acquired, error) {
	if path == "" {
		return nil, errors.New("source: empty path — pass the top directory of a kernel source tree")
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("source: %s does not exist — pass the top directory of a kernel source tree, a kernel tarball (.tar.xz, .tar.gz, .tar.bz2, .tar.zst) or a version such as 6.12", path)
	}
	if err != nil {
		return nil, fmt.Errorf("source: cannot read %s: %w — check the path and its permissions", path, err)
	}
	if !fi.IsDir() {
		if IsTarball(path) {
			return nil, fmt.Errorf("source: %s is a tarball, not a kernel source tree — extract it with ExtractFile or pass it as a path spec", path)
		}
		return nil, fmt.Errorf("source: %s is not a kernel source tree (it is a file) — pass the directory holding Makefile and Kconfig, or a kernel tarball", path)
	}

	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("source: resolve %s: %w", path, err)
	}
	canonical, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("source: resolve symlinks in %s: %w", abs, err)
	}
	if err := checkKernelTree(canonical, path); err != nil {
		return nil, err
	}

	version, err := ReadMakefileVersion(canonical)
	if err != nil {
		return nil, err
	}
	state, err := ProbeGit(canonical)
	if err != nil {
		return nil, err
	}
	return &Acquired{
		Dir:       canonical,
		Version:   version,
		Origin:    OriginLocal,
		GitHash:   state.Hash,
		LocalPath: canonical,
		Dirty:     state.Dirty,
		IsGit:     state.IsGit,

		OnlyConfigDirty: state.OnlyConfigDirty,
	}, nil
}

// checkKernelTree returns a "not a kernel source tree" error unless dir
// contains a Makefile and a Kconfig file. given is the path as the user
// wrote it.
func checkKernelTree(dir, given string) error {
	var missing []string
	for _, name := range []string{"Makefile", "Kconfig"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	where := given
	if given != dir {
		where = fmt.Sprintf("%s (%s)", given, dir)
	}
	return fmt.Errorf("source: %s is not a kernel source tree (no %s) — pass the top directory of a kernel tree, the one holding Makefile and Kconfig", where, strings.Join(missing, " or "))
}

// ReadMakefileVersion returns the kernel version that dir/Makefile declares,
// built as make's KERNELVERSION is: VERSION.PATCHLEVEL.SUBLEVEL followed by
// EXTRAVERSION, with .SUBLEVEL left out when SUBLEVEL is empty or missing.
func ReadMakefileVersion(dir string) (string, error) {
	path := filepath.Join(dir, "Makefile")
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("source: read kernel version: %w — pass the top directory of a kernel tree", err)
	}
	defer f.Close()
	return parseMakefileVersion(f, path)
}

// parseMakefileVersion reads the version variables from a kernel Makefile.
// The path argument names the file in errors.
func parseMakefileVersion(r io.Reader, path string) (string, error) {
	vars := map[string]string{}
	versionVars := map[string]bool{"VERSION": true, "PATCHLEVEL": true, "SUBLEVEL": true, "EXTRAVERSION": true}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() && len(vars) < len(versionVars) {
		name, value, ok := parseAssignment(sc.Text())
		if !ok || !versionVars[name] {
			continue
		}
		if _, seen := vars[name]; !seen {
			vars[name] = value
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("source: read %s: %w", path, err)
	}

	version, ok := vars["VERSION"]
	if !ok || version == "" {
		return "", fmt.Errorf("source: %s sets no VERSION — not a kernel Makefile; pass the top directory of a kernel tree", path)
	}
	patchlevel, ok := vars["PATCHLEVEL"]
	if !ok || patchlevel == "" {
		return "", fmt.Errorf("source: %s sets no PATCHLEVEL — not a kernel Makefile; pass the top directory of a kernel tree", path)
	}
	for _, name := range []string{"VERSION", "PATCHLEVEL", "SUBLEVEL"} {
		if v := vars[name]; v != "" && !isDigits(v) {
			return "", fmt.Errorf("source: %s sets %s = %q, not a number — fix the Makefile or pass another tree", path, name, v)
		}
	}

	out := version + "." + patchlevel
	if sub := vars["SUBLEVEL"]; sub != "" {
		out += "." + sub
	}
	return out + vars["EXTRAVERSION"], nil
}

// parseAssignment splits a make assignment "NAME = value" (also :=, ::=
// and ?=) and drops a trailing comment.
func parseAssignment(line string) (name, value string, ok bool) {
	if line == "" || line[0] == '\t' || line[0] == '#' {
		return "", "", false
	}
	i := strings.IndexByte(line, '=')
	if i <= 0 {
		return "", "", false
	}
	name = strings.TrimRight(strings.TrimSpace(line[:i]), ":?")
	name = strings.TrimSpace(name)
	if name == "" || strings.ContainsAny(name, " \t$") {
		return "", "", false
	}
	value = line[i+1:]
	if j := strings.IndexByte(value, '#'); j >= 0 {
		value = value[:j]
	}
	return name, strings.TrimSpace(value), true
}

func isDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
