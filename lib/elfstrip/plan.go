package elfstrip

import (
	"debug/elf"
	"fmt"
	"strings"
)

// action is the fate of one input section in a Strip run.
type action uint8

const (
	dropSection   action = iota // no header, no bytes
	copySection                 // header and file bytes kept
	nobitsSection               // header kept as SHT_NOBITS, file bytes dropped
)

// Sections the main mode keeps with their bytes: what BPF tooling (.BTF,
// .BTF.ext) and a guest-memory monitor (.rodata holds IKCONFIG) read.
// The symbol table, its string table and the section name table are kept
// by role, whatever their names.
var keptSections = map[string]bool{
	".BTF": true, ".BTF.ext": true, ".rodata": true, ".bss": true,
}

// Sections the main mode keeps as SHT_NOBITS, besides every executable one,
// so that symbols pointing into them still name a section of the right
// address and size.
var nobitsSections = map[string]bool{
	".data": true, ".data..percpu": true, ".init.data": true,
}

// plan is the per-section outcome of one Strip run, indexed by input section.
type plan struct {
	fallback bool
	reason   string // cause of the fallback mode; empty in the main mode
	actions  []action
	newIndex []uint32 // output index of each kept section
	outCount int      // number of output sections, the null section included

	// prefixEnd is the end of the file range copied verbatim, with the
	// program headers, in the fallback mode; 0 when nothing is.
	prefixEnd uint64

	// groupWords holds the rewritten contents of each kept SHT_GROUP
	// section, because its member list names sections by index.
	groupWords map[int][]uint32
	// groupOf maps a section to the SHT_GROUP section that lists it.
	groupOf map[int]int
}

// makePlan picks the mode and decides every section's fate.
func makePlan(in *input) (*plan, error) {
	p := &plan{actions: make([]action, len(in.shdrs))}

	if reason := mainModeBlocker(in); reason != "" {
		p.fallback, p.reason = true, reason
		p.prefixEnd = programImageEnd(in)
		fallbackActions(in, p.actions)
	} else {
		mainActions(in, p.actions)
	}

	if err := p.resolveGroups(in); err != nil {
		return nil, err
	}

	p.newIndex = make([]uint32, len(in.shdrs))
	for i, a := range p.actions {
		if a != dropSection {
			p.newIndex[i] = uint32(p.outCount)
			p.outCount++
		}
	}

	for i, words := range p.groupWords {
		p.groupWords[i] = p.remapGroup(words)
	}
	return p, nil
}

// mainModeBlocker returns why the main keep list cannot apply to in, or ""
// when it can.
func mainModeBlocker(in *input) string {
	if in.hdr.shstrndx == 0 {
		return "the file has no section name table"
	}

	symtab := -1
	for i, s := range in.shdrs {
		if s.typ != elf.SHT_SYMTAB {
			continue
		}
		if symtab >= 0 {
			return "the file has more than one symbol table"
		}
		symtab = i
	}
	if symtab < 0 {
		return "the file has no .symtab section"
	}

	link := in.shdrs[symtab].link
	if int(link) >= len(in.shdrs) || in.shdrs[link].typ != elf.SHT_STRTAB {
		return fmt.Sprintf("the symbol table links to section %d, which is not a string table", link)
	}
	return ""
}

func mainActions(in *input, actions []action) {
	var symtab, strtab int
	for i, s := range in.shdrs {
		if s.typ == elf.SHT_SYMTAB {
			symtab, strtab = i, int(s.link)
		}
	}

	for i, s := range in.shdrs {
		name := in.names[i]
		switch {
		case i == 0, i == symtab, i == strtab, i == int(in.hdr.shstrndx), keptSections[name]:
			actions[i] = copySection
		case nobitsSections[name], s.flags&elf.SHF_EXECINSTR != 0:
			if s.typ == elf.SHT_NOBITS {
				actions[i] = copySection
			} else {
				actions[i] = nobitsSection
			}
		default:
			actions[i] = dropSection
		}
	}
}

func fallbackActions(in *input, actions []action) {
	for i, s := range in.shdrs {
		name := in.names[i]
		drop := strings.HasPrefix(name, ".debug_") || strings.HasPrefix(name, ".zdebug_") ||
			name == ".comment" || isRelocation(s.typ)
		if drop && i != 0 && i != int(in.hdr.shstrndx) {
			actions[i] = dropSection
		} else {
			actions[i] = copySection
		}
	}
}

