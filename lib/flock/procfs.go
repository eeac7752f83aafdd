package flock

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// LockLine is one flock(2) lock or waiter from /proc/locks.
type LockLine struct {
	ID      int    // the kernel's index; a waiter shares the index of the lock it waits on
	Mode    Mode   // Shared for READ, Exclusive for WRITE; for a waiter, the requested mode
	Waiting bool   // the line is a blocked request, printed with "->"
	PID     int    // as seen from the pid namespace of the /proc instance
	Major   uint32 // device major of the file's superblock
	Minor   uint32 // device minor of the file's superblock
	Inode   uint64
}

// ParseLocks returns the FLOCK lines of /proc/locks text in order.
//
// POSIX, OFDLCK, LEASE and other lock kinds are skipped, and so are
// malformed lines, which are logged at debug level. The error is non-nil
// only when the text has lines and none of them parses, which means the
// format is not one this package understands.
func ParseLocks(text string) ([]LockLine, error) {
	var out []LockLine
	seen, good := 0, 0
	for n, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		seen++
		l, isFlock, err := parseLockLine(line)
		if err != nil {
			slog.Debug("flock: skipping malformed /proc/locks line", "line", n+1, "text", line, "err", err)
			continue
		}
		good++
		if isFlock {
			out = append(out, l)
		}
	}
	if seen > 0 && good == 0 {
		return nil, fmt.Errorf("parse /proc/locks: none of %d lines has the expected form %q — the kernel's format may have changed; report this with the file's content", seen, "ID: KIND TYPE MODE PID MAJ:MIN:INODE START END")
	}
	return out, nil
}

// parseLockLine parses one line such as
// "3: -> FLOCK  ADVISORY  WRITE 22402 fe:00:9978742 0 EOF". The boolean is
// false for a well-formed line of another lock kind.
func parseLockLine(line string) (LockLine, bool, error) {
	fields := strings.Fields(line)
	if len(fields) == 0 || !strings.HasSuffix(fields[0], ":") {
		return LockLine{}, false, fmt.Errorf("no %q index", "N:")
	}
	id, err := strconv.Atoi(strings.TrimSuffix(fields[0], ":"))
	if err != nil {
		return LockLine{}, false, fmt.Errorf("index %q: %w", fields[0], err)
	}
	fields = fields[1:]

	// Newer kernels indent nested waiters, so the arrow may follow spaces.
	waiting := false
	for len(fields) > 0 && fields[0] == "->" {
		waiting = true
		fields = fields[1:]
	}

	// KIND TYPE MODE PID DEV START END
	if len(fields) < 7 {
		return LockLine{}, false, fmt.Errorf("%d fields after the index, expected 7", len(fields))
	}
	if fields[0] != "FLOCK" {
		return LockLine{}, false, nil
	}

	var mode Mode
	switch fields[2] {
	case "READ":
		mode = Shared
	case "WRITE":
		mode = Exclusive
	default:
		return LockLine{}, false, fmt.Errorf("mode %q is neither READ nor WRITE", fields[2])
	}

	pid, err := strconv.Atoi(fields[3])
	if err != nil {
		return LockLine{}, false, fmt.Errorf("pid %q: %w", fields[3], err)
	}

	major, minor, inode, err := parseLockDevice(fields[4])
	if err != nil {
		return LockLine{}, false, err
	}

	return LockLine{ID: id, Mode: mode, Waiting: waiting, PID: pid, Major: major, Minor: minor, Inode: inode}, true, nil
}

// parseLockDevice parses "fe:00:9978742". The kernel prints the device
// numbers in hex and the inode in decimal.
func parseLockDevice(s string) (major, minor uint32, inode uint64, err error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, 0, 0, fmt.Errorf("device %q is not MAJ:MIN:INODE", s)
	}
	maj, err := strconv.ParseUint(parts[0], 16, 32)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("device major %q: %w", parts[0], err)
	}
	mnr, err := strconv.ParseUint(parts[1], 16, 32)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("device minor %q: %w", parts[1], err)
	}
	ino, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("inode %q: %w", parts[2], err)
	}
	return uint32(maj), uint32(mnr), ino, nil
}

// Mount is one line of /proc/PID/mountinfo.
type Mount struct {
	ID         int
	ParentID   int
	Major      uint32 // decimal in mountinfo, unlike /proc/locks
	Minor      uint32
	Root       string // the directory of the filesystem mounted here; not "/" for bind mounts
	MountPoint string // octal escapes such as \040 decoded
	FSType     string
	Source     string
}

// ParseMountinfo returns the mounts in mountinfo text, in file order.
//
// Malformed lines are skipped and logged at debug level. The error is
// non-nil only when the text has lines and none of them parses.
func ParseMountinfo(text string) ([]Mount, error) {
	var out []Mount
	seen := 0
	for n, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		seen++
		m, err := parseMountLine(line)
		if err != nil {
			slog.Debug("flock: skipping malformed mountinfo line", "line", n+1, "text", line, "err", err)
			continue
		}
		out = append(out, m)
	}
	if seen > 0 && len(out) == 0 {
		return nil, fmt.Errorf("parse mountinfo: none of %d lines has the expected form %q — report this with the file's content", seen, "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ... - FSTYPE SOURCE SUPEROPTIONS")
	}
	return out, nil
}

