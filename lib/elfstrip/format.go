package elfstrip

import (
	"debug/elf"
	"encoding/binary"
)

// Section types that debug/elf does not name but that hold relocations.
const (
	shtRELR = elf.SectionType(19)         // SHT_RELR, relative relocations
	shtCREL = elf.SectionType(0x40000014) // SHT_CREL, compact relocations; LLVM calls this value provisional
)

// codec encodes and decodes the raw ELF structures of one class and byte
// order. Strip re-emits headers from their raw fields rather than from
// debug/elf's view, because debug/elf replaces sh_size and sh_addralign of
// compressed sections with the uncompressed values.
type codec struct {
	class elf.Class
	order binary.ByteOrder
}

func (c codec) is64() bool { return c.class == elf.ELFCLASS64 }

func (c codec) ehdrSize() int {
	if c.is64() {
		return 64
	}
	return 52
}

func (c codec) shdrSize() int {
	if c.is64() {
		return 64
	}
	return 40
}

func (c codec) symSize() int {
	if c.is64() {
		return 24
	}
	return 16
}

// symShndxOffset is the offset of st_shndx inside one symbol table entry.
func (c codec) symShndxOffset() int {
	if c.is64() {
		return 6
	}
	return 14
}

// symInfoOffset is the offset of st_info inside one symbol table entry.
func (c codec) symInfoOffset() int {
	if c.is64() {
		return 4
	}
	return 12
}

// wordAlign is the alignment of the section header table in the output.
func (c codec) wordAlign() int64 {
	if c.is64() {
		return 8
	}
	return 4
}

// ehdrFields are the ELF header fields Strip reads or rewrites; the rest of
// the header is copied byte for byte.
type ehdrFields struct {
	phoff     uint64
	shoff     uint64
	ehsize    uint16
	phentsize uint16
	phnum     uint16
	shentsize uint16
	shnum     uint16
	shstrndx  uint16
}

func (c codec) decodeEhdr(b []byte) ehdrFields {
	o := c.order
	if c.is64() {
		return ehdrFields{
			phoff: o.Uint64(b[32:]), shoff: o.Uint64(b[40:]),
			ehsize: o.Uint16(b[52:]), phentsize: o.Uint16(b[54:]), phnum: o.Uint16(b[56:]),
			shentsize: o.Uint16(b[58:]), shnum: o.Uint16(b[60:]), shstrndx: o.Uint16(b[62:]),
		}
	}
	return ehdrFields{
		phoff: uint64(o.Uint32(b[28:])), shoff: uint64(o.Uint32(b[32:])),
		ehsize: o.Uint16(b[40:]), phentsize: o.Uint16(b[42:]), phnum: o.Uint16(b[44:]),
		shentsize: o.Uint16(b[46:]), shnum: o.Uint16(b[48:]), shstrndx: o.Uint16(b[50:]),
	}
}

func (c codec) encodeEhdr(b []byte, h ehdrFields) {
	o := c.order
	if c.is64() {
		o.PutUint64(b[32:], h.phoff)
		o.PutUint64(b[40:], h.shoff)
		o.PutUint16(b[52:], h.ehsize)
		o.PutUint16(b[54:], h.phentsize)
		o.PutUint16(b[56:], h.phnum)
		o.PutUint16(b[58:], h.shentsize)
		o.PutUint16(b[60:], h.shnum)
		o.PutUint16(b[62:], h.shstrndx)
		return
	}
	o.PutUint32(b[28:], uint32(h.phoff))
	o.PutUint32(b[32:], uint32(h.shoff))
	o.PutUint16(b[40:], h.ehsize)
	o.PutUint16(b[42:], h.phentsize)
	o.PutUint16(b[44:], h.phnum)
	o.PutUint16(b[46:], h.shentsize)
	o.PutUint16(b[48:], h.shnum)
	o.PutUint16(b[50:], h.shstrndx)
}

// shdr is one raw section header with every field widened to 64 bits.
type shdr struct {
	name      uint32
	typ       elf.SectionType
	flags     elf.SectionFlag
	addr      uint64
	offset    uint64
	size      uint64
	link      uint32
	info      uint32
	addralign uint64
	entsize   uint64
}

func (c codec) decodeShdr(b []byte) shdr {
	o := c.order
	if c.is64() {
		return shdr{
			name: o.Uint32(b[0:]), typ: elf.SectionType(o.Uint32(b[4:])),
			flags: elf.SectionFlag(o.Uint64(b[8:])), addr: o.Uint64(b[16:]),
			offset: o.Uint64(b[24:]), size: o.Uint64(b[32:]),
			link: o.Uint32(b[40:]), info: o.Uint32(b[44:]),
			addralign: o.Uint64(b[48:]), entsize: o.Uint64(b[56:]),
		}
	}
	return shdr{
		name: o.Uint32(b[0:]), typ: elf.SectionType(o.Uint32(b[4:])),
		flags: elf.SectionFlag(o.Uint32(b[8:])), addr: uint64(o.Uint32(b[12:])),
		offset: uint64(o.Uint32(b[16:])), size: uint64(o.Uint32(b[20:])),
		link: o.Uint32(b[24:]), info: o.Uint32(b[28:]),
		addralign: uint64(o.Uint32(b[32:])), entsize: uint64(o.Uint32(b[36:])),
	}
}

func (c codec) encodeShdr(b []byte, h shdr) {
	o := c.order
	if c.is64() {
		o.PutUint32(b[0:], h.name)
		o.PutUint32(b[4:], uint32(h.typ))
		o.PutUint64(b[8:], uint64(h.flags))
		o.PutUint64(b[16:], h.addr)
		o.PutUint64(b[24:], h.offset)
		o.PutUint64(b[32:], h.size)
		o.PutUint32(b[40:], h.link)
		o.PutUint32(b[44:], h.info)
		o.PutUint64(b[48:], h.addralign)
		o.PutUint64(b[56:], h.entsize)
		return
	}
	o.PutUint32(b[0:], h.name)
	o.PutUint32(b[4:], uint32(h.typ))
	o.PutUint32(b[8:], uint32(h.flags))
	o.PutUint32(b[12:], uint32(h.addr))
	o.PutUint32(b[16:], uint32(h.offset))
	o.PutUint32(b[20:], uint32(h.size))
	o.PutUint32(b[24:], h.link)
	o.PutUint32(b[28:], h.info)
	o.PutUint32(b[32:], uint32(h.addralign))
	o.PutUint32(b[36:], uint32(h.entsize))
}
