package source

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// entryKind is the type of entry the extraction created at a path.
type entryKind uint8

const (
	kindNone entryKind = iota
	kindDir
	kindFile
	kindSymlink
)

const (
	// maxBufferedFile is the largest file handed to a writer goroutine;
	// larger files are streamed to disk by the reader itself.
	maxBufferedFile = 8 << 20
	// bufferBudget caps the file contents held in memory at once.
	bufferBudget = 64 << 20
	// maxSymlinkHops bounds symlink resolution, as the kernel's 40 does.
	maxSymlinkHops = 40
)

// treeWriter creates a tree's entries under root. One goroutine (the tar
// reader) calls add, which creates directories and links itself. A small
// pool of writer goroutines creates the regular files, because a kernel
// tree's ~90k file creations cost about as much CPU as decoding the xz.
//
// The reader goroutine alone owns kinds, links, lastParent and dirs: every
// directory is created by it before a file inside is handed to a writer, so
// writers never race on the tree's shape.
type treeWriter struct {
	root       string
	rootFD     int
	useOpenat2 bool

	kinds      map[string]entryKind
	links      map[string]string // symlink name → target
	lastParent string            // parent dir most recently checked
	dirs       []dirTime         // directories whose mtime is set at the end

	jobs    chan writeJob
	workers sync.WaitGroup
	pending sync.WaitGroup // jobs handed out and not yet written
	budget  byteBudget
	closed  bool

	errMu sync.Mutex
	err   error
}

type dirTime struct {
	name  string
	mtime time.Time
}

type writeJob struct {
	name  string
	perm  uint32
	mtime time.Time
	buf   *[]byte
	size  int
}

func newTreeWriter(root string) (*treeWriter, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	w := &treeWriter{
		root:   root,
		rootFD: fd,
		kinds:  make(map[string]entryKind, 1<<14),
		links:  map[string]string{},
		jobs:   make(chan writeJob, 256),
	}
	w.budget.init(bufferBudget)
	w.useOpenat2 = openat2Works(fd)

	// Consecutive files mostly share a directory, whose lock serialises
	// their creation, so writers beyond a handful only wait on each other.
	n := min(max(2*runtime.GOMAXPROCS(0), 4), 8)
	for range n {
		w.workers.Add(1)
		go w.writeLoop()
	}
	return w, nil
}

// openat2Works reports whether openat2(2) is available; kernels before 5.6
// and some seccomp filters lack it.
func openat2Works(dirfd int) bool {
	fd, err := unix.Openat2(dirfd, ".", &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	})
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

func (w *treeWriter) setErr(err error) {
	w.errMu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.errMu.Unlock()
}

// failed returns the first error a writer goroutine hit.
func (w *treeWriter) failed() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// close stops the writer goroutines after they finish the queued files and
// returns the first error any of them hit.
func (w *treeWriter) close() error {
	if !w.closed {
		w.closed = true
		close(w.jobs)
		w.workers.Wait()
	}
	return w.failed()
}

// release closes the root directory descriptor.
func (w *treeWriter) release() {
	if w.rootFD >= 0 {
		unix.Close(w.rootFD)
		w.rootFD = -1
	}
}

// add creates the entry hdr describes; r holds a regular file's content.
func (w *treeWriter) add(hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return nil
	}
	name, err := cleanEntryName(hdr.Name)
	if err != nil {
		return err
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		return w.mkdir(name, hdr)
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont:
		if name == "" {
			return unsafeEntry(hdr.Name, "is a file in place of the top directory")
		}
		return w.file(name, hdr, r)
	case tar.TypeSymlink:
		return w.symlink(name, hdr)
	case tar.TypeLink:
		return w.hardlink(name, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return fmt.Errorf("tar entry %q is a device or FIFO, and source tarballs contain none — check where the tarball came from", hdr.Name)
	}
	return fmt.Errorf("tar entry %q has unsupported type %q — repack the tarball with GNU tar", hdr.Name, hdr.Typeflag)
}