// parseMountLine parses "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw".
// The optional fields between the options and "-" vary in number.
func parseMountLine(line string) (Mount, error) {
	fields := strings.Fields(line)
	sep := -1
	for i := 6; i < len(fields); i++ {
		if fields[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || len(fields) < sep+3 {
		return Mount{}, fmt.Errorf("%d fields without the %q separator and the two fields after it", len(fields), "-")
	}

	id, err := strconv.Atoi(fields[0])
	if err != nil {
		return Mount{}, fmt.Errorf("mount id %q: %w", fields[0], err)
	}
	parent, err := strconv.Atoi(fields[1])
	if err != nil {
		return Mount{}, fmt.Errorf("parent id %q: %w", fields[1], err)
	}
	majStr, minStr, ok := strings.Cut(fields[2], ":")
	if !ok {
		return Mount{}, fmt.Errorf("device %q is not MAJ:MIN", fields[2])
	}
	major, err := strconv.ParseUint(majStr, 10, 32)
	if err != nil {
		return Mount{}, fmt.Errorf("device major %q: %w", majStr, err)
	}
	minor, err := strconv.ParseUint(minStr, 10, 32)
	if err != nil {
		return Mount{}, fmt.Errorf("device minor %q: %w", minStr, err)
	}
	root, err := unescapeOctal(fields[3])
	if err != nil {
		return Mount{}, fmt.Errorf("root: %w", err)
	}
	point, err := unescapeOctal(fields[4])
	if err != nil {
		return Mount{}, fmt.Errorf("mount point: %w", err)
	}
	if !strings.HasPrefix(point, "/") {
		return Mount{}, fmt.Errorf("mount point %q is not absolute", point)
	}
	source, err := unescapeOctal(fields[sep+2])
	if err != nil {
		return Mount{}, fmt.Errorf("source: %w", err)
	}

	return Mount{
		ID:         id,
		ParentID:   parent,
		Major:      uint32(major),
		Minor:      uint32(minor),
		Root:       root,
		MountPoint: point,
		FSType:     fields[sep+1],
		Source:     source,
	}, nil
}

// unescapeOctal decodes the \ooo escapes the kernel writes for space, tab,
// newline and backslash in mountinfo paths.
func unescapeOctal(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("truncated escape at byte %d of %q", i, s)
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("escape %q in %q is not three octal digits", s[i:i+4], s)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}

// FindMount returns the mount that contains the absolute, symlink-free
// path, which is the visible mount with the longest mount point that is a
// prefix of path ending on a path-component boundary. It returns false
// when no mount point is such a prefix.
//
// A mount can be hidden, as when /a is mounted over an existing /a/b, so
// FindMount walks the tree by ParentID from the namespace root. At each
// level it descends into the child with the shortest mount point on the
// path. When no mount on the path has an unlisted parent to start from,
// it takes the longest prefix, and the last line among equal ones.
func FindMount(mounts []Mount, path string) (Mount, bool) {
	if m, ok := walkMounts(mounts, path); ok {
		return m, true
	}
	return longestPrefixMount(mounts, path)
}

func walkMounts(mounts []Mount, path string) (Mount, bool) {
	ids := make(map[int]bool, len(mounts))
	for _, m := range mounts {
		ids[m.ID] = true
	}

	// A root's parent lies outside this mount namespace or chroot. Usually
	// only "/" is one, but the walk starts at the deepest root on the path.
	cur, found := Mount{}, false
	for _, m := range mounts {
		if ids[m.ParentID] || !underMountPoint(path, m.MountPoint) {
			continue
		}
		if !found || len(m.MountPoint) >= len(cur.MountPoint) {
			cur, found = m, true
		}
	}
	if !found {
		return Mount{}, false
	}

	// Each step goes one level down, so len(mounts) steps bound a cycle.
	for range mounts {
		next, ok := Mount{}, false
		for _, m := range mounts {
			if m.ParentID != cur.ID || m.ID == cur.ID {
				continue
			}
			if !underMountPoint(path, m.MountPoint) || !underMountPoint(m.MountPoint, cur.MountPoint) {
				continue
			}
			if !ok || len(m.MountPoint) <= len(next.MountPoint) {
				next, ok = m, true
			}
		}
		if !ok {
			break
		}
		cur = next
	}
	return cur, true
}

// longestPrefixMount returns the mount with the longest mount point on
// path, and the last one listed when several share it, since that one was
// mounted on top.
func longestPrefixMount(mounts []Mount, path string) (Mount, bool) {
	best, found := Mount{}, false
	for _, m := range mounts {
		if !underMountPoint(path, m.MountPoint) {
			continue
		}
		if !found || len(m.MountPoint) >= len(best.MountPoint) {
			best, found = m, true
		}
	}
	return best, found
}

// underMountPoint reports whether path is point or lies below it, so that
// "/homework" is not under "/home".
func underMountPoint(path, point string) bool {
	if point == "/" {
		return strings.HasPrefix(path, "/")
	}
	point = strings.TrimSuffix(point, "/")
	if !strings.HasPrefix(path, point) {
		return false
	}
	rest := path[len(point):]
	return rest == "" || rest[0] == '/'
}
