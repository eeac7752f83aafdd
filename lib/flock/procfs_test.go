package flock

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseLocksLines(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []LockLine
	}{
		{
			name: "exclusive holder",
			text: "3: FLOCK  ADVISORY  WRITE 22393 fe:00:9978742 0 EOF\n",
			want: []LockLine{{ID: 3, Mode: Exclusive, PID: 22393, Major: 0xfe, Minor: 0, Inode: 9978742}},
		},
		{
			name: "shared holder",
			text: "1: FLOCK  ADVISORY  READ 22404 00:2a:17 0 EOF\n",
			want: []LockLine{{ID: 1, Mode: Shared, PID: 22404, Major: 0, Minor: 0x2a, Inode: 17}},
		},
		{
			name: "waiter",
			text: "3: FLOCK  ADVISORY  WRITE 10 08:01:5 0 EOF\n3: -> FLOCK  ADVISORY  READ 11 08:01:5 0 EOF\n",
			want: []LockLine{
				{ID: 3, Mode: Exclusive, PID: 10, Major: 8, Minor: 1, Inode: 5},
				{ID: 3, Mode: Shared, Waiting: true, PID: 11, Major: 8, Minor: 1, Inode: 5},
			},
		},
		{
			name: "indented nested waiter",
			text: "7:  -> FLOCK  ADVISORY  WRITE 12 08:01:5 0 EOF",
			want: []LockLine{{ID: 7, Mode: Exclusive, Waiting: true, PID: 12, Major: 8, Minor: 1, Inode: 5}},
		},
		{
			name: "posix ofd and lease ignored",
			text: "1: POSIX  ADVISORY  WRITE 500 fe:00:1 0 EOF\n" +
				"2: OFDLCK ADVISORY  READ  -1 fe:00:2 0 9\n" +
				"3: LEASE  ACTIVE    READ 501 fe:00:3 0 EOF\n" +
				"2: -> POSIX  ADVISORY  WRITE 502 fe:00:1 0 EOF\n" +
				"4: FLOCK  ADVISORY  READ 503 fe:00:4 0 EOF\n",
			want: []LockLine{{ID: 4, Mode: Shared, PID: 503, Major: 0xfe, Minor: 0, Inode: 4}},
		},
		{
			name: "duplicates kept by the parser",
			text: "1: FLOCK  ADVISORY  READ 9 fe:00:4 0 EOF\n2: FLOCK  ADVISORY  READ 9 fe:00:4 0 EOF\n",
			want: []LockLine{
				{ID: 1, Mode: Shared, PID: 9, Major: 0xfe, Inode: 4},
				{ID: 2, Mode: Shared, PID: 9, Major: 0xfe, Inode: 4},
			},
		},
		{
			name: "malformed lines skipped",
			text: "garbage\n" +
				"x: FLOCK  ADVISORY  READ 9 fe:00:4 0 EOF\n" +
				"1: FLOCK  ADVISORY  MSNFS 9 fe:00:4 0 EOF\n" +
				"2: FLOCK  ADVISORY  READ nine fe:00:4 0 EOF\n" +
				"3: FLOCK  ADVISORY  READ 9 fe:zz:4 0 EOF\n" +
				"4: FLOCK  ADVISORY  READ 9 fe:00 0 EOF\n" +
				"5: FLOCK  ADVISORY  READ\n" +
				"6: FLOCK  ADVISORY  WRITE 8 fe:01:40 0 EOF\n",
			want: []LockLine{{ID: 6, Mode: Exclusive, PID: 8, Major: 0xfe, Minor: 1, Inode: 40}},
		},
		{
			name: "empty",
			text: "",
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLocks(tt.text)
			if err != nil {
				t.Fatalf("ParseLocks: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseLocks =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseLocksUnknownFormat(t *testing.T) {
	_, err := ParseLocks("lock one\nlock two\n")
	if err == nil {
		t.Fatal("ParseLocks of text with no valid line: want error, got nil")
	}
	if !strings.Contains(err.Error(), "2 lines") {
		t.Errorf("error %q does not give the line count", err)
	}
}

func TestParseMountinfoLines(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []Mount
	}{
		{
			name: "root mount",
			text: "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n",
			want: []Mount{{ID: 27, ParentID: 1, Major: 254, Minor: 0, Root: "/", MountPoint: "/", FSType: "ext4", Source: "/dev/vda"}},
		},
		{
			name: "optional fields",
			text: "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue",
			want: []Mount{{ID: 36, ParentID: 35, Major: 98, Minor: 0, Root: "/mnt1", MountPoint: "/mnt2", FSType: "ext3", Source: "/dev/root"}},
		},
		{
			name: "octal escapes",
			text: `40 27 0:50 /a\040b /mnt/my\040disk\011x\134y\012z rw - tmpfs my\040src rw`,
			want: []Mount{{ID: 40, ParentID: 27, Major: 0, Minor: 50, Root: "/a b", MountPoint: "/mnt/my disk\tx\\y\nz", FSType: "tmpfs", Source: "my src"}},
		},
		{
			name: "bind mount of a subdirectory",
			text: "27 1 8:1 / / rw - ext4 /dev/sda1 rw\n" +
				"50 27 8:1 /srv/data /mnt/data rw - ext4 /dev/sda1 rw\n",
			want: []Mount{
				{ID: 27, ParentID: 1, Major: 8, Minor: 1, Root: "/", MountPoint: "/", FSType: "ext4", Source: "/dev/sda1"},
				{ID: 50, ParentID: 27, Major: 8, Minor: 1, Root: "/srv/data", MountPoint: "/mnt/data", FSType: "ext4", Source: "/dev/sda1"},
			},
		},
		{
			name: "malformed lines skipped",
			text: "junk\n" +
				"1 2 8:1 / / rw ext4 /dev/sda1 rw\n" + // no separator
				"1 2 8:1 / / rw -\n" + // nothing after separator
				"x 2 8:1 / / rw - ext4 /dev/sda1 rw\n" +
				"1 y 8:1 / / rw - ext4 /dev/sda1 rw\n" +
				"1 2 801 / / rw - ext4 /dev/sda1 rw\n" +
				"1 2 8:q / / rw - ext4 /dev/sda1 rw\n" +
				"1 2 8:1 / /bad\\04 rw - ext4 /dev/sda1 rw\n" +
				"1 2 8:1 / /bad\\999 rw - ext4 /dev/sda1 rw\n" +
				"1 2 8:1 / relative rw - ext4 /dev/sda1 rw\n" +
				"60 27 0:33 / /ok rw - tmpfs tmpfs rw\n",
			want: []Mount{{ID: 60, ParentID: 27, Major: 0, Minor: 33, Root: "/", MountPoint: "/ok", FSType: "tmpfs", Source: "tmpfs"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMountinfo(tt.text)
			if err != nil {
				t.Fatalf("ParseMountinfo: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseMountinfo =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseMountinfoUnknownFormat(t *testing.T) {
	if _, err := ParseMountinfo("a b c\n"); err == nil {
		t.Fatal("ParseMountinfo of text with no valid line: want error, got nil")
	}
	got, err := ParseMountinfo("\n\n")
	if err != nil || got != nil {
		t.Fatalf("ParseMountinfo of blank text = %v, %v; want nil, nil", got, err)
	}
}

func TestFindMountChoice(t *testing.T) {
	// Listed in the order mountinfo uses. The first line was moved under
	// the root after the root was mounted, as early-boot mounts are, so it
	// comes before its parent.
	mounts := []Mount{
		{ID: 22, ParentID: 27, MountPoint: "/proc", Major: 0, Minor: 21},
		{ID: 27, ParentID: 1, MountPoint: "/", Major: 8, Minor: 1},
		{ID: 2, ParentID: 27, MountPoint: "/home", Major: 8, Minor: 2},
		{ID: 3, ParentID: 2, MountPoint: "/home/u/cache", Major: 0, Minor: 40},
		{ID: 4, ParentID: 27, MountPoint: "/mnt/data", Major: 8, Minor: 1, Root: "/srv/data"}, // bind
		{ID: 5, ParentID: 27, MountPoint: "/stack", Major: 0, Minor: 50},
		{ID: 6, ParentID: 5, MountPoint: "/stack", Major: 0, Minor: 51}, // mounted over ID 5
		{ID: 7, ParentID: 27, MountPoint: "/my disk", Major: 0, Minor: 60},
		{ID: 8, ParentID: 27, MountPoint: "/opt/a/b", Major: 0, Minor: 70},
		{ID: 9, ParentID: 27, MountPoint: "/opt/a", Major: 0, Minor: 71}, // hides ID 8
		{ID: 10, ParentID: 9, MountPoint: "/opt/a/b/c", Major: 0, Minor: 72},
		{ID: 11, ParentID: 99, MountPoint: "/srv/orphan", Major: 0, Minor: 80}, // parent not listed
		{ID: 12, ParentID: 11, MountPoint: "/srv/orphan/sub", Major: 0, Minor: 81},
	}
	tests := []struct {
		path string
		want int
	}{
		{"/etc/passwd", 27},
		{"/", 27},
		{"/proc/locks", 22},
		{"/home", 2},
		{"/home/u/x.lock", 2},
		{"/homework/x.lock", 27},
		{"/home/u/cache/.locks/a.lock", 3},
		{"/home/u/cachet/a.lock", 2},
		{"/mnt/data/a.lock", 4},
		{"/mnt/database", 27},
		{"/stack/a.lock", 6},
		{"/my disk/a.lock", 7},
		{"/opt/a/b/x.lock", 9},
		{"/opt/a/b/c/x.lock", 10},
		{"/srv/orphan/x.lock", 11},
		{"/srv/orphan/sub/x.lock", 12},
		{"/srv/other", 27},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, ok := FindMount(mounts, tt.path)
			if !ok {
				t.Fatalf("FindMount(%q): no mount", tt.path)
			}
			if got.ID != tt.want {
				t.Errorf("FindMount(%q) = mount %d, want %d", tt.path, got.ID, tt.want)
			}
		})
	}
}

func TestFindMountWithoutTree(t *testing.T) {
	// No line is a root, so the longest prefix decides.
	mounts := []Mount{
		{ID: 1, ParentID: 1, MountPoint: "/", Minor: 1},
		{ID: 2, ParentID: 1, MountPoint: "/home", Minor: 2},
		{ID: 3, ParentID: 1, MountPoint: "/home", Minor: 3},
		{ID: 4, ParentID: 1, MountPoint: "/home/u", Minor: 4},
	}
	tests := []struct {
		path string
		want int
	}{
		{"/etc", 1},
		{"/home/x", 3},
		{"/home/u/x", 4},
		{"/home/uu", 3},
	}
	for _, tt := range tests {
		got, ok := FindMount(mounts, tt.path)
		if !ok || got.ID != tt.want {
			t.Errorf("FindMount(%q) = mount %d, %v; want %d", tt.path, got.ID, ok, tt.want)
		}
	}

	if _, ok := FindMount(mounts[1:2], "/etc/x"); ok {
		t.Error("FindMount outside every mount point: want no mount")
	}
}
