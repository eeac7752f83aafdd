package source

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// extractPrefix starts the name of every temp dir Extract creates.
const extractPrefix = ".extract-"

// ExtractFile extracts a local kernel tarball (.tar.xz, .tar.gz, .tar.bz2 or
// .tar.zst) into a new temp dir under parentDir and returns the tree, with
// its version read from the tree's Makefile. The caller calls Cleanup on
// the result when the build ends.
//
// progress, when not nil, receives the compressed bytes read so far and the
// file size. It may run on another goroutine, but never concurrently with
// itself.
func ExtractFile(ctx context.Context, tarball, parentDir string, progress func(done, total int64)) (*Acquired, error) {
	compression := TarballCompression(tarball)
	if compression == "" {
		return nil, fmt.Errorf("extract: %s is not a kernel tarball — pass a .tar.xz, .tar.gz, .tar.bz2 or .tar.zst file, or a source directory", tarball)
	}
	f, err := os.Open(tarball)
	if err != nil {
		return nil, fmt.Errorf("extract: cannot open tarball: %w — check the path and its permissions", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("extract: %s is a directory — pass it as a source tree, not a tarball", tarball)
	}
	canonical, err := filepath.Abs(tarball)
	if err == nil {
		canonical, err = filepath.EvalSymlinks(canonical)
	}
	if err != nil {
		return nil, fmt.Errorf("extract: resolve %s: %w", tarball, err)
	}

	sum := sha256.New()
	hashed := io.TeeReader(newProgressReader(f, fi.Size(), progress), sum)
	dir, err := extract(ctx, hashed, compression, parentDir)
	if err == nil {
		// The decoders read to the end, but the hash must cover every byte.
		_, err = io.Copy(io.Discard, hashed)
	}
	if err != nil {
		return nil, fmt.Errorf("extract %s: %w", tarball, err)
	}
	acq, err := OpenExtracted(dir)
	if err != nil {
		return nil, fmt.Errorf("extract %s: %w", tarball, err)
	}
	acq.Tarball = &TarballFile{Path: canonical, Size: fi.Size(), ModTime: fi.ModTime(), SHA256: hex.EncodeToString(sum.Sum(nil))}
	return acq, nil
}

// OpenExtracted returns a tree that Extract wrote as a temp tarball tree,
// with its version read from its Makefile. When dir holds no kernel tree,
// OpenExtracted removes it and returns an error.
func OpenExtracted(dir string) (*Acquired, error) {
	acq := &Acquired{Dir: dir, Origin: OriginTarball, IsTemp: true}
	if err := checkKernelTree(dir, dir); err != nil {
		var msg string
		if strings.HasPrefix(filepath.Base(dir), gatheredPrefix) {
			msg = fmt.Sprintf("the tarball contains no kernel source tree: its top level holds %s, and neither Makefile and Kconfig nor a single directory containing them — pass a kernel source tarball", topLevelNames(dir))
		} else {
			msg = fmt.Sprintf("the tarball contains no kernel source tree: its top-level directory %s/ has no Makefile and Kconfig (it holds %s) — pass a kernel source tarball", filepath.Base(dir), topLevelNames(dir))
		}
		acq.Cleanup()
		return nil, errors.New(msg)
	}
	version, err := ReadMakefileVersion(dir)
	if err != nil {
		acq.Cleanup()
		return nil, err
	}
	acq.Version = version
	return acq, nil
}

// Extract reads a compressed tar stream from r and writes it into a new
// temp dir under parentDir, named ".extract-*". compression is xz, gzip,
// bzip2, zstd or none, and "gz", "bz2" and "zst" are accepted too. Extract
// returns the tree's top directory. That is the tarball's single top-level
// directory or, when the tarball has several top-level entries, a new
// directory that contains all of them. Remove the tree with RemoveExtracted
// when done.
//
// Extract rejects every entry that would land outside the temp dir:
//   - an absolute name or a name with a ".." component
//   - a symlink whose target leaves the tree, checked once more after
//     extraction with the links between symlinks followed
//   - a hard link to anything but an earlier regular file
//   - an entry whose path goes through a symlink
//
// It rejects device and FIFO entries too. On any error the temp dir is
// removed. Files keep their permission bits with the umask applied, and
// owners are not restored.
func Extract(ctx context.Context, r io.Reader, compression string, parentDir string) (string, error) {
	dir, err := extract(ctx, r, compression, parentDir)
	if err != nil {
		return "", fmt.Errorf("extract: %w", err)
	}
	return dir, nil
}

// extract is Extract with errors that carry no "extract" label, so each
// exported caller adds its own.
func extract(ctx context.Context, r io.Reader, compression string, parentDir string) (string, error) {
	compression, err := normalizeCompression(compression)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(parentDir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w — choose a writable directory", parentDir, err)
	}
	tmp, err := os.MkdirTemp(parentDir, extractPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("create temp dir in %s: %w — check that it is writable and has free space", parentDir, err)
	}

	dir, err := extractInto(ctx, r, compression, tmp)
	if err != nil {
		if rmErr := os.RemoveAll(tmp); rmErr != nil {
			err = fmt.Errorf("%w (and removing %s failed: %v)", err, tmp, rmErr)
		}
		return "", err
	}
	return dir, nil
}

// extractRoot returns the temp dir Extract created around dir, or "" when
// dir's parent is not one.
func extractRoot(dir string) string {
	parent := filepath.Dir(dir)
	if strings.HasPrefix(filepath.Base(parent), extractPrefix) {
		return parent
	}
	return ""
}

// RemoveExtracted removes the temp dir that Extract created around dir.
func RemoveExtracted(dir string) error {
	tmp := extractRoot(dir)
	if tmp == "" {
		return fmt.Errorf("extract: %s was not returned by Extract (its parent is not a %s* dir) — remove it by hand", dir, extractPrefix)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("extract: remove %s: %w", tmp, err)
	}
	return nil
}

func extractInto(ctx context.Context, r io.Reader, compression, tmp string) (string, error) {
	dec, err := openDecoder(ctx, r, compression)
	if err != nil {
		return "", err
	}
	w, err := newTreeWriter(tmp)
	if err != nil {
		dec.finish(err)
		return "", err
	}
	defer w.release()

	readErr := readArchive(ctx, tar.NewReader(bufio.NewReaderSize(dec, 1<<20)), w)
	if closeErr := w.close(); readErr == nil {
		readErr = closeErr
	}
	if err := dec.finish(readErr); err != nil {
		return "", err
	}
	if err := w.finishTree(); err != nil {
		return "", err
	}
	return topDirectory(tmp)
}

// readArchive reads every entry of tr into w.
func readArchive(ctx context.Context, tr *tar.Reader, w *treeWriter) error {
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := w.failed(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			if n == 0 {
				return errors.New("the tarball contains no entries — pass a kernel source tarball")
			}
			return nil
		}
		if err != nil {
			return corruptError{fmt.Errorf("read tar entry %d: %w", n+1, err)}
		}
		if err := w.add(hdr, tr); err != nil {
			return err
		}
	}
}

