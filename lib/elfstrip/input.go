package elfstrip

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
)

// input is an opened source ELF file: debug/elf's view for names and
// validation, plus the raw headers Strip re-emits.
type input struct {
	path  string
	file  *os.File
	size  int64
	mode  os.FileMode
	elf   *elf.File
	codec codec
	ehdr  []byte // the raw ELF header, ehdrSize bytes
	hdr   ehdrFields
	shdrs []shdr
	names []string
}

// openInput opens and validates path. The caller closes in.file.
func openInput(path string) (*input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("elfstrip: cannot open %s — check that the kernel build produced it: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("elfstrip: cannot stat %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("elfstrip: %s is not a regular file — pass the vmlinux file itself", path)
	}

	in := &input{path: path, file: f, size: st.Size(), mode: st.Mode().Perm()}
	if err := in.parse(); err != nil {
		f.Close()
		return nil, err
	}
	return in, nil
}

func (in *input) parse() error {
	var magic [4]byte
	if n, _ := in.file.ReadAt(magic[:], 0); n < len(magic) || string(magic[:]) != elf.ELFMAG {
		return fmt.Errorf("elfstrip: %s: %w — pass the vmlinux from the kernel build", in.path, ErrNotELF)
	}

	ef, err := elf.NewFile(in.file)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return in.truncated(err)
		}
		return fmt.Errorf("elfstrip: %s has an invalid ELF header or section table — rebuild the kernel: %w", in.path, err)
	}
	in.elf = ef
	in.codec = codec{class: ef.Class, order: ef.ByteOrder}

	in.ehdr = make([]byte, in.codec.ehdrSize())
	if _, err := in.file.ReadAt(in.ehdr, 0); err != nil {
		return in.truncated(err)
	}
	in.hdr = in.codec.decodeEhdr(in.ehdr)

	if err := in.readSectionHeaders(); err != nil {
		return err
	}
	return in.validateSections()
}

func (in *input) readSectionHeaders() error {
	h := in.hdr
	if (h.shnum == 0 && h.shoff != 0) || h.shstrndx == uint16(elf.SHN_XINDEX) {
		return fmt.Errorf("elfstrip: %s uses extended section numbering (65280 sections or more), which is not supported — strip it with objcopy --strip-debug instead", in.path)
	}
	if h.shnum == 0 {
		return fmt.Errorf("elfstrip: %s has no section headers, so there is nothing to strip — pass an unstripped vmlinux", in.path)
	}
	if len(in.elf.Sections) != int(h.shnum) || int(h.shentsize) < in.codec.shdrSize() {
		return fmt.Errorf("elfstrip: %s has an inconsistent section header table (e_shnum %d, e_shentsize %d) — rebuild the kernel", in.path, h.shnum, h.shentsize)
	}

	table := make([]byte, int(h.shnum)*int(h.shentsize))
	if _, err := in.file.ReadAt(table, int64(h.shoff)); err != nil {
		return in.truncated(err)
	}

	in.shdrs = make([]shdr, h.shnum)
	in.names = make([]string, h.shnum)
	for i := range in.shdrs {
		in.shdrs[i] = in.codec.decodeShdr(table[i*int(h.shentsize):])
		in.names[i] = in.elf.Sections[i].Name
	}
	return nil
}

// validateSections rejects what Strip cannot copy faithfully: segments and
// sections whose bytes lie past the end of the file, extended symbol indexes
// and malformed symbol tables.
func (in *input) validateSections() error {
	for k, prog := range in.elf.Progs {
		end := prog.Off + prog.Filesz
		if end < prog.Off || end > uint64(in.size) {
			return fmt.Errorf("elfstrip: %s: program header %d (file bytes %d to %d) ends past the end of the file (%d bytes): %w — rebuild the kernel or copy the file again",
				in.path, k, prog.Off, end, in.size, ErrTruncated)
		}
	}

	for i, s := range in.shdrs {
		name := in.names[i]
		if s.typ == elf.SHT_SYMTAB_SHNDX {
			return fmt.Errorf("elfstrip: %s has an extended symbol index section %q, which is not supported — strip it with objcopy --strip-debug instead", in.path, name)
		}

		if s.typ != elf.SHT_NOBITS && s.typ != elf.SHT_NULL {
			end := s.offset + s.size
			if end < s.offset || end > uint64(in.size) {
				return fmt.Errorf("elfstrip: %s: section %q (file bytes %d to %d) ends past the end of the file (%d bytes): %w — rebuild the kernel or copy the file again",
					in.path, name, s.offset, end, in.size, ErrTruncated)
			}
		}

		if s.typ == elf.SHT_SYMTAB || s.typ == elf.SHT_DYNSYM {
			entry := uint64(in.codec.symSize())
			if s.entsize != entry || s.size%entry != 0 {
				return fmt.Errorf("elfstrip: %s: symbol table %q has entries of %d bytes and a size of %d bytes, expected a multiple of %d — the file is corrupt",
					in.path, name, s.entsize, s.size, entry)
			}
		}
	}
	return nil
}

// readGroup returns the 32-bit words of SHT_GROUP section i: the group flags,
// then the member section indexes.
func (in *input) readGroup(i int) ([]uint32, error) {
	s := in.shdrs[i]
	if s.size < 4 || s.size%4 != 0 || s.size > 4*uint64(len(in.shdrs)+1) {
		return nil, fmt.Errorf("elfstrip: %s: group section %q has an invalid size of %d bytes — the file is corrupt", in.path, in.names[i], s.size)
	}

	raw := make([]byte, s.size)
	if _, err := in.file.ReadAt(raw, int64(s.offset)); err != nil {
		return nil, in.truncated(err)
	}
	words := make([]uint32, len(raw)/4)
	for k := range words {
		words[k] = in.codec.order.Uint32(raw[4*k:])
	}
	return words, nil
}

func (in *input) truncated(cause error) error {
	return fmt.Errorf("elfstrip: %s (%d bytes): %w — rebuild the kernel or copy the file again: %w", in.path, in.size, ErrTruncated, cause)
}
