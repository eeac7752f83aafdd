package elfstrip

import (
	"debug/elf"
	"fmt"
	"io"
	"os"
)

// maxFileAlign caps the file-offset alignment of appended sections. Their
// bytes are not mapped by any segment, so page alignment is plenty for
// readers that mmap the file, and a larger sh_addralign would only pad it.
const maxFileAlign = 4096

// symbolChunk is how many symbol table entries are patched per read.
const symbolChunk = 8192

// output writes the stripped file sequentially and tracks the offset.
type output struct {
	f   *os.File
	dst string // the final path, for messages
	off int64
}

// writeFailed labels an error of the output file.
func (w *output) writeFailed(err error) error {
	return fmt.Errorf("elfstrip: writing %s failed — check free space and permissions in its directory: %w", w.dst, err)
}

// Write appends b at the current offset.
func (w *output) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	w.off += int64(n)
	return n, err
}

var zeros [maxFileAlign]byte

func (w *output) pad(align uint64) error {
	if align <= 1 {
		return nil
	}
	if align > maxFileAlign {
		align = maxFileAlign
	}
	rem := uint64(w.off) % align
	if rem == 0 {
		return nil
	}
	_, err := w.Write(zeros[:align-rem])
	return err
}

// copyRange appends n bytes at offset off of src. Seeking src and handing
// os.File.ReadFrom a LimitedReader lets the kernel copy the bytes with
// copy_file_range, so they never pass through this process.
func (w *output) copyRange(src *os.File, off, n int64) error {
	if _, err := src.Seek(off, io.SeekStart); err != nil {
		return err
	}
	copied, err := io.Copy(w.f, io.LimitReader(src, n))
	w.off += copied
	if err != nil {
		return err
	}
	if copied != n {
		return fmt.Errorf("copied %d of %d bytes: %w", copied, n, io.ErrUnexpectedEOF)
	}
	return nil
}

// writeOutput writes the stripped ELF to f, which becomes dst, and returns
// its size.
func writeOutput(in *input, p *plan, f *os.File, dst string) (int64, error) {
	c := in.codec
	w := &output{f: f, dst: dst}

	// The prefix brings the original ELF header along. Without one, a
	// placeholder is written, and the header is patched last either way,
	// once e_shoff is known.
	if p.prefixEnd > 0 {
		if err := w.copyRange(in.file, 0, int64(p.prefixEnd)); err != nil {
			return 0, fmt.Errorf("elfstrip: copying the program image of %s to %s failed — check free space in its directory: %w", in.path, dst, err)
		}
	} else if _, err := w.Write(make([]byte, c.ehdrSize())); err != nil {
		return 0, w.writeFailed(err)
	}

	headers := make([]shdr, 0, p.outCount)
	for i, a := range p.actions {
		if a == dropSection {
			continue
		}
		h := p.outputHeader(in, i)
		if i != 0 {
			if err := writeSection(w, in, p, i, &h); err != nil {
				return 0, err
			}
		}
		headers = append(headers, h)
	}

	if err := w.pad(uint64(c.wordAlign())); err != nil {
		return 0, w.writeFailed(err)
	}
	shoff := w.off
	table := make([]byte, len(headers)*c.shdrSize())
	for k, h := range headers {
		c.encodeShdr(table[k*c.shdrSize():], h)
	}
	if _, err := w.Write(table); err != nil {
		return 0, w.writeFailed(err)
	}

	fields := ehdrFields{
		shoff:     uint64(shoff),
		ehsize:    uint16(c.ehdrSize()),
		shentsize: uint16(c.shdrSize()),
		shnum:     uint16(len(headers)),
		shstrndx:  uint16(p.remapIndex(uint32(in.hdr.shstrndx))),
	}
	// Without the prefix the program headers are dropped, because their
	// file ranges would point at bytes this file no longer has.
	if p.prefixEnd > 0 {
		fields.phoff, fields.phentsize, fields.phnum = in.hdr.phoff, in.hdr.phentsize, in.hdr.phnum
	}
	ehdr := append([]byte(nil), in.ehdr...)
	c.encodeEhdr(ehdr, fields)
	if _, err := f.WriteAt(ehdr, 0); err != nil {
		return 0, w.writeFailed(err)
	}
	return w.off, nil
}