// prepareParent makes sure every directory above name exists and is a
// directory this extraction created, never a symlink, so nothing is
// written through a link.
func (w *treeWriter) prepareParent(name string) error {
	parent := path.Dir(name)
	if parent == "." || parent == w.lastParent {
		return nil
	}
	for i := 0; i <= len(parent); i++ {
		if i < len(parent) && parent[i] != '/' {
			continue
		}
		p := parent[:i]
		switch w.kinds[p] {
		case kindDir:
			continue
		case kindSymlink:
			return unsafeEntry(name, fmt.Sprintf("goes through symlink %q", p))
		case kindFile:
			return fmt.Errorf("tar entry %q: %q is a file, not a directory — the tarball is broken", name, p)
		}
		if err := unix.Mkdirat(w.rootFD, p, 0o755); err != nil {
			return w.fsError("create directory", p, err)
		}
		w.kinds[p] = kindDir
	}
	w.lastParent = parent
	return nil
}

// replace clears the way for a new entry at name. A later entry with the
// same name replaces an earlier file or symlink, as tar does; replacing a
// directory is an error.
func (w *treeWriter) replace(name string, isDir bool) error {
	switch w.kinds[name] {
	case kindNone:
		return nil
	case kindDir:
		if isDir {
			return nil
		}
		return fmt.Errorf("tar entry %q replaces a directory with a file — the tarball is broken", name)
	}
	if isDir {
		return fmt.Errorf("tar entry %q replaces a file or symlink with a directory — the tarball is broken", name)
	}
	// The earlier file may still be queued for a writer.
	w.pending.Wait()
	if err := unix.Unlinkat(w.rootFD, name, 0); err != nil {
		return fmt.Errorf("replace %s: %w", name, err)
	}
	delete(w.links, name)
	w.kinds[name] = kindNone
	return nil
}

func (w *treeWriter) mkdir(name string, hdr *tar.Header) error {
	if name == "" {
		return nil
	}
	if err := w.prepareParent(name); err != nil {
		return err
	}
	if err := w.replace(name, true); err != nil {
		return err
	}
	if w.kinds[name] != kindDir {
		// Owner rwx is kept so the extraction can fill the directory.
		perm := uint32(hdr.Mode)&0o777 | 0o700
		if err := unix.Mkdirat(w.rootFD, name, perm); err != nil {
			return w.fsError("create directory", name, err)
		}
		w.kinds[name] = kindDir
	}
	w.dirs = append(w.dirs, dirTime{name: name, mtime: hdr.ModTime})
	return nil
}

func (w *treeWriter) file(name string, hdr *tar.Header, r io.Reader) error {
	if err := w.prepareParent(name); err != nil {
		return err
	}
	if err := w.replace(name, false); err != nil {
		return err
	}
	w.kinds[name] = kindFile
	perm := uint32(hdr.Mode) & 0o777

	if hdr.Size > maxBufferedFile {
		return w.streamFile(name, perm, hdr.ModTime, r)
	}
	size := int(hdr.Size)
	w.budget.acquire(size)
	buf := getBuffer(size)
	if _, err := io.ReadFull(r, (*buf)[:size]); err != nil {
		putBuffer(buf)
		w.budget.release(size)
		return corruptError{fmt.Errorf("read tar entry %q: %w", name, err)}
	}
	w.pending.Add(1)
	w.jobs <- writeJob{name: name, perm: perm, mtime: hdr.ModTime, buf: buf, size: size}
	return nil
}

func (w *treeWriter) writeLoop() {
	defer w.workers.Done()
	for job := range w.jobs {
		if w.failed() == nil {
			if err := w.writeFile(job.name, job.perm, job.mtime, (*job.buf)[:job.size]); err != nil {
				w.setErr(err)
			}
		}
		putBuffer(job.buf)
		w.budget.release(job.size)
		w.pending.Done()
	}
}

// fsError describes a failed file system operation on the tree, with a
// hint when the file system is full.
func (w *treeWriter) fsError(op, name string, err error) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("%s %s: %w — free space on the file system of %s and retry", op, name, err, w.root)
	}
	return fmt.Errorf("%s %s: %w", op, name, err)
}

