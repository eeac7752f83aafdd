package cache

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Entry is a usable cache entry.
type Entry struct {
	Key         string
	Dir         string
	Meta        Metadata
	ImagePath   string
	VmlinuxPath string // "" when the entry holds no vmlinux
}

// Status classifies a listed entry as usable or not.
type Status int

// Statuses of a ListEntry.
const (
	Valid Status = iota
	Corrupt
)

func (s Status) String() string {
	if s == Valid {
		return "valid"
	}
	return "corrupt"
}

// ListEntry is one directory of the cache root as List found it.
type ListEntry struct {
	Key   string
	Dir   string
	Valid bool
	Entry Entry  // set when Valid
	Kind  string // when corrupt: one of the Kind constants
	// Reason explains why the entry is corrupt.
	Reason string
	Size   int64 // bytes the entry directory occupies on disk
	// Tags is left empty by List; callers fill it, for example with Tags.
	Tags []string
}

// Status returns Valid or Corrupt.
func (e ListEntry) Status() Status {
	if e.Valid {
		return Valid
	}
	return Corrupt
}

// Tags of a listed entry.
const (
	TagStaleKconfig     = "stale kconfig"     // built with another kconfig fragment
	TagUntrackedKconfig = "untracked kconfig" // no fragment hash recorded
	TagExtraKconfig     = "extra kconfig"     // built with an extra fragment
)

// Kconfig statuses returned by KconfigStatus.
const (
	KconfigMatches   = "matches"
	KconfigStale     = "stale"
	KconfigUntracked = "untracked"
)

// KconfigStatus compares the fragment hash recorded in m with the hash of
// the current fragment.
func KconfigStatus(m Metadata, currentFragmentHash string) string {
	switch {
	case m.KtstrKconfigHash == nil:
		return KconfigUntracked
	case *m.KtstrKconfigHash == currentFragmentHash:
		return KconfigMatches
	}
	return KconfigStale
}

// Tags returns the kconfig tags of e: TagStaleKconfig or TagUntrackedKconfig
// against currentFragmentHash, and TagExtraKconfig.
func Tags(e Entry, currentFragmentHash string) []string {
	var tags []string
	switch KconfigStatus(e.Meta, currentFragmentHash) {
	case KconfigStale:
		tags = append(tags, TagStaleKconfig)
	case KconfigUntracked:
		tags = append(tags, TagUntrackedKconfig)
	}
	if e.Meta.ExtraKconfigHash != nil {
		tags = append(tags, TagExtraKconfig)
	}
	return tags
}

// Lookup returns the entry of key when it is a hit: key is valid, its
// directory exists, its metadata.json parses, and the image it names is a
// regular file. A corrupt entry is a miss, not an error.
func (c *Cache) Lookup(key string) (Entry, bool, error) {
	if err := ValidateKey(key); err != nil {
		return Entry{}, false, err
	}
	dir := c.EntryDir(key)
	info, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !info.IsDir()) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("cache lookup %s: %w", key, err)
	}

	e, err := readEntryTwice(key, dir)
	var bad *CorruptError
	switch {
	case errors.As(err, &bad):
		slog.Debug("cache: corrupt entry is a miss", "key", key, "reason", bad.Reason)
		return Entry{}, false, nil
	case errors.Is(err, fs.ErrNotExist):
		// The entry was removed after the Stat.
		return Entry{}, false, nil
	case err != nil:
		return Entry{}, false, fmt.Errorf("cache lookup %s: %w", key, err)
	}
	return e, true, nil
}

