// Package elfstrip shrinks a kernel vmlinux to what BPF tooling and a
// guest-memory monitor read, in pure Go.
//
// The main mode keeps .symtab, its string table, .shstrtab, .BTF, .BTF.ext,
// .rodata and .bss with their bytes. It keeps .data, .data..percpu,
// .init.data and every executable section as SHT_NOBITS headers, which
// carry their address and size but no file bytes. It drops every other
// section (.debug_*, relocations, notes and the rest) and the program
// headers. Symbols whose section was dropped become SHN_ABS with their
// address unchanged, except section symbols, which are removed.
//
// When the main mode cannot apply, for example because the file has no
// .symtab, the fallback mode drops only .debug_*, .comment and relocation
// sections. It keeps the program headers and the file range they cover
// byte for byte, so an executable still runs.
//
// Both modes renumber the remaining sections and rewrite every section link,
// group member list and symbol section index to match. Section bytes are
// streamed from the input, so memory use does not grow with the size of
// the vmlinux.
package elfstrip

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNotELF is wrapped by Strip's error when the input does not start with
// the ELF magic number.
var ErrNotELF = errors.New("not an ELF file")

// ErrTruncated is wrapped by Strip's error when the input ends before a
// header or section that its headers describe.
var ErrTruncated = errors.New("ELF file is truncated")

// Result describes one Strip run.
type Result struct {
	// Fallback is true when the main keep list could not apply and only
	// debug, comment and relocation sections were dropped.
	Fallback bool
	// FallbackReason is the cause of the fallback mode, such as a missing
	// .symtab; it is empty in the main mode.
	FallbackReason string
	// InSize and OutSize are the input and output file sizes in bytes.
	InSize, OutSize int64
}

// Strip writes a stripped copy of the ELF file src to dst, as the package
// documentation describes.
//
// Strip writes to a temporary file in dst's directory, syncs it and renames
// it over dst, so on error dst is left as it was and no partial file
// remains. It does not sync dst's directory, so a caller that needs the
// rename to survive a crash syncs it. dst may equal src. ELF32 and ELF64 files of either byte order
// are supported; files with 65280 sections or more are rejected.
func Strip(src, dst string) (Result, error) {
	in, err := openInput(src)
	if err != nil {
		return Result{}, err
	}
	defer in.file.Close()

	p, err := makePlan(in)
	if err != nil {
		return Result{}, err
	}

	size, err := writeAtomically(dst, in.mode, func(f *os.File) (int64, error) {
		return writeOutput(in, p, f, dst)
	})
	if err != nil {
		return Result{}, err
	}
	return Result{Fallback: p.fallback, FallbackReason: p.reason, InSize: in.size, OutSize: size}, nil
}

// writeAtomically runs write on a temporary file next to dst and renames
// the file to dst once write succeeded and the bytes are on disk. Errors
// from write are returned unchanged.
func writeAtomically(dst string, mode os.FileMode, write func(*os.File) (int64, error)) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("elfstrip: cannot create a temporary file next to %s — check that its directory exists and is writable: %w", dst, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	size, err := write(tmp)
	if err != nil {
		return 0, err
	}
	err = tmp.Chmod(mode)
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err != nil {
		return 0, fmt.Errorf("elfstrip: writing %s failed — check free space and permissions in its directory: %w", dst, err)
	}

	if err := os.Rename(tmp.Name(), dst); err != nil {
		return 0, fmt.Errorf("elfstrip: cannot rename %s to %s — check that %s is not a directory: %w", tmp.Name(), dst, dst, err)
	}
	renamed = true
	return size, nil
}
