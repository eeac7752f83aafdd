package flock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Holder is a process that holds, or waits for, a flock lock on a file.
type Holder struct {
	PID     int
	Mode    Mode
	Waiting bool
	Command string // /proc/PID/cmdline with spaces for NULs, shortened; "" when the process is gone
}

// Proc is a procfs mount to read locks, mounts and command lines from.
// Tests point Root at a directory holding synthetic locks,
// self/mountinfo and PID/cmdline files.
type Proc struct {
	Root string // "" means /proc
}

func (p Proc) root() string {
	if p.Root == "" {
		return "/proc"
	}
	return p.Root
}

// Holders returns the holders and waiters of the lock file at path, as
// listed in /proc.
func Holders(path string) ([]Holder, error) {
	return Proc{Root: "/proc"}.Holders(path)
}

// Holders returns the processes that hold or wait for a flock lock on the
// file at path, in /proc/locks order with duplicates removed. A missing
// file has no holders.
//
// The file is matched by inode and by the device numbers of its mount in
// mountinfo, because /proc/locks prints the superblock's device, which
// st_dev does not show on btrfs subvolumes and overlayfs. Processes in
// other pid namespaces are not listed.
func (p Proc) Holders(path string) ([]Holder, error) {
	file, err := resolveLockPath(path)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Lstat(file, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("holders of %s: stat: %w", path, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil, fmt.Errorf("holders of %s: %w — remove the symlink, because lock files must be regular files", path, ErrSymlink)
	}

	mountinfo, err := os.ReadFile(filepath.Join(p.root(), "self", "mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("holders of %s: read mountinfo: %w — is /proc mounted?", path, err)
	}
	mounts, err := ParseMountinfo(string(mountinfo))
	if err != nil {
		return nil, fmt.Errorf("holders of %s: %w", path, err)
	}
	m, ok := FindMount(mounts, file)
	if !ok {
		return nil, fmt.Errorf("holders of %s: no mount in %s contains %s — the process may be in a chroot without its own /proc", path, filepath.Join(p.root(), "self", "mountinfo"), file)
	}

	locks, err := os.ReadFile(filepath.Join(p.root(), "locks"))
	if err != nil {
		return nil, fmt.Errorf("holders of %s: read /proc/locks: %w — is /proc mounted?", path, err)
	}
	lines, err := ParseLocks(string(locks))
	if err != nil {
		return nil, fmt.Errorf("holders of %s: %w", path, err)
	}

	hs := matchHolders(lines, m.Major, m.Minor, st.Ino)
	for i := range hs {
		hs[i].Command = p.command(hs[i].PID)
	}
	return hs, nil
}

// resolveLockPath makes path absolute and resolves symlinks in its
// directory, since mount points in mountinfo are real paths. The last
// component is kept as is so a symlinked lock file can be reported.
func resolveLockPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("holders of %s: %w", path, err)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", fmt.Errorf("holders of %s: resolve directory: %w", path, err)
	}
	return filepath.Join(dir, filepath.Base(abs)), nil
}

// matchHolders returns the lines on the given file as holders, dropping
// repeats of the same pid, mode and waiting state, which a process shows
// when it locks the file through several open files.
func matchHolders(lines []LockLine, major, minor uint32, inode uint64) []Holder {
	type key struct {
		pid     int
		mode    Mode
		waiting bool
	}
	seen := map[key]bool{}
	var hs []Holder
	for _, l := range lines {
		if l.Major != major || l.Minor != minor || l.Inode != inode {
			continue
		}
		k := key{l.PID, l.Mode, l.Waiting}
		if seen[k] {
			continue
		}
		seen[k] = true
		hs = append(hs, Holder{PID: l.PID, Mode: l.Mode, Waiting: l.Waiting})
	}
	return hs
}

// maxCommandRunes is the length past which a command line is cut, so a
// message naming several holders still fits a terminal line or two.
const maxCommandRunes = 80

// command returns the command line of pid for messages: NULs become
// spaces, control characters become spaces, and long lines are cut with
// "...". Kernel threads and zombies have no cmdline, so their comm is used
// in brackets as ps does.
func (p Proc) command(pid int) string {
	if pid <= 0 {
		return ""
	}
	dir := filepath.Join(p.root(), strconv.Itoa(pid))
	raw, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		return ""
	}
	cmd := strings.TrimRight(string(raw), "\x00")
	if cmd == "" {
		comm, err := os.ReadFile(filepath.Join(dir, "comm"))
		if err != nil {
			return ""
		}
		cmd = "[" + strings.TrimSpace(string(comm)) + "]"
	}
	return shortenCommand(cmd)
}

func shortenCommand(cmd string) string {
	cmd = strings.ToValidUTF8(cmd, "?")
	cmd = strings.Map(func(r rune) rune {
		if r == 0 || unicode.IsControl(r) {
			return ' '
		}
		return r
	}, cmd)
	cmd = strings.TrimSpace(cmd)
	if utf8.RuneCountInString(cmd) <= maxCommandRunes {
		return cmd
	}
	runes := []rune(cmd)
	return strings.TrimSpace(string(runes[:maxCommandRunes-3])) + "..."
}

// DescribeHolders formats holders for a message, such as
// "pid 123 (mage kernel:build), pid 456 waiting (ktstr test)".
func DescribeHolders(hs []Holder) string {
	if len(hs) == 0 {
		return "no process visible in /proc/locks"
	}
	parts := make([]string, 0, len(hs))
	for _, h := range hs {
		s := "pid " + strconv.Itoa(h.PID)
		if h.PID == os.Getpid() {
			s = "another build in this process (pid " + strconv.Itoa(h.PID) + ")"
		}
		if h.Waiting {
			s += " waiting"
		}
		if h.Command != "" && h.PID != os.Getpid() {
			s += " (" + h.Command + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}