// createFile creates name exclusively. With openat2 the kernel also refuses
// to resolve any symlink or leave the root, a second line of defence
// behind prepareParent.
func (w *treeWriter) createFile(name string, perm uint32) (int, error) {
	flags := unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if w.useOpenat2 {
		return unix.Openat2(w.rootFD, name, &unix.OpenHow{
			Flags:   uint64(flags),
			Mode:    uint64(perm),
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
		})
	}
	return unix.Openat(w.rootFD, name, flags, perm)
}

func (w *treeWriter) writeFile(name string, perm uint32, mtime time.Time, data []byte) error {
	fd, err := w.createFile(name, perm)
	if err != nil {
		return w.fsError("create", name, err)
	}
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if err != nil {
			unix.Close(fd)
			return w.fsError("write", name, err)
		}
		data = data[n:]
	}
	if err := setFileTime(fd, mtime); err != nil {
		unix.Close(fd)
		return fmt.Errorf("set mtime of %s: %w", name, err)
	}
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	return nil
}

// streamFile writes a large file from the tar stream without buffering it.
func (w *treeWriter) streamFile(name string, perm uint32, mtime time.Time, r io.Reader) error {
	fd, err := w.createFile(name, perm)
	if err != nil {
		return w.fsError("create", name, err)
	}
	buf := getBuffer(1 << 20)
	defer putBuffer(buf)
	for {
		n, rerr := r.Read(*buf)
		for data := (*buf)[:n]; len(data) > 0; {
			m, err := unix.Write(fd, data)
			if err != nil {
				unix.Close(fd)
				return w.fsError("write", name, err)
			}
			data = data[m:]
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			unix.Close(fd)
			return corruptError{fmt.Errorf("read tar entry %q: %w", name, rerr)}
		}
	}
	if err := setFileTime(fd, mtime); err != nil {
		unix.Close(fd)
		return fmt.Errorf("set mtime of %s: %w", name, err)
	}
	return unix.Close(fd)
}

// setFileTime sets an open file's mtime, leaving its atime alone. It calls
// utimensat(fd, NULL, ...) directly because x/sys/unix's Futimes goes
// through /proc/self/fd and costs a path lookup per file.
func setFileTime(fd int, mtime time.Time) error {
	ts := [2]unix.Timespec{
		{Nsec: unix.UTIME_OMIT},
		unix.NsecToTimespec(mtime.UnixNano()),
	}
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func (w *treeWriter) symlink(name string, hdr *tar.Header) error {
	if name == "" {
		return unsafeEntry(hdr.Name, "is a symlink in place of the top directory")
	}
	target := hdr.Linkname
	switch {
	case target == "":
		return fmt.Errorf("tar entry %q is a symlink with an empty target — the tarball is broken", hdr.Name)
	case strings.HasPrefix(target, "/"):
		return unsafeEntry(hdr.Name, fmt.Sprintf("is a symlink to absolute path %q", target))
	}
	if joined := path.Join(path.Dir(name), target); joined == ".." || strings.HasPrefix(joined, "../") {
		return unsafeEntry(hdr.Name, fmt.Sprintf("is a symlink to %q, outside the tree", target))
	}
	if err := w.prepareParent(name); err != nil {
		return err
	}
	if err := w.replace(name, false); err != nil {
		return err
	}
	if err := unix.Symlinkat(target, w.rootFD, name); err != nil {
		return w.fsError("create symlink", name, err)
	}
	w.kinds[name] = kindSymlink
	w.links[name] = target
	if !hdr.ModTime.IsZero() {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(hdr.ModTime.UnixNano())}
		if err := unix.UtimesNanoAt(w.rootFD, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set mtime of symlink %s: %w", name, err)
		}
	}
	return nil
}