// programImageEnd returns the end of the file range that the ELF header,
// the program headers and every segment cover, or 0 for a file without
// program headers. The fallback mode copies that range unchanged, so the
// program headers stay valid and a loader still finds every byte it maps,
// dropped relocation sections included.
func programImageEnd(in *input) uint64 {
	if len(in.elf.Progs) == 0 {
		return 0
	}
	end := max(uint64(in.codec.ehdrSize()), in.hdr.phoff+uint64(in.hdr.phnum)*uint64(in.hdr.phentsize))
	for _, prog := range in.elf.Progs {
		end = max(end, prog.Off+prog.Filesz)
	}
	return end
}

func isRelocation(t elf.SectionType) bool {
	switch t {
	case elf.SHT_REL, elf.SHT_RELA, shtRELR, shtCREL:
		return true
	}
	return false
}

// resolveGroups loads the member lists of kept SHT_GROUP sections and drops
// a group once none of its members is kept, since an empty group is
// meaningless to a linker. Members of dropped groups lose SHF_GROUP later,
// in outputHeader.
func (p *plan) resolveGroups(in *input) error {
	p.groupWords = make(map[int][]uint32)
	p.groupOf = make(map[int]int)

	for i, s := range in.shdrs {
		if s.typ != elf.SHT_GROUP || p.actions[i] == dropSection {
			continue
		}
		words, err := in.readGroup(i)
		if err != nil {
			return err
		}

		kept := 0
		for _, member := range words[1:] {
			if int(member) >= len(in.shdrs) || member == 0 {
				return fmt.Errorf("elfstrip: group section %q of %s lists section %d, which does not exist — the file is corrupt", in.names[i], in.path, member)
			}
			p.groupOf[int(member)] = i
			if p.actions[member] != dropSection {
				kept++
			}
		}

		if kept == 0 {
			p.actions[i] = dropSection
			continue
		}
		p.groupWords[i] = words
	}
	return nil
}

// remapGroup rewrites a group's member list to output indexes, leaving out
// members that were dropped. Word 0 holds the group flags.
func (p *plan) remapGroup(words []uint32) []uint32 {
	out := []uint32{words[0]}
	for _, member := range words[1:] {
		if p.actions[member] != dropSection {
			out = append(out, p.newIndex[member])
		}
	}
	return out
}

// outputHeader returns the output header of kept input section i, with
// links remapped and the file offset and size still to be filled in.
func (p *plan) outputHeader(in *input, i int) shdr {
	h := in.shdrs[i]

	if p.actions[i] == nobitsSection {
		h.typ = elf.SHT_NOBITS
		if h.flags&elf.SHF_COMPRESSED != 0 {
			// sh_size of a compressed section counts compressed bytes, but a
			// NOBITS header must give the size the section has in memory.
			sec := in.elf.Sections[i]
			h.flags &^= elf.SHF_COMPRESSED
			h.size, h.addralign = sec.Size, sec.Addralign
		}
	}

	// sh_link is always a section index. sh_info is one only in relocation
	// sections and under SHF_INFO_LINK, and is otherwise a count or a symbol.
	h.link = p.remapIndex(h.link)
	if h.link == 0 {
		h.flags &^= elf.SHF_LINK_ORDER
	}
	if h.flags&elf.SHF_INFO_LINK != 0 || isRelocation(h.typ) {
		h.info = p.remapIndex(h.info)
		if h.info == 0 {
			h.flags &^= elf.SHF_INFO_LINK
		}
	}

	if h.flags&elf.SHF_GROUP != 0 {
		group, ok := p.groupOf[i]
		if !ok || p.actions[group] == dropSection {
			h.flags &^= elf.SHF_GROUP
		}
	}
	return h
}

// remapIndex maps an input section index to its output index, or to 0 when
// the section was dropped or the index is out of range.
func (p *plan) remapIndex(old uint32) uint32 {
	if int(old) >= len(p.actions) || p.actions[old] == dropSection {
		return 0
	}
	return p.newIndex[old]
}

// symbolIndex maps a symbol's st_shndx. Reserved indexes (SHN_ABS,
// SHN_COMMON and the like) pass through unchanged.
//
// A symbol whose section was dropped becomes SHN_ABS rather than SHN_UNDEF:
// in a vmlinux st_value is a virtual address, so an absolute symbol keeps
// the address nm prints, where an undefined one would lose it.
func (p *plan) symbolIndex(old uint16) (uint16, bool) {
	if old == uint16(elf.SHN_UNDEF) || old >= uint16(elf.SHN_LORESERVE) {
		return old, true
	}
	if int(old) >= len(p.actions) {
		return 0, false
	}
	if p.actions[old] == dropSection {
		return uint16(elf.SHN_ABS), true
	}
	return uint16(p.newIndex[old]), true
}
