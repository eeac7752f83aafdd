package cache

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// helperEnv selects a helper mode when the test binary runs as a child
// process of a test.
const helperEnv = "CACHE_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

// runHelper runs one child-process role. Arguments come from the
// environment so the test binary's own flags stay untouched.
func runHelper(mode string) int {
	c, err := Open(os.Getenv("CACHE_ROOT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	key := os.Getenv("CACHE_KEY")
	switch mode {
	case "store-slow":
		// Stores with a strip step that never ends, so the parent can kill
		// the process in the middle of a store.
		_, err := c.Store(context.Background(), StoreRequest{
			Key:         key,
			ImagePath:   os.Getenv("CACHE_IMAGE"),
			VmlinuxPath: os.Getenv("CACHE_VMLINUX"),
			Meta:        Metadata{Source: TarballSource(), Arch: "x86_64", ImageName: "bzImage"},
			Strip: func(src, dst string) error {
				if err := os.WriteFile(dst, []byte("partial"), 0o644); err != nil {
					return err
				}
				fmt.Println("stripping")
				time.Sleep(time.Minute)
				return nil
			},
		})
		fmt.Fprintln(os.Stderr, "store returned:", err)
		return 3
	case "reader":
		until, _ := strconv.Atoi(os.Getenv("CACHE_READ_MS"))
		r := &entryReader{c: c, key: key}
		deadline := time.Now().Add(time.Duration(until) * time.Millisecond)
		for time.Now().Before(deadline) {
			if err := r.readOnce(context.Background()); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			time.Sleep(time.Millisecond)
		}
		fmt.Printf("reads=%d locked=%d\n", r.reads, r.lockedReads)
		return 0
	case "hold-read":
		l, err := c.ReadLock(context.Background(), key)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin)
		l.Release()
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// helperCmd returns a command that runs the test binary in a helper mode.
func helperCmd(t *testing.T, mode string, env ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + mode}, env...)...)
	cmd.Stderr = &bytes.Buffer{}
	return cmd
}

// startHelper starts cmd and waits for its first stdout line, which must be
// want.
func startHelper(t *testing.T, cmd *exec.Cmd, want string) {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != want {
		t.Fatalf("helper printed %q (%v), want %q; stderr: %s", line, err, want, cmd.Stderr)
	}
}

func openTestCache(t *testing.T) *Cache {
	t.Helper()
	c, err := Open(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// genFiles writes an image and a vmlinux whose contents name generation gen
// and end in "END", so a reader can tell both which store it read and
// whether a file is complete. The image carries the x86 boot magic and the
// vmlinux the ELF magic, so the entry passes readEntry's checks.
func genFiles(t testing.TB, dir string, gen, size int) (image, vmlinux string) {
	t.Helper()
	image = filepath.Join(dir, fmt.Sprintf("bzImage-%d", gen))
	vmlinux = filepath.Join(dir, fmt.Sprintf("vmlinux-%d", gen))
	for _, f := range []struct{ path, first string }{
		{image, fmt.Sprintf("image gen %d\n", gen)},
		{vmlinux, fmt.Sprintf("%s vmlinux gen %d\n", elfMagic, gen)},
	} {
		body := []byte(f.first + strings.Repeat("x", max(0, size-len(f.first)-3)) + "END")
		if f.path == image {
			copy(body[bzImageMagicOffset:], bzImageMagic)
		}
		if err := os.WriteFile(f.path, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return image, vmlinux
}

// bootImage returns size bytes that pass the bzImage checks: the x86 boot
// magic at its offset, filler elsewhere.
func bootImage(size int) []byte {
	b := bytes.Repeat([]byte{0x90}, size)
	copy(b[bzImageMagicOffset:], bzImageMagic)
	return b
}

// storeGen stores generation gen under key with image name bzImage.
func storeGen(t testing.TB, c *Cache, key string, gen int) Entry {
	t.Helper()
	image, vmlinux := genFiles(t, t.TempDir(), gen, 64<<10)
	e, err := c.Store(context.Background(), StoreRequest{
		Key:         key,
		ImagePath:   image,
		VmlinuxPath: vmlinux,
		Meta:        genMeta(gen),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func genMeta(gen int) Metadata {
	v := fmt.Sprintf("gen-%d", gen)
	return Metadata{Version: &v, Source: TarballSource(), Arch: "x86_64", ImageName: "bzImage"}
}

// fileGen returns the generation named in the first line of a file written
// by genFiles, and an error if the file is not complete.
func fileGen(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	if !bytes.HasSuffix(data, []byte("END")) {
		return 0, fmt.Errorf("%s is incomplete (%d bytes)", path, len(data))
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	gen, err := strconv.Atoi(fields[len(fields)-1])
	if err != nil {
		return 0, fmt.Errorf("%s: first line %q names no generation", path, line)
	}
	return gen, nil
}

// entryReader reads one key the way a reader of the cache does, and checks
// that the entry never vanishes or changes under the shared lock.
type entryReader struct {
	c           *Cache
	key         string
	seen        bool
	reads       int
	lockedReads int
}

func (r *entryReader) readOnce(ctx context.Context) error {
	r.reads++

	// Without the lock, each file is whole and the key never disappears
	// once it was stored, because entries are published by rename.
	metaPath := filepath.Join(r.c.EntryDir(r.key), MetadataName)
	data, err := os.ReadFile(metaPath)
	if os.IsNotExist(err) && !r.seen {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %d: metadata.json: %w", r.reads, err)
	}
	r.seen = true
	if _, err := DecodeMetadata(data); err != nil {
		return fmt.Errorf("read %d: lockless metadata.json is corrupt: %w", r.reads, err)
	}
	if _, err := fileGen(filepath.Join(r.c.EntryDir(r.key), "bzImage")); err != nil {
		return fmt.Errorf("read %d: lockless image: %w", r.reads, err)
	}

	// Under the shared lock, metadata, image and vmlinux are one store's.
	l, err := r.c.ReadLock(ctx, r.key)
	if err != nil {
		return fmt.Errorf("read %d: %w", r.reads, err)
	}
	defer l.Release()
	r.lockedReads++
	e, ok, err := r.c.Lookup(r.key)
	if err != nil || !ok {
		return fmt.Errorf("read %d: lookup under the lock: hit=%v err=%v", r.reads, ok, err)
	}
	metaGen, err := strconv.Atoi(strings.TrimPrefix(*e.Meta.Version, "gen-"))
	if err != nil {
		return fmt.Errorf("read %d: version %q", r.reads, *e.Meta.Version)
	}
	imageGen, err := fileGen(e.ImagePath)
	if err != nil {
		return fmt.Errorf("read %d: %w", r.reads, err)
	}
	vmlinuxGen, err := fileGen(e.VmlinuxPath)
	if err != nil {
		return fmt.Errorf("read %d: %w", r.reads, err)
	}
	if metaGen != imageGen || metaGen != vmlinuxGen {
		return fmt.Errorf("read %d: mixed entry: metadata gen %d, image gen %d, vmlinux gen %d", r.reads, metaGen, imageGen, vmlinuxGen)
	}
	return nil
}
