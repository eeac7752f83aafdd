package cache

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ktstr/ktbuild/lib/flock"
)

const testKey = "6.12.0-tarball-x86_64-kc1a2b3c4d"

// tmpDirs returns the names under root that start with ".tmp-".
func tmpDirs(t *testing.T, root string) []string {
	t.Helper()
	dirents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range dirents {
		if strings.HasPrefix(d.Name(), tmpPrefix) {
			out = append(out, d.Name())
		}
	}
	return out
}

func TestStoreNewKey(t *testing.T) {
	c := openTestCache(t)
	image, vmlinux := genFiles(t, t.TempDir(), 1, 4096)
	meta := genMeta(1)
	meta.ImageName = ""
	meta.Build = &BuildFacts{MakeJobs: 4, Objects: 12}

	before := time.Now().UTC().Truncate(time.Second)
	e, err := c.Store(context.Background(), StoreRequest{Key: testKey, ImagePath: image, VmlinuxPath: vmlinux, Meta: meta})
	if err != nil {
		t.Fatal(err)
	}

	if e.Dir != filepath.Join(c.Root, testKey) || e.Key != testKey {
		t.Errorf("entry key %q dir %q, want %q under %s", e.Key, e.Dir, testKey, c.Root)
	}
	if e.Meta.ImageName != "bzImage-1" {
		t.Errorf("ImageName = %q, want the image's base name bzImage-1", e.Meta.ImageName)
	}
	if !e.Meta.HasVmlinux || e.Meta.VmlinuxStripped {
		t.Errorf("HasVmlinux=%v VmlinuxStripped=%v, want true, false (no Strip func)", e.Meta.HasVmlinux, e.Meta.VmlinuxStripped)
	}
	builtAt, err := time.Parse(BuiltAtLayout, e.Meta.BuiltAt)
	if err != nil || builtAt.Before(before) || builtAt.After(time.Now().Add(time.Second)) {
		t.Errorf("BuiltAt = %q (%v), want the time of the store", e.Meta.BuiltAt, err)
	}
	if e.Meta.Build.StoreSecs <= 0 || e.Meta.Build.MakeJobs != 4 {
		t.Errorf("Build = %+v, want StoreSecs filled and the rest kept", e.Meta.Build)
	}
	if meta.Build.StoreSecs != 0 {
		t.Errorf("Store changed the caller's BuildFacts")
	}
	if gen, err := fileGen(e.ImagePath); err != nil || gen != 1 {
		t.Errorf("image: gen %d, %v", gen, err)
	}
	if gen, err := fileGen(e.VmlinuxPath); err != nil || gen != 1 {
		t.Errorf("vmlinux: gen %d, %v", gen, err)
	}

	got, ok, err := c.Lookup(testKey)
	if err != nil || !ok {
		t.Fatalf("Lookup after Store: hit=%v err=%v", ok, err)
	}
	if got.ImagePath != e.ImagePath || got.VmlinuxPath != e.VmlinuxPath || got.Meta.BuiltAt != e.Meta.BuiltAt {
		t.Errorf("Lookup = %+v, want %+v", got, e)
	}
	if names := tmpDirs(t, c.Root); len(names) != 0 {
		t.Errorf("store directories left behind: %v", names)
	}
	if _, err := os.Stat(c.EntryLockPath(testKey)); err != nil {
		t.Errorf("entry lock file missing: %v", err)
	}
}

