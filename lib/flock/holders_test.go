package flock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeProc writes a synthetic procfs under a temp dir.
func fakeProc(t *testing.T, locks, mountinfo string, cmdlines map[int]string) Proc {
	t.Helper()
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("locks", locks)
	write("self/mountinfo", mountinfo)
	for pid, cmd := range cmdlines {
		write(fmt.Sprintf("%d/cmdline", pid), cmd)
	}
	return Proc{Root: root}
}

func inodeOf(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// realDir returns a temp dir with symlinks resolved, as mountinfo shows it.
func realDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestProcHoldersSynthetic(t *testing.T) {
	dir := realDir(t)
	lockPath := filepath.Join(dir, "a.lock")
	if err := os.WriteFile(lockPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ino := inodeOf(t, lockPath)

	// The file's mount is given device 0:99 (hex 00:63 in /proc/locks),
	// whatever st_dev reports. The root mount line must lose to the longer one.
	mountinfo := "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n" +
		fmt.Sprintf("2 1 0:99 / %s rw - tmpfs tmpfs rw\n", dir)
	locks := fmt.Sprintf("1: FLOCK  ADVISORY  WRITE 100 00:63:%d 0 EOF\n", ino) +
		fmt.Sprintf("1: -> FLOCK  ADVISORY  READ 101 00:63:%d 0 EOF\n", ino) +
		fmt.Sprintf("1: -> FLOCK  ADVISORY  READ 101 00:63:%d 0 EOF\n", ino) +
		fmt.Sprintf("2: FLOCK  ADVISORY  WRITE 102 08:01:%d 0 EOF\n", ino) + // same inode, root fs
		fmt.Sprintf("3: POSIX  ADVISORY  WRITE 103 00:63:%d 0 EOF\n", ino) +
		fmt.Sprintf("4: FLOCK  ADVISORY  READ 104 00:63:%d 0 EOF\n", ino+1)
	p := fakeProc(t, locks, mountinfo, map[int]string{
		100: "mage\x00kernel:build\x00",
		101: "ktstr\x00test\x00--x\x00",
	})

	got, err := p.Holders(lockPath)
	if err != nil {
		t.Fatalf("Holders: %v", err)
	}
	want := []Holder{
		{PID: 100, Mode: Exclusive, Command: "mage kernel:build"},
		{PID: 101, Mode: Shared, Waiting: true, Command: "ktstr test --x"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Holders =\n%+v\nwant\n%+v", got, want)
	}
}

func TestProcHoldersMissingFile(t *testing.T) {
	p := fakeProc(t, "", "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n", nil)
	got, err := p.Holders(filepath.Join(t.TempDir(), "none.lock"))
	if err != nil || got != nil {
		t.Fatalf("Holders of a missing file = %v, %v; want nil, nil", got, err)
	}
}

func TestProcHoldersNoMount(t *testing.T) {
	dir := realDir(t)
	lockPath := filepath.Join(dir, "a.lock")
	if err := os.WriteFile(lockPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := fakeProc(t, "", "1 0 8:1 /x /elsewhere rw - ext4 /dev/sda1 rw\n", nil)
	if _, err := p.Holders(lockPath); err == nil {
		t.Fatal("Holders with no mount containing the file: want error, got nil")
	}
}

func TestProcHoldersUnreadableProc(t *testing.T) {
	dir := realDir(t)
	lockPath := filepath.Join(dir, "a.lock")
	if err := os.WriteFile(lockPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Proc{Root: filepath.Join(dir, "no-proc")}.Holders(lockPath)
	if err == nil || !strings.Contains(err.Error(), "mountinfo") {
		t.Fatalf("Holders with no procfs: error %v, want one naming mountinfo", err)
	}
}

func TestMatchHoldersDuplicates(t *testing.T) {
	lines := []LockLine{
		{ID: 1, Mode: Shared, PID: 5, Major: 1, Minor: 2, Inode: 3},
		{ID: 2, Mode: Shared, PID: 5, Major: 1, Minor: 2, Inode: 3},
		{ID: 3, Mode: Shared, PID: 6, Major: 1, Minor: 2, Inode: 3},
		{ID: 3, Mode: Exclusive, Waiting: true, PID: 5, Major: 1, Minor: 2, Inode: 3},
		{ID: 4, Mode: Shared, PID: 7, Major: 1, Minor: 3, Inode: 3},
		{ID: 5, Mode: Shared, PID: 8, Major: 2, Minor: 2, Inode: 3},
	}
	got := matchHolders(lines, 1, 2, 3)
	want := []Holder{
		{PID: 5, Mode: Shared},
		{PID: 6, Mode: Shared},
		{PID: 5, Mode: Exclusive, Waiting: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("matchHolders =\n%+v\nwant\n%+v", got, want)
	}
}

func TestCommandFromProc(t *testing.T) {
	long := strings.Repeat("a", 50) + "\x00" + strings.Repeat("b", 50) + "\x00"
	p := fakeProc(t, "", "", map[int]string{
		1: "mage\x00kernel:build\x00",
		2: long,
		3: "",
		4: "x\ny\x00é\x00",
	})
	if err := os.WriteFile(filepath.Join(p.Root, "3", "comm"), []byte("kworker/0:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		pid  int
		want string
	}{
		{1, "mage kernel:build"},
		{2, strings.Repeat("a", 50) + " " + strings.Repeat("b", 26) + "..."},
		{3, "[kworker/0:1]"},
		{4, "x y é"},
		{99, ""},
		{0, ""},
	}
	for _, tt := range tests {
		got := p.command(tt.pid)
		if got != tt.want {
			t.Errorf("command(%d) = %q, want %q", tt.pid, got, tt.want)
		}
		if n := len([]rune(got)); n > maxCommandRunes {
			t.Errorf("command(%d) has %d runes, want at most %d", tt.pid, n, maxCommandRunes)
		}
	}
}

func TestDescribeHoldersText(t *testing.T) {
	tests := []struct {
		name string
		hs   []Holder
		want string
	}{
		{"none", nil, "no process visible in /proc/locks"},
		{"one", []Holder{{PID: 123, Mode: Exclusive, Command: "mage kernel:build"}}, "pid 123 (mage kernel:build)"},
		{
			"holder and waiter",
			[]Holder{{PID: 123, Command: "mage kernel:build"}, {PID: 456, Waiting: true, Command: "ktstr"}},
			"pid 123 (mage kernel:build), pid 456 waiting (ktstr)",
		},
		{"no command", []Holder{{PID: 7}}, "pid 7"},
		{
			"this process",
			[]Holder{{PID: os.Getpid(), Command: "team.test"}},
			"another build in this process (pid " + strconv.Itoa(os.Getpid()) + ")",
		},
	}
	for _, tt := range tests {
		if got := DescribeHolders(tt.hs); got != tt.want {
			t.Errorf("%s: DescribeHolders = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestProcHoldersSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "a.lock")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Holders(link); !errors.Is(err, ErrSymlink) {
		t.Fatalf("Holders of a symlink: error %v, want ErrSymlink", err)
	}
}