func (w *treeWriter) hardlink(name string, hdr *tar.Header) error {
	if name == "" {
		return unsafeEntry(hdr.Name, "is a hard link in place of the top directory")
	}
	if strings.HasPrefix(hdr.Linkname, "/") {
		return unsafeEntry(hdr.Name, fmt.Sprintf("is a hard link to absolute path %q", hdr.Linkname))
	}
	target, err := cleanEntryName(hdr.Linkname)
	if err != nil {
		return unsafeEntry(hdr.Name, fmt.Sprintf("is a hard link to %q, outside the tree", hdr.Linkname))
	}
	if w.kinds[target] != kindFile {
		return unsafeEntry(hdr.Name, fmt.Sprintf("is a hard link to %q, which is not a regular file earlier in the tarball", hdr.Linkname))
	}
	if target == name {
		// GNU tar writes a file named twice on its command line as a hard
		// link to itself, so the file is already in place.
		return nil
	}
	if err := w.prepareParent(name); err != nil {
		return err
	}
	if err := w.replace(name, false); err != nil {
		return err
	}
	// The target may still be queued for a writer and not exist yet.
	w.pending.Wait()
	if err := w.failed(); err != nil {
		return err
	}
	if err := unix.Linkat(w.rootFD, target, w.rootFD, name, 0); err != nil {
		return w.fsError("create hard link", name, err)
	}
	w.kinds[name] = kindFile
	return nil
}

// finishTree sets directory mtimes, now that nothing more is created in
// them, and checks every symlink with the links between them followed.
func (w *treeWriter) finishTree() error {
	for _, d := range w.dirs {
		if d.mtime.IsZero() {
			continue
		}
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(d.mtime.UnixNano())}
		if err := unix.UtimesNanoAt(w.rootFD, d.name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set mtime of %s: %w", d.name, err)
		}
	}

	names := make([]string, 0, len(w.links))
	for name := range w.links {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := w.checkSymlink(name); err != nil {
			return err
		}
	}
	return nil
}

// checkSymlink resolves the symlink at name through the tree's own links,
// as the kernel would, and rejects it when a step climbs above the top.
// Each link was checked on its own when added, but a pair such as s -> "."
// and a -> "s/.." passes that check and still points outside.
func (w *treeWriter) checkSymlink(name string) error {
	var stack []string
	if dir := path.Dir(name); dir != "." {
		stack = strings.Split(dir, "/")
	}
	pending := strings.Split(w.links[name], "/")
	for hops := 0; len(pending) > 0; {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return unsafeEntry(name, fmt.Sprintf("is a symlink to %q, which resolves outside the tree", w.links[name]))
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		target, ok := w.links[strings.Join(stack, "/")]
		if !ok {
			continue
		}
		if hops++; hops > maxSymlinkHops {
			return unsafeEntry(name, "is part of a symlink loop")
		}
		if strings.HasPrefix(target, "/") {
			return unsafeEntry(name, fmt.Sprintf("resolves through a symlink to absolute path %q", target))
		}
		stack = stack[:len(stack)-1]
		pending = append(strings.Split(target, "/"), pending...)
	}
	return nil
}

// byteBudget is a counting semaphore over bytes of buffered file content.
type byteBudget struct {
	mu   sync.Mutex
	cond sync.Cond
	free int
}

func (b *byteBudget) init(n int) {
	b.free = n
	b.cond.L = &b.mu
}

func (b *byteBudget) acquire(n int) {
	b.mu.Lock()
	for b.free < n {
		b.cond.Wait()
	}
	b.free -= n
	b.mu.Unlock()
}

func (b *byteBudget) release(n int) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.cond.Signal()
}

// Buffers come from per-size-class pools so that ~90k file contents do not
// each become garbage.
var bufferClasses = [...]int{4 << 10, 32 << 10, 256 << 10, 1 << 20, maxBufferedFile}

var bufferPools [len(bufferClasses)]sync.Pool

func getBuffer(n int) *[]byte {
	for i, size := range bufferClasses {
		if n <= size {
			if b, ok := bufferPools[i].Get().(*[]byte); ok {
				return b
			}
			b := make([]byte, size)
			return &b
		}
	}
	b := make([]byte, n)
	return &b
}

func putBuffer(b *[]byte) {
	for i, size := range bufferClasses {
		if cap(*b) == size {
			*b = (*b)[:size]
			bufferPools[i].Put(b)
			return
		}
	}
}