// readEntry reads the entry at dir through one directory handle, so the
// metadata and the image it checks belong to the same directory even when a
// store swaps the entry meanwhile. Errors opening dir are returned as they
// are; everything wrong inside it is a *CorruptError.
func readEntry(key, dir string) (Entry, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Entry{}, err
	}
	defer root.Close()

	meta, err := readMetadata(root.FS())
	if err != nil {
		return Entry{}, err
	}
	if err := validateImageName(meta.ImageName); err != nil {
		return Entry{}, corrupt(KindSchemaDrift, err, "metadata.json schema drift: %v", err)
	}
	info, err := root.Stat(meta.ImageName)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Entry{}, corrupt(KindImageMissing, err, "image file %s missing from the entry directory", meta.ImageName)
	case err != nil:
		return Entry{}, corrupt(KindUnknown, err, "image file %s cannot be read: %v", meta.ImageName, err)
	case !info.Mode().IsRegular():
		return Entry{}, corrupt(KindUnknown, nil, "image file %s is not a regular file (mode %s)", meta.ImageName, info.Mode())
	}
	if err := checkImage(root, meta.ImageName, info.Size()); err != nil {
		return Entry{}, err
	}

	e := Entry{Key: key, Dir: dir, Meta: meta, ImagePath: filepath.Join(dir, meta.ImageName)}
	if meta.HasVmlinux {
		// An entry without its vmlinux still boots, so it stays a hit. A
		// vmlinux that is present but damaged would break symbol lookups.
		info, err := root.Stat(VmlinuxName)
		if err == nil {
			if err := checkVmlinux(root, info); err != nil {
				return Entry{}, err
			}
			e.VmlinuxPath = filepath.Join(dir, VmlinuxName)
		}
	}
	return e, nil
}

// Boot image checks. The x86 boot protocol (2.00 and later, which every
// bzImage uses) puts the magic "HdrS" at offset 0x202. Other architectures'
// images get the size check only.
const (
	bzImageName        = "bzImage"
	bzImageMagicOffset = 0x202
	bzImageMagic       = "HdrS"
	elfMagic           = "\x7fELF"
	rebuildHint        = "rebuild with kernel:build -force or remove it with kernel:clean -corruptonly"
)

// checkImage reads at most the first 0x206 bytes of the image, so a lookup
// stays cheap however large the kernel is.
func checkImage(root *os.Root, name string, size int64) error {
	var head []byte
	if size > 0 && name == bzImageName {
		var err error
		if head, err = readHead(root.Open, name, bzImageMagicOffset+len(bzImageMagic)); err != nil {
			return corrupt(KindUnknown, err, "image file %s cannot be read: %v", name, err)
		}
	}
	if problem := imageProblem(name, size, head); problem != "" {
		return corrupt(KindUnknown, nil, "%s %s — %s", name, problem, rebuildHint)
	}
	return nil
}

// checkVmlinux checks that the entry's vmlinux is a non-empty ELF file,
// reading its first 4 bytes only.
func checkVmlinux(root *os.Root, info fs.FileInfo) error {
	if !info.Mode().IsRegular() {
		return corrupt(KindUnknown, nil, "%s is not a regular file (mode %s) — %s", VmlinuxName, info.Mode(), rebuildHint)
	}
	var head []byte
	if info.Size() > 0 {
		var err error
		if head, err = readHead(root.Open, VmlinuxName, len(elfMagic)); err != nil {
			return corrupt(KindUnknown, err, "%s cannot be read: %v", VmlinuxName, err)
		}
	}
	if problem := vmlinuxProblem(info.Size(), head); problem != "" {
		return corrupt(KindUnknown, nil, "%s %s — %s", VmlinuxName, problem, rebuildHint)
	}
	return nil
}

// imageProblem describes the defect of a boot image of the given name and
// size whose first bytes are head, or returns "" for a usable image.
func imageProblem(name string, size int64, head []byte) string {
	switch {
	case size == 0:
		return "is empty (0 bytes)"
	case name != bzImageName:
		return ""
	case len(head) < bzImageMagicOffset+len(bzImageMagic):
		return fmt.Sprintf("is %d bytes, too short to hold the x86 boot header", len(head))
	case string(head[bzImageMagicOffset:bzImageMagicOffset+len(bzImageMagic)]) != bzImageMagic:
		return fmt.Sprintf("has no x86 boot header (no %q at offset %#x)", bzImageMagic, bzImageMagicOffset)
	}
	return ""
}

