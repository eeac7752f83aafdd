package source

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
)

// The index is read here rather than with go-git's index decoder for two
// reasons: go-git v5.19.3 drops invalidated cache-tree entries, which loses
// the shape of the TREE extension, and its reflection-based entry decoding
// is several times slower on a 90k-entry index.

// Mode bits of index entries (the object type lives in the top 4 bits).
const (
	modeTypeMask = 0o170000
	modeRegular  = 0o100000
	modeSymlink  = 0o120000
	modeGitlink  = 0o160000
)

// indexEntry is one stage entry of the git index with the stat data git
// recorded when it last saw the file. Times and sizes are the truncated
// 32-bit values of the on-disk format.
type indexEntry struct {
	name         string
	ctimeSec     uint32
	ctimeNsec    uint32
	mtimeSec     uint32
	mtimeNsec    uint32
	ino          uint32
	mode         uint32
	uid          uint32
	gid          uint32
	size         uint32
	hash         [sha1.Size]byte
	stage        uint8
	assumeValid  bool // `git update-index --assume-unchanged`
	skipWorktree bool
	intentToAdd  bool
}

// cacheTree is a node of the index's TREE extension: the tree id git last
// computed for a directory, or entries < 0 when a change since then has
// invalidated it.
type cacheTree struct {
	name     string
	entries  int
	hash     [sha1.Size]byte
	children []*cacheTree
}

// child returns the subtree called name, or nil.
func (t *cacheTree) child(name string) *cacheTree {
	if t == nil {
		return nil
	}
	for _, c := range t.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

// gitIndex is a parsed index file.
type gitIndex struct {
	entries   []indexEntry
	tree      *cacheTree // nil when the index has no TREE extension
	mtimeSec  int64      // mtime of the index file, for the racy-clean check
	mtimeNsec int64
}

var errIndexMalformed = errors.New("malformed index")

// readIndex reads and parses an index file. A missing file is an empty
// index, as git treats it.
func readIndex(path string) (*gitIndex, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &gitIndex{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("git index: %w", err)
	}
	defer f.Close()

	// The mtime must come from the same open file as the data so that a
	// concurrent index rewrite cannot pair new stat data with an old mtime.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("git index: %w", err)
	}
	data := make([]byte, fi.Size())
	if _, err := readFull(f, data); err != nil {
		return nil, fmt.Errorf("git index: read %s: %w", path, err)
	}

	idx, err := parseIndex(data)
	if err != nil {
		return nil, fmt.Errorf("git index %s: %w", path, err)
	}
	mt := fi.ModTime()
	idx.mtimeSec = mt.Unix()
	idx.mtimeNsec = int64(mt.Nanosecond())
	return idx, nil
}

