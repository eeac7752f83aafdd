package cache

import (
	"errors"
	"fmt"
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

	e := Entry{Key: key, Dir: dir, Meta: meta, ImagePath: filepath.Join(dir, meta.ImageName)}
	if meta.HasVmlinux {
		if _, err := root.Stat(VmlinuxName); err == nil {
			e.VmlinuxPath = filepath.Join(dir, VmlinuxName)
		}
	}
	return e, nil
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

// List returns every entry directory under the root, valid ones newest first
// by built_at, then the corrupt ones by key. Names starting with "." and
// files that are not directories are skipped. A missing root lists nothing.
func (c *Cache) List() ([]ListEntry, error) {
	dirents, err := os.ReadDir(c.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache list %s: %w — check that the cache root is readable", c.Root, err)
	}

	var out []ListEntry
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
		out = append(out, le)
	}

	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Valid != b.Valid {
			return a.Valid
		}
		if a.Valid && a.Entry.Meta.BuiltAt != b.Entry.Meta.BuiltAt {
			return a.Entry.Meta.BuiltAt > b.Entry.Meta.BuiltAt
		}
		return a.Key < b.Key
	})
	return out, nil
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