func TestStoreSwapsExistingEntry(t *testing.T) {
	c := openTestCache(t)
	storeGen(t, c, testKey, 1)
	if err := os.WriteFile(filepath.Join(c.EntryDir(testKey), "stale-file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	e := storeGen(t, c, testKey, 2)

	if gen, err := fileGen(e.ImagePath); err != nil || gen != 2 {
		t.Errorf("image after overwrite: gen %d, %v", gen, err)
	}
	if *e.Meta.Version != "gen-2" {
		t.Errorf("version = %s, want gen-2", *e.Meta.Version)
	}
	if _, err := os.Stat(filepath.Join(e.Dir, "stale-file")); !os.IsNotExist(err) {
		t.Errorf("a file of the replaced entry survived: %v", err)
	}
	if names := tmpDirs(t, c.Root); len(names) != 0 {
		t.Errorf("the replaced entry was not removed: %v", names)
	}
}

func TestStoreReplacesFileAtKey(t *testing.T) {
	c := openTestCache(t)
	if err := os.WriteFile(c.EntryDir(testKey), []byte("stray"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := storeGen(t, c, testKey, 1)
	if gen, err := fileGen(e.ImagePath); err != nil || gen != 1 {
		t.Errorf("image: gen %d, %v", gen, err)
	}
	if names := tmpDirs(t, c.Root); len(names) != 0 {
		t.Errorf("left behind: %v", names)
	}
}

func TestStoreStrips(t *testing.T) {
	c := openTestCache(t)
	image, vmlinux := genFiles(t, t.TempDir(), 1, 4096)
	var gotSrc string
	e, err := c.Store(context.Background(), StoreRequest{
		Key: testKey, ImagePath: image, VmlinuxPath: vmlinux, Meta: genMeta(1),
		Strip: func(src, dst string) error {
			gotSrc = src
			return os.WriteFile(dst, []byte(elfMagic+"stripped"), 0o600)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if gotSrc != vmlinux {
		t.Errorf("Strip got src %q, want %q", gotSrc, vmlinux)
	}
	if !e.Meta.HasVmlinux || !e.Meta.VmlinuxStripped {
		t.Errorf("HasVmlinux=%v VmlinuxStripped=%v, want both true", e.Meta.HasVmlinux, e.Meta.VmlinuxStripped)
	}
	if data, _ := os.ReadFile(e.VmlinuxPath); string(data) != elfMagic+"stripped" {
		t.Errorf("stored vmlinux = %q, want the stripped output", data)
	}
	onDisk, _, _ := c.Lookup(testKey)
	if !onDisk.Meta.VmlinuxStripped {
		t.Errorf("metadata.json says vmlinux_stripped=false")
	}
}

func TestStoreStripFailureKeepsUnstripped(t *testing.T) {
	c := openTestCache(t)
	image, vmlinux := genFiles(t, t.TempDir(), 1, 4096)
	var warnings []string
	e, err := c.Store(context.Background(), StoreRequest{
		Key: testKey, ImagePath: image, VmlinuxPath: vmlinux, Meta: genMeta(1),
		Strip: func(src, dst string) error {
			os.WriteFile(dst, []byte("half"), 0o644)
			return errors.New("no .BTF section")
		},
		Warn: func(format string, args ...any) { warnings = append(warnings, fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !e.Meta.HasVmlinux || e.Meta.VmlinuxStripped {
		t.Errorf("HasVmlinux=%v VmlinuxStripped=%v, want true, false", e.Meta.HasVmlinux, e.Meta.VmlinuxStripped)
	}
	if gen, err := fileGen(e.VmlinuxPath); err != nil || gen != 1 {
		t.Errorf("stored vmlinux is not the unstripped one: gen %d, %v", gen, err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "no .BTF section") || !strings.Contains(warnings[0], "unstripped") {
		t.Errorf("warnings = %q, want one naming the strip error", warnings)
	}
}

func TestStoreWithoutVmlinux(t *testing.T) {
	c := openTestCache(t)
	image, _ := genFiles(t, t.TempDir(), 1, 4096)
	meta := genMeta(1)
	meta.HasVmlinux, meta.VmlinuxStripped = true, true
	e, err := c.Store(context.Background(), StoreRequest{Key: testKey, ImagePath: image, Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	if e.Meta.HasVmlinux || e.Meta.VmlinuxStripped || e.VmlinuxPath != "" {
		t.Errorf("entry without vmlinux: %+v", e)
	}
	if _, err := os.Stat(filepath.Join(e.Dir, VmlinuxName)); !os.IsNotExist(err) {
		t.Errorf("vmlinux exists in the entry: %v", err)
	}
}

func TestStoreBuildLog(t *testing.T) {
	c := openTestCache(t)
	image, _ := genFiles(t, t.TempDir(), 1, 4096)
	logText := strings.Repeat("  CC      kernel/sched/ext.o\n", 1000)
	logPath := filepath.Join(t.TempDir(), "build.log")
	if err := os.WriteFile(logPath, []byte(logText), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := c.Store(context.Background(), StoreRequest{Key: testKey, ImagePath: image, BuildLogPath: logPath, Meta: genMeta(1)})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(e.Dir, BuildLogName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != logText {
		t.Errorf("build log differs after decompression (%d bytes, want %d)", len(got), len(logText))
	}
}

func TestStoreRejectsBadInput(t *testing.T) {
	c := openTestCache(t)
	image, vmlinux := genFiles(t, t.TempDir(), 1, 4096)
	bad := t.TempDir()
	empty, noHeader, notELF := filepath.Join(bad, "empty"), filepath.Join(bad, "bzImage"), filepath.Join(bad, "vmlinux")
	writeFile(t, empty, nil)
	writeFile(t, noHeader, make([]byte, 4096))
	writeFile(t, notELF, []byte("not an elf file"))
	tests := []struct {
		name string
		req  StoreRequest
		want string
	}{
		{"empty image", StoreRequest{Key: testKey, ImagePath: empty, Meta: genMeta(1)}, "image " + empty + " is empty (0 bytes)"},
		{"empty arm64 image", StoreRequest{Key: testKey, ImagePath: empty, Meta: Metadata{Source: TarballSource(), Arch: "aarch64", ImageName: "Image"}}, "is empty (0 bytes)"},
		{"image without boot header", StoreRequest{Key: testKey, ImagePath: noHeader, Meta: genMeta(1)}, "no x86 boot header"},
		{"empty vmlinux", StoreRequest{Key: testKey, ImagePath: image, VmlinuxPath: empty, Meta: genMeta(1)}, "vmlinux " + empty + " is empty (0 bytes)"},
		{"vmlinux not elf", StoreRequest{Key: testKey, ImagePath: image, VmlinuxPath: notELF, Meta: genMeta(1)}, "is not an ELF file"},
		{"image as vmlinux", StoreRequest{Key: testKey, ImagePath: vmlinux, Meta: genMeta(1)}, "no x86 boot header"},
		{"bad key", StoreRequest{Key: "../evil", ImagePath: image, Meta: genMeta(1)}, "invalid cache key"},
		{"dot key", StoreRequest{Key: ".locks", ImagePath: image, Meta: genMeta(1)}, "invalid cache key"},
		{"bad image name", StoreRequest{Key: testKey, ImagePath: image, Meta: Metadata{ImageName: "boot/bzImage"}}, "invalid image name"},
		{"reserved image name", StoreRequest{Key: testKey, ImagePath: image, Meta: Metadata{ImageName: MetadataName}}, "invalid image name"},
		{"missing image", StoreRequest{Key: testKey, ImagePath: filepath.Join(t.TempDir(), "bzImage"), Meta: genMeta(1)}, "no such file"},
		{"image is a directory", StoreRequest{Key: testKey, ImagePath: t.TempDir(), Meta: genMeta(1)}, "not a regular file"},
		{"missing vmlinux", StoreRequest{Key: testKey, ImagePath: image, VmlinuxPath: "/nonexistent/vmlinux", Meta: genMeta(1)}, "no such file"},
	}
	for _, tt := range tests {
		_, err := c.Store(context.Background(), tt.req)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Store = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	if entries, _ := c.List(); len(entries) != 0 {
		t.Errorf("failed stores left entries: %+v", entries)
	}
	if names := tmpDirs(t, c.Root); len(names) != 0 {
		t.Errorf("failed stores left store directories: %v", names)
	}
}

func TestStoreWaitsForReader(t *testing.T) {
	c := openTestCache(t)
	storeGen(t, c, testKey, 1)
	reader, err := c.ReadLock(context.Background(), testKey)
	if err != nil {
		t.Fatal(err)
	}

	image, vmlinux := genFiles(t, t.TempDir(), 2, 4096)
	req := StoreRequest{Key: testKey, ImagePath: image, VmlinuxPath: vmlinux, Meta: genMeta(2), LockTimeout: 100 * time.Millisecond}
	_, err = c.Store(context.Background(), req)
	var timeout *flock.TimeoutError
	if !errors.As(err, &timeout) {
		t.Fatalf("Store while a reader holds the entry = %v, want a lock timeout", err)
	}
	if !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("timeout error %q does not name the reader's pid", err)
	}
	if e, _, _ := c.Lookup(testKey); *e.Meta.Version != "gen-1" {
		t.Errorf("entry changed while the reader held it: %s", *e.Meta.Version)
	}

	time.AfterFunc(100*time.Millisecond, func() { reader.Release() })
	req.LockTimeout = 0
	e, err := c.Store(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if *e.Meta.Version != "gen-2" {
		t.Errorf("version after the reader left = %s, want gen-2", *e.Meta.Version)
	}
}

func TestStoreCancelledWhileWaiting(t *testing.T) {
	c := openTestCache(t)
	reader, err := c.ReadLock(context.Background(), testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Release()

	image, _ := genFiles(t, t.TempDir(), 1, 4096)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.Store(ctx, StoreRequest{Key: testKey, ImagePath: image, Meta: genMeta(1)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Store with a cancelled context = %v, want DeadlineExceeded", err)
	}
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestStoreSweepsLeftovers(t *testing.T) {
	c := openTestCache(t)
	live := exec.Command("sleep", "30")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { live.Process.Kill(); live.Wait() }()
	dead := deadPID(t)
	self := os.Getpid()

	// The directory of a dead process whose key another process holds
	// locked may belong to a store in another PID namespace.
	heldKey := "held-key"
	held, err := flock.TryLock(c.EntryLockPath(heldKey), flock.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()

	dirs := map[string]bool{ // name -> swept
		fmt.Sprintf(".tmp-%s-%d", testKey, dead):           true,
		fmt.Sprintf(".tmp-other-key-%d", dead):             true,
		fmt.Sprintf(".tmp-other.old-%d", dead):             true,
		fmt.Sprintf(".tmp-%s-%d", testKey, self):           true,
		fmt.Sprintf(".tmp-other-key-%d", self):             false,
		fmt.Sprintf(".tmp-other-key-%d", live.Process.Pid): false,
		fmt.Sprintf(".tmp-%s-%d", heldKey, dead):           false,
		".tmp-no-pid-here":                                 false,
		".tmp-":                                            false,
		".tmp--5":                                          false,
		fmt.Sprintf(".tmp-..-%d", dead):                    false,
		fmt.Sprintf(".other-%d", dead):                     false,
	}
	for name := range dirs {
		if err := os.MkdirAll(filepath.Join(c.Root, name, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	storeGen(t, c, testKey, 1)

	for name, swept := range dirs {
		_, err := os.Stat(filepath.Join(c.Root, name))
		if swept && !os.IsNotExist(err) {
			t.Errorf("%s was kept, want it removed (stat: %v)", name, err)
		}
		if !swept && err != nil {
			t.Errorf("%s was removed, want it kept (stat: %v)", name, err)
		}
	}
}

func TestParseTmpName(t *testing.T) {
	tests := []struct {
		name string
		key  string
		pid  int
		ok   bool
	}{
		{".tmp-6.12-tarball-x86_64-kc1-42", "6.12-tarball-x86_64-kc1", 42, true},
		{".tmp-k-1", "k", 1, true},
		{".tmp-k.old-7", "k.old", 7, true},
		{".tmp-k-0", "", 0, false},
		{".tmp-k--1", "k-", 1, true},
		{".tmp-k-x", "", 0, false},
		{".tmp--9", "", 0, false},
		{".tmp-9", "", 0, false},
		{"k-9", "", 0, false},
		{".tmp-.hidden-9", "", 0, false},
	}
	for _, tt := range tests {
		key, pid, ok := parseTmpName(tt.name)
		if key != tt.key || pid != tt.pid || ok != tt.ok {
			t.Errorf("parseTmpName(%q) = %q, %d, %v; want %q, %d, %v", tt.name, key, pid, ok, tt.key, tt.pid, tt.ok)
		}
	}
}

func TestStoreKilledMidway(t *testing.T) {
	for _, existing := range []bool{false, true} {
		t.Run(fmt.Sprintf("existing=%v", existing), func(t *testing.T) {
			c := openTestCache(t)
			if existing {
				storeGen(t, c, testKey, 1)
			}
			image, vmlinux := genFiles(t, t.TempDir(), 2, 64<<10)
			child := helperCmd(t, "store-slow",
				"CACHE_ROOT="+c.Root, "CACHE_KEY="+testKey, "CACHE_IMAGE="+image, "CACHE_VMLINUX="+vmlinux)
			startHelper(t, child, "stripping")

			tmp := filepath.Join(c.Root, fmt.Sprintf(".tmp-%s-%d", testKey, child.Process.Pid))
			if _, err := os.Stat(filepath.Join(tmp, VmlinuxName)); err != nil {
				t.Fatalf("the child's store directory has no partial vmlinux: %v", err)
			}
			if err := child.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			child.Wait()

			e, ok, err := c.Lookup(testKey)
			switch {
			case err != nil:
				t.Fatal(err)
			case existing && (!ok || *e.Meta.Version != "gen-1"):
				t.Errorf("after the kill the old entry is gone or changed: hit=%v %+v", ok, e.Meta)
			case !existing && ok:
				t.Errorf("after the kill a half store is an entry: %+v", e)
			}
			if !existing {
				if _, err := os.Stat(c.EntryDir(testKey)); !os.IsNotExist(err) {
					t.Errorf("entry directory exists after a killed first store: %v", err)
				}
			}
			if list, _ := c.List(); len(list) != btoi(existing) {
				t.Errorf("List after the kill = %+v", list)
			}

			storeGen(t, c, testKey, 3)
			if _, err := os.Stat(tmp); !os.IsNotExist(err) {
				t.Errorf("the next store did not remove %s: %v", tmp, err)
			}
			if names := tmpDirs(t, c.Root); len(names) != 0 {
				t.Errorf("store directories left: %v", names)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestStoreConcurrentReaders(t *testing.T) {
	for _, existing := range []bool{false, true} {
		t.Run(fmt.Sprintf("existing=%v", existing), func(t *testing.T) {
			c := openTestCache(t)
			if existing {
				storeGen(t, c, testKey, 0)
			}

			// A reader in another process, for real cross-process flock.
			child := helperCmd(t, "reader", "CACHE_ROOT="+c.Root, "CACHE_KEY="+testKey, "CACHE_READ_MS=1500")
			var childOut strings.Builder
			child.Stdout = &childOut
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}

			stop := make(chan struct{})
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := &entryReader{c: c, key: testKey}
					for {
						select {
						case <-stop:
							if r.lockedReads == 0 {
								errs <- errors.New("a reader goroutine never read the entry")
							}
							return
						default:
						}
						if err := r.readOnce(context.Background()); err != nil {
							errs <- err
							return
						}
						time.Sleep(time.Millisecond)
					}
				}()
			}

			// A reader that only opens the entry's files without the lock,
			// as fast as it can, to hit the moment of the swap.
			wg.Add(1)
			go func() {
				defer wg.Done()
				seen, opens := existing, 0
				names := []string{MetadataName, "bzImage", VmlinuxName}
				for {
					select {
					case <-stop:
						if opens == 0 {
							errs <- errors.New("the lockless reader never opened the entry")
						}
						return
					default:
					}
					for _, name := range names {
						f, err := os.Open(filepath.Join(c.EntryDir(testKey), name))
						if err != nil {
							if seen || !os.IsNotExist(err) {
								errs <- fmt.Errorf("lockless open of %s after %d opens: %w", name, opens, err)
								return
							}
							continue
						}
						seen = true
						opens++
						f.Close()
					}
				}
			}()

			deadline := time.Now().Add(time.Second)
			gen := 1
			for ; time.Now().Before(deadline) || gen < 5; gen++ {
				storeGen(t, c, testKey, gen)
			}
			close(stop)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if err := child.Wait(); err != nil {
				t.Errorf("reader process: %v\n%s", err, child.Stderr)
			}
			t.Logf("%d stores; reader process: %s", gen-1, strings.TrimSpace(childOut.String()))
			if names := tmpDirs(t, c.Root); len(names) != 0 {
				t.Errorf("store directories left: %v", names)
			}
		})
	}
}

// mountTmpfs mounts a tmpfs of the given size at a new directory; it skips
// the test where this process may not mount.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func TestStoreFullDisk(t *testing.T) {
	c, err := Open(mountTmpfs(t, "1m"))
	if err != nil {
		t.Fatal(err)
	}
	storeGen(t, c, testKey, 1)

	src := t.TempDir()
	bigImage, bigVmlinux := genFiles(t, src, 2, 2<<20)
	smallImage, _ := genFiles(t, filepath.Join(src), 3, 300<<10)
	tests := []struct {
		name string
		req  StoreRequest
	}{
		{"image too big, existing key", StoreRequest{Key: testKey, ImagePath: bigImage, Meta: genMeta(2)}},
		{"image too big, new key", StoreRequest{Key: "new-key", ImagePath: bigImage, Meta: genMeta(2)}},
		{"vmlinux too big", StoreRequest{Key: testKey, ImagePath: smallImage, VmlinuxPath: bigVmlinux, Meta: genMeta(3)}},
		{"strip output too big", StoreRequest{Key: testKey, ImagePath: smallImage, VmlinuxPath: bigVmlinux, Meta: genMeta(3),
			Strip: func(src, dst string) error { return copyFile(src, dst) }}},
	}
	for _, tt := range tests {
		_, err := c.Store(context.Background(), tt.req)
		if err == nil {
			t.Fatalf("%s: Store on a full disk succeeded", tt.name)
		}
		msg := err.Error()
		for _, want := range []string{"no space left", "free space", c.Root, "nothing was stored"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q lacks %q", tt.name, msg, want)
			}
		}

		e, ok, err := c.Lookup(testKey)
		if err != nil || !ok || *e.Meta.Version != "gen-1" {
			t.Errorf("%s: the existing entry changed: hit=%v err=%v", tt.name, ok, err)
		}
		if _, err := os.Stat(c.EntryDir("new-key")); !os.IsNotExist(err) {
			t.Errorf("%s: a half entry exists: %v", tt.name, err)
		}
		if names := tmpDirs(t, c.Root); len(names) != 0 {
			t.Errorf("%s: store directories left: %v", tt.name, names)
		}
	}

	// Once there is room again, the same store succeeds.
	storeGen(t, c, "new-key", 4)
}

func TestStoreMissingBuildLog(t *testing.T) {
	c := openTestCache(t)
	image, _ := genFiles(t, t.TempDir(), 1, 4096)
	var warnings []string
	e, err := c.Store(context.Background(), StoreRequest{
		Key: testKey, ImagePath: image, BuildLogPath: filepath.Join(t.TempDir(), "build.log"), Meta: genMeta(1),
		Warn: func(format string, args ...any) { warnings = append(warnings, fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		t.Fatalf("a missing build log failed the store: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.Dir, BuildLogName)); !os.IsNotExist(err) {
		t.Errorf("the entry has a build log: %v", err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "build.log") {
		t.Errorf("warnings = %q, want one naming the build log", warnings)
	}
}

func TestStoreRejectsUnknownSource(t *testing.T) {
	c := openTestCache(t)
	image, _ := genFiles(t, t.TempDir(), 1, 4096)
	meta := genMeta(1)
	meta.Source = SourceInfo{}
	_, err := c.Store(context.Background(), StoreRequest{Key: testKey, ImagePath: image, Meta: meta})
	if err == nil || !strings.Contains(err.Error(), "unknown type") {
		t.Errorf("Store with an empty source type = %v, want an error", err)
	}
	if _, err := os.Stat(c.EntryDir(testKey)); !os.IsNotExist(err) {
		t.Errorf("an entry was created: %v", err)
	}
}