func readFull(f *os.File, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// parseIndex parses index format versions 2, 3 and 4 with the TREE
// extension; other optional extensions are skipped.
func parseIndex(data []byte) (*gitIndex, error) {
	const headerLen = 12
	if len(data) < headerLen+sha1.Size {
		return nil, fmt.Errorf("%w: %d bytes is too short", errIndexMalformed, len(data))
	}
	if string(data[:4]) != "DIRC" {
		return nil, fmt.Errorf("%w: bad signature %q", errIndexMalformed, data[:4])
	}
	version := binary.BigEndian.Uint32(data[4:8])
	if version < 2 || version > 4 {
		return nil, fmt.Errorf("index version %d is not supported, only 2 to 4 are — rewrite it with `git update-index --index-version 4`", version)
	}
	count := binary.BigEndian.Uint32(data[8:12])

	body := data[:len(data)-sha1.Size]
	sum := data[len(data)-sha1.Size:]
	// An all-zero trailer means index.skipHash is set and git wrote no checksum.
	if !bytes.Equal(sum, make([]byte, sha1.Size)) {
		got := sha1.Sum(body)
		if !bytes.Equal(got[:], sum) {
			return nil, fmt.Errorf("%w: checksum mismatch (the file is corrupt or was being rewritten)", errIndexMalformed)
		}
	}

	// One string holds every name so the entries share its memory.
	text := string(body)
	idx := &gitIndex{entries: make([]indexEntry, 0, count)}
	off := headerLen
	prev := ""
	for i := uint32(0); i < count; i++ {
		e, next, err := parseEntry(body, text, off, version, prev)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		idx.entries = append(idx.entries, e)
		prev = e.name
		off = next
	}

	for off < len(body) {
		if len(body)-off < 8 {
			return nil, fmt.Errorf("%w: truncated extension header", errIndexMalformed)
		}
		sig := string(body[off : off+4])
		size := int(binary.BigEndian.Uint32(body[off+4 : off+8]))
		off += 8
		if size > len(body)-off {
			return nil, fmt.Errorf("%w: extension %q overruns the file", errIndexMalformed, sig)
		}
		ext := body[off : off+size]
		off += size

		switch {
		case sig == "TREE":
			tree, err := parseCacheTree(ext)
			if err != nil {
				return nil, err
			}
			idx.tree = tree
		case sig == "link":
			return nil, errors.New("index uses the split-index extension, which is not supported — run `git update-index --no-split-index` in the repository")
		case sig == "sdir":
			return nil, errors.New("index is a sparse index, which is not supported — run `git config index.sparse false && git sparse-checkout reapply` in the repository")
		case sig[0] < 'A' || sig[0] > 'Z':
			return nil, fmt.Errorf("index has required extension %q, which is not supported — turn off the git feature that writes it (see `git help index-format`)", sig)
		}
	}
	return idx, nil
}

// parseEntry decodes the entry at off and returns it with the offset of the
// next entry. prev is the previous entry's name, which version 4 compresses
// against.
func parseEntry(body []byte, text string, off int, version uint32, prev string) (indexEntry, int, error) {
	const fixedLen = 62
	var e indexEntry
	if len(body)-off < fixedLen {
		return e, 0, fmt.Errorf("%w: truncated entry", errIndexMalformed)
	}
	b := body[off:]
	be := binary.BigEndian
	e.ctimeSec = be.Uint32(b[0:])
	e.ctimeNsec = be.Uint32(b[4:])
	e.mtimeSec = be.Uint32(b[8:])
	e.mtimeNsec = be.Uint32(b[12:])
	e.ino = be.Uint32(b[20:])
	e.mode = be.Uint32(b[24:])
	e.uid = be.Uint32(b[28:])
	e.gid = be.Uint32(b[32:])
	e.size = be.Uint32(b[36:])
	copy(e.hash[:], b[40:60])
	flags := be.Uint16(b[60:])
	e.stage = uint8(flags>>12) & 3
	e.assumeValid = flags&0x8000 != 0
	hdr := fixedLen
	if flags&0x4000 != 0 {
		if version < 3 {
			return e, 0, fmt.Errorf("%w: extended flags in a version 2 index", errIndexMalformed)
		}
		if len(b) < fixedLen+2 {
			return e, 0, fmt.Errorf("%w: truncated entry", errIndexMalformed)
		}
		ext := be.Uint16(b[62:])
		e.intentToAdd = ext&(1<<13) != 0
		e.skipWorktree = ext&(1<<14) != 0
		hdr += 2
	}
	start := off + hdr

	if version == 4 {
		strip, n := readOffsetVarint(body[start:])
		if n == 0 || strip > uint64(len(prev)) {
			return e, 0, fmt.Errorf("%w: bad name prefix length", errIndexMalformed)
		}
		start += n
		end := bytes.IndexByte(body[start:], 0)
		if end < 0 {
			return e, 0, fmt.Errorf("%w: unterminated name", errIndexMalformed)
		}
		e.name = prev[:len(prev)-int(strip)] + text[start:start+end]
		return e, start + end + 1, nil
	}

	nameLen := int(flags & 0xfff)
	if nameLen == 0xfff {
		end := bytes.IndexByte(body[start:], 0)
		if end < 0 {
			return e, 0, fmt.Errorf("%w: unterminated name", errIndexMalformed)
		}
		nameLen = end
	}
	if start+nameLen > len(body) {
		return e, 0, fmt.Errorf("%w: truncated name", errIndexMalformed)
	}
	e.name = text[start : start+nameLen]
	// Entries are NUL-padded to a multiple of 8 bytes, with at least one NUL.
	next := off + (hdr+nameLen+8)&^7
	if next > len(body) {
		return e, 0, fmt.Errorf("%w: truncated entry padding", errIndexMalformed)
	}
	return e, next, nil
}

// readOffsetVarint decodes git's offset varint, in which each continuation
// adds one before shifting so that no value has two encodings. It returns
// the value and the bytes used, or 0 bytes when the input is truncated.
func readOffsetVarint(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	c := b[0]
	v := uint64(c & 0x7f)
	n := 1
	for c&0x80 != 0 {
		if n >= len(b) || n > 9 {
			return 0, 0
		}
		c = b[n]
		n++
		v = ((v + 1) << 7) | uint64(c&0x7f)
	}
	return v, n
}

// parseCacheTree parses the TREE extension: nodes in pre-order, each
// "name NUL count SP subtrees LF" followed by a tree id when count >= 0.
func parseCacheTree(ext []byte) (*cacheTree, error) {
	p := &treeParser{data: ext}
	root, err := p.node(0)
	if err != nil {
		return nil, fmt.Errorf("%w: TREE extension: %v", errIndexMalformed, err)
	}
	if p.off != len(p.data) {
		return nil, fmt.Errorf("%w: TREE extension has %d trailing bytes", errIndexMalformed, len(p.data)-p.off)
	}
	return root, nil
}

type treeParser struct {
	data []byte
	off  int
}

func (p *treeParser) node(depth int) (*cacheTree, error) {
	// Paths in git are limited to 4096 bytes, so no real tree is this deep.
	if depth > 4096 {
		return nil, errors.New("nesting too deep")
	}
	name, err := p.until(0)
	if err != nil {
		return nil, err
	}
	countText, err := p.until(' ')
	if err != nil {
		return nil, err
	}
	subText, err := p.until('\n')
	if err != nil {
		return nil, err
	}
	count, err := strconv.Atoi(countText)
	if err != nil {
		return nil, fmt.Errorf("entry count %q: %v", countText, err)
	}
	subtrees, err := strconv.Atoi(subText)
	if err != nil || subtrees < 0 {
		return nil, fmt.Errorf("subtree count %q is invalid", subText)
	}

	t := &cacheTree{name: name, entries: count}
	if count >= 0 {
		if len(p.data)-p.off < sha1.Size {
			return nil, errors.New("truncated tree id")
		}
		copy(t.hash[:], p.data[p.off:])
		p.off += sha1.Size
	}
	if subtrees > len(p.data)-p.off {
		return nil, fmt.Errorf("subtree count %d exceeds the extension size", subtrees)
	}
	t.children = make([]*cacheTree, 0, subtrees)
	for range subtrees {
		c, err := p.node(depth + 1)
		if err != nil {
			return nil, err
		}
		t.children = append(t.children, c)
	}
	return t, nil
}

func (p *treeParser) until(delim byte) (string, error) {
	i := bytes.IndexByte(p.data[p.off:], delim)
	if i < 0 {
		return "", errors.New("truncated node")
	}
	s := string(p.data[p.off : p.off+i])
	p.off += i + 1
	return s, nil
}