// cleanEntryName returns the entry's name relative to the tree top, or an
// error for names that leave it. "" means the top itself.
func cleanEntryName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", unsafeEntry(name, "has an absolute name")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", unsafeEntry(name, "has a \"..\" component")
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", nil
	}
	return clean, nil
}

// corruptError marks a failure to read the tarball's data: a decoder error,
// a malformed tar header or a stream that ends early.
type corruptError struct{ err error }

func (e corruptError) Error() string {
	return e.err.Error() + " — the tarball is truncated or corrupt; download or copy it again"
}

func (e corruptError) Unwrap() error { return e.err }

// errUnsafeEntry marks entries rejected because they would escape the tree.
var errUnsafeEntry = errors.New("unsafe tar entry")

func unsafeEntry(name, why string) error {
	return fmt.Errorf("%w %q: %s — the tarball is hostile or broken; do not use it", errUnsafeEntry, name, why)
}

// topLevelNames lists the first entries of dir for an error message, with a
// slash after each directory.
func topLevelNames(dir string) string {
	const maxShown = 5
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	var names []string
	for i, e := range entries {
		if i == maxShown {
			names = append(names, fmt.Sprintf("and %d more", len(entries)-maxShown))
			break
		}
		name := e.Name()
		if e.IsDir() {
			name += "/"
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return "empty"
	}
	return strings.Join(names, ", ")
}

// gatheredPrefix starts the name of the directory into which topDirectory
// moves a tarball's several top-level entries.
const gatheredPrefix = "tree-"

// topDirectory returns the tree top inside tmp: its only entry when that is
// a directory, else a new directory into which every top-level entry moves.
func topDirectory(tmp string) (string, error) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return "", err
	}
	if len(entries) == 0 {
		return "", errors.New("the tarball contains no files — pass a kernel source tarball")
	}
	if len(entries) == 1 && entries[0].IsDir() {
		return filepath.Join(tmp, entries[0].Name()), nil
	}
	top, err := os.MkdirTemp(tmp, gatheredPrefix)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(tmp, e.Name()), filepath.Join(top, e.Name())); err != nil {
			return "", fmt.Errorf("gather top-level entries: %w", err)
		}
	}
	return top, nil
}