// writeSection writes the bytes of kept section i, if it has any, and sets
// h's offset and size to where they landed. A section inside the copied
// prefix keeps its offset and is rewritten there if its contents change.
func writeSection(w *output, in *input, p *plan, i int, h *shdr) error {
	src := in.shdrs[i]
	inPrefix := p.prefixEnd > 0 && src.offset+src.size <= p.prefixEnd
	if h.typ == elf.SHT_NOBITS {
		h.offset = uint64(w.off)
		if p.prefixEnd > 0 && src.offset <= p.prefixEnd {
			h.offset = src.offset
		}
		return nil
	}

	var dst io.Writer = w
	if inPrefix {
		h.offset = src.offset
		dst = io.NewOffsetWriter(w.f, int64(src.offset))
	} else {
		if err := w.pad(h.addralign); err != nil {
			return w.writeFailed(err)
		}
		h.offset = uint64(w.off)
	}

	switch {
	case p.groupWords[i] != nil:
		words := p.groupWords[i]
		raw := make([]byte, 4*len(words))
		for k, word := range words {
			in.codec.order.PutUint32(raw[4*k:], word)
		}
		h.size = uint64(len(raw))
		if _, err := dst.Write(raw); err != nil {
			return w.writeFailed(err)
		}
		return nil
	case src.typ == elf.SHT_SYMTAB || src.typ == elf.SHT_DYNSYM:
		return copySymbols(dst, w, in, p, i, h)
	case inPrefix:
		return nil
	default:
		if err := w.copyRange(in.file, int64(src.offset), int64(src.size)); err != nil {
			return fmt.Errorf("elfstrip: copying section %q of %s to %s failed — check that the input is unchanged and the output directory has free space: %w", in.names[i], in.path, w.dst, err)
		}
		return nil
	}
}

// copySymbols streams symbol table i to dst in chunks, rewriting each
// st_shndx to the output section index, and sets h's size and sh_info.
//
// In the main mode, .symtab loses the section symbols of dropped sections,
// as with objcopy --strip-debug (binutils 2.40), because llvm-readelf warns
// about a section symbol outside any section. That is safe because no kept
// section refers to symbols by index. The fallback mode keeps every entry,
// because a kept group may name its signature symbol by index, and such a
// section symbol becomes SHN_ABS like any other symbol of a dropped section.
func copySymbols(dst io.Writer, w *output, in *input, p *plan, i int, h *shdr) error {
	s := in.shdrs[i]
	entry := in.codec.symSize()
	shndxAt, infoAt := in.codec.symShndxOffset(), in.codec.symInfoOffset()
	order := in.codec.order
	removeSectionSymbols := !p.fallback && s.typ == elf.SHT_SYMTAB
	buf := make([]byte, symbolChunk*entry)

	var written, removedLocals uint64
	r := io.NewSectionReader(in.file, int64(s.offset), int64(s.size))
	for first := 0; ; first += symbolChunk {
		n, err := io.ReadFull(r, buf)
		if err == io.EOF {
			break
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			return fmt.Errorf("elfstrip: reading symbol table %q of %s failed: %w", in.names[i], in.path, err)
		}

		// keptBytes compacts the chunk in place: buf[:keptBytes] is written.
		keptBytes := 0
		for k := 0; k < n; k += entry {
			sym := buf[k : k+entry]
			old := order.Uint16(sym[shndxAt:])
			idx, ok := p.symbolIndex(old)
			if !ok {
				return fmt.Errorf("elfstrip: %s: symbol %d of %q refers to section %d, but the file has %d sections — the file is corrupt, rebuild the kernel",
					in.path, first+k/entry, in.names[i], old, len(in.shdrs))
			}

			sectionGone := idx != old && idx == uint16(elf.SHN_ABS)
			if removeSectionSymbols && sectionGone && elf.ST_TYPE(sym[infoAt]) == elf.STT_SECTION {
				if uint64(first+k/entry) < uint64(s.info) {
					removedLocals++
				}
				continue
			}
			order.PutUint16(sym[shndxAt:], idx)
			copy(buf[keptBytes:], sym)
			keptBytes += entry
		}

		if _, err := dst.Write(buf[:keptBytes]); err != nil {
			return w.writeFailed(err)
		}
		written += uint64(keptBytes)
		if n < len(buf) {
			break
		}
	}

	h.size = written
	if s.typ == elf.SHT_SYMTAB {
		// sh_info of a symbol table is one past the last local symbol.
		h.info = s.info - uint32(removedLocals)
	}
	return nil
}