// vmlinuxProblem describes the defect of a vmlinux of the given size whose
// first bytes are head, or returns "" for a usable vmlinux.
func vmlinuxProblem(size int64, head []byte) string {
	switch {
	case size == 0:
		return "is empty (0 bytes)"
	case string(head) != elfMagic:
		return "is not an ELF file"
	}
	return ""
}

// readHead returns up to the first n bytes of the file name.
func readHead(open func(string) (*os.File, error), name string, n int) ([]byte, error) {
	f, err := open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	got, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:got], nil
}

// readEntryTwice reads the entry again when it looks corrupt. Without the
// entry lock, a store can swap the entry and delete the old directory while
// it is being read, and the second read then finds the new one.
func readEntryTwice(key, dir string) (Entry, error) {
	e, err := readEntry(key, dir)
	var bad *CorruptError
	if errors.As(err, &bad) {
		return readEntry(key, dir)
	}
	return e, err
}

// List returns the entries under the root, valid ones newest first by
// built_at, then the corrupt ones by key. Only directories whose name
// LooksLikeKey or that contain a metadata.json are entries. Names starting
// with ".", files and other directories are skipped, so a root set to a home
// directory never lists its other contents. A missing root lists nothing.
func (c *Cache) List() ([]ListEntry, error) {
	l, err := c.Scan()
	return l.Entries, err
}

// Listing is the result of Scan: the entries and the ignored directories.
type Listing struct {
	Entries []ListEntry // as List returns them
	// Ignored lists, sorted, the directories not starting with "." that are
	// not cache entries, so a caller can mention how many there are.
	Ignored []string
}

// Scan does the work of List and also returns the names of the directories
// it ignored because they are not cache entries.
func (c *Cache) Scan() (Listing, error) {
	dirents, err := os.ReadDir(c.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return Listing{}, nil
	}
	if err != nil {
		return Listing{}, fmt.Errorf("cache list %s: %w — check that the cache root is readable", c.Root, err)
	}

	var l Listing
	for _, d := range dirents {
		name := d.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		dir := filepath.Join(c.Root, name)
		info, err := os.Stat(dir)
		if err != nil || !info.IsDir() {
			continue
		}
		if !isEntryDir(name, dir) {
			l.Ignored = append(l.Ignored, name)
			continue
		}

		le := ListEntry{Key: name, Dir: dir, Size: diskUsage(dir)}
		e, err := readEntryTwice(name, dir)
		var bad *CorruptError
		switch {
		case err == nil:
			le.Valid = true
			le.Entry = e
		case errors.As(err, &bad):
			le.Kind, le.Reason = bad.Kind, bad.Reason
		default:
			le.Kind, le.Reason = KindUnknown, fmt.Sprintf("entry directory cannot be opened: %v", err)
		}
		l.Entries = append(l.Entries, le)
	}
	if len(l.Ignored) > 0 {
		slog.Debug("cache: ignored directories that are not cache entries", "root", c.Root, "count", len(l.Ignored))
	}

	sort.SliceStable(l.Entries, func(i, j int) bool {
		a, b := l.Entries[i], l.Entries[j]
		if a.Valid != b.Valid {
			return a.Valid
		}
		if a.Valid && a.Entry.Meta.BuiltAt != b.Entry.Meta.BuiltAt {
			return a.Entry.Meta.BuiltAt > b.Entry.Meta.BuiltAt
		}
		return a.Key < b.Key
	})
	return l, nil
}

// isEntryDir reports whether the directory dir, named name in the root, is a
// cache entry, corrupt or not. Its name must be a valid key, and it must
// either look like a key or contain a metadata.json, as entries with older
// key forms do. Any other directory is not ours to list or remove.
func isEntryDir(name, dir string) bool {
	if ValidateKey(name) != nil {
		return false
	}
	if LooksLikeKey(name) {
		return true
	}
	_, err := os.Lstat(filepath.Join(dir, MetadataName))
	return err == nil
}

// diskUsage returns the bytes allocated to the files under dir, as du counts
// them; errors count as zero because the size is only shown.
func diskUsage(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		} else {
			total += info.Size()
		}
		return nil
	})
	return total
}
