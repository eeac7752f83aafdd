package source

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// peekLimit bounds how much of the tar stream PeekTarballVersion decodes
// while looking for the top-level Makefile. Debian's linux-source-6.12
// tarball has it 10,866 entries in, well under 512 MiB of its 1.5 GB.
var peekLimit int64 = 512 << 20

// ErrVersionNotSeen reports that PeekTarballVersion found no top-level
// Makefile within its limit, so only extraction can tell the version.
var ErrVersionNotSeen = errors.New("no top-level Makefile near the start of the tarball")

// PeekTarballVersion returns the kernel version that a tarball's top-level
// Makefile declares, reading only as far into the archive as that Makefile.
// It writes nothing. The version is the one ExtractFile would report,
// unless entries after the Makefile add a second top-level directory. Any
// error, ErrVersionNotSeen included, means only extraction can tell.
func PeekTarballVersion(ctx context.Context, tarball string) (string, error) {
	compression := TarballCompression(tarball)
	if compression == "" {
		return "", fmt.Errorf("peek: %s is not a kernel tarball — pass a .tar.xz, .tar.gz, .tar.bz2 or .tar.zst file", tarball)
	}
	f, err := os.Open(tarball)
	if err != nil {
		return "", fmt.Errorf("peek: cannot open tarball: %w — check the path and its permissions", err)
	}
	defer f.Close()

	// Canceling ctx stops an external decoder that has more to write.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dec, err := openDecoder(ctx, f, compression)
	if err != nil {
		return "", fmt.Errorf("peek %s: %w", tarball, err)
	}
	version, err := findMakefileVersion(tar.NewReader(bufio.NewReaderSize(io.LimitReader(dec, peekLimit), 64<<10)), tarball)
	// The decoder is cut off on purpose, so its exit status is meaningless,
	// and the extraction that follows reports a corrupt archive.
	cancel()
	dec.finish(errPeekDone)
	return version, err
}

// errPeekDone marks a read that stopped on purpose.
var errPeekDone = errors.New("peek finished")

// findMakefileVersion reads tar entries until the Makefile at the top of
// the tree that Extract would return. That is "DIR/Makefile" while every
// entry so far sits under one directory DIR, and "Makefile" itself in an
// archive without a single top directory.
func findMakefileVersion(tr *tar.Reader, tarball string) (string, error) {
	top := ""
	singleTop := true
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return "", ErrVersionNotSeen
		}
		if err != nil {
			return "", fmt.Errorf("peek %s: read tar entry %d: %w", tarball, n+1, err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader || hdr.Typeflag == tar.TypeXHeader {
			continue
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return "", err
		}
		if name == "" {
			continue
		}
		first, rest, nested := strings.Cut(name, "/")
		if top == "" {
			top = first
		}
		if first != top || !nested && hdr.Typeflag != tar.TypeDir {
			singleTop = false
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if name == "Makefile" || singleTop && rest == "Makefile" {
			return parseMakefileVersion(tr, tarball+":"+hdr.Name)
		}
	}
}
