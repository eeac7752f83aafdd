package source

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/packfile"
)

// The probe reads HEAD's commit and trees itself instead of through
// go-git's object storage. go-git v5.19.3 decodes every pack index in full
// on the first packed lookup. For a kernel clone with ~10M objects, at 28
// bytes per object, that is an estimated 300 MB to read and hold. Here a
// lookup is a binary search with a few small reads per index, and only
// delta application comes from go-git.

// errObjectNotFound reports an object that no loose file or pack holds.
var errObjectNotFound = errors.New("object not found")

const (
	// maxObjectSize caps the commits and trees the probe inflates.
	maxObjectSize = 64 << 20
	// maxDeltaDepth caps delta chains far above git's default of 50.
	maxDeltaDepth = 10000
	// maxAlternateDepth caps chains of alternates at git's own limit.
	maxAlternateDepth = 5
)

// objectStore reads objects from one objects directory and its alternates.
type objectStore struct {
	dir        string
	packs      []*packIndex
	packsRead  bool
	alternates []*objectStore
	depth      int
}

func newObjectStore(dir string, depth int) *objectStore {
	return &objectStore{dir: dir, depth: depth}
}

// close releases the pack files opened so far.
func (s *objectStore) close() {
	for _, p := range s.packs {
		p.close()
	}
	for _, a := range s.alternates {
		a.close()
	}
}

// read returns the type ("commit", "tree", "blob", "tag") and content of
// the object id.
func (s *objectStore) read(id [sha1.Size]byte) (string, []byte, error) {
	kind, body, err := s.readLoose(id)
	if !errors.Is(err, errObjectNotFound) {
		return kind, body, err
	}
	if err := s.loadPacks(); err != nil {
		return "", nil, err
	}
	for _, p := range s.packs {
		off, ok, err := p.find(id)
		if err != nil {
			return "", nil, err
		}
		if ok {
			return p.readAt(s, off, 0)
		}
	}
	for _, a := range s.alternates {
		kind, body, err := a.read(id)
		if !errors.Is(err, errObjectNotFound) {
			return kind, body, err
		}
	}
	return "", nil, errObjectNotFound
}

func (s *objectStore) readLoose(id [sha1.Size]byte) (string, []byte, error) {
	name := hex.EncodeToString(id[:])
	f, err := os.Open(filepath.Join(s.dir, name[:2], name[2:]))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, errObjectNotFound
	}
	if err != nil {
		return "", nil, err
	}
	defer f.Close()

	zr, err := zlib.NewReader(bufio.NewReader(f))
	if err != nil {
		return "", nil, fmt.Errorf("loose object %s: %w", name, err)
	}
	defer zr.Close()
	br := bufio.NewReader(zr)
	header, err := br.ReadString(0)
	if err != nil {
		return "", nil, fmt.Errorf("loose object %s: bad header: %w", name, err)
	}
	kind, sizeText, ok := strings.Cut(strings.TrimSuffix(header, "\x00"), " ")
	size, err := strconv.ParseInt(sizeText, 10, 64)
	if !ok || err != nil || size < 0 || size > maxObjectSize {
		return "", nil, fmt.Errorf("loose object %s: bad header %q", name, header)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(br, body); err != nil {
		return "", nil, fmt.Errorf("loose object %s: %w", name, err)
	}
	return kind, body, nil
}

// loadPacks opens the pack indexes and the alternates list once.
func (s *objectStore) loadPacks() error {
	if s.packsRead {
		return nil
	}
	s.packsRead = true

	names, err := filepath.Glob(filepath.Join(s.dir, "pack", "pack-*.idx"))
	if err != nil {
		return err
	}
	for _, name := range names {
		p, err := openPackIndex(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		s.packs = append(s.packs, p)
	}

	if s.depth >= maxAlternateDepth {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(s.dir, "info", "alternates"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !filepath.IsAbs(line) {
			line = filepath.Join(s.dir, line)
		}
		s.alternates = append(s.alternates, newObjectStore(line, s.depth+1))
	}
	return nil
}

// packIndex is a pack file and its index, read on demand.
type packIndex struct {
	path    string // the .idx file
	idx     *os.File
	pack    *os.File
	version int
	fanout  [256]uint32
}

func openPackIndex(path string) (*packIndex, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	p := &packIndex{path: path, idx: f}
	head := make([]byte, 8+256*4)
	if _, err := f.ReadAt(head, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("pack index %s: %w", path, err)
	}
	table := head[:256*4]
	p.version = 1
	if bytes.Equal(head[:4], []byte{0xff, 't', 'O', 'c'}) {
		if v := binary.BigEndian.Uint32(head[4:8]); v != 2 {
			f.Close()
			return nil, fmt.Errorf("pack index %s: version %d is not supported", path, v)
		}
		p.version = 2
		table = head[8:]
	}
	for i := range p.fanout {
		p.fanout[i] = binary.BigEndian.Uint32(table[4*i:])
	}
	return p, nil
}

func (p *packIndex) close() {
	p.idx.Close()
	if p.pack != nil {
		p.pack.Close()
	}
}

// find returns the pack offset of id by binary search over the index's
// sorted names, reading one name per step.
func (p *packIndex) find(id [sha1.Size]byte) (int64, bool, error) {
	lo := uint32(0)
	if id[0] > 0 {
		lo = p.fanout[id[0]-1]
	}
	hi := p.fanout[id[0]]
	count := p.fanout[255]

	var name [sha1.Size]byte
	for lo < hi {
		mid := lo + (hi-lo)/2
		if _, err := p.idx.ReadAt(name[:], p.nameOffset(mid)); err != nil {
			return 0, false, fmt.Errorf("pack index %s: %w", p.path, err)
		}
		switch c := bytes.Compare(name[:], id[:]); {
		case c < 0:
			lo = mid + 1
		case c > 0:
			hi = mid
		default:
			off, err := p.packOffset(mid, count)
			return off, err == nil, err
		}
	}
	return 0, false, nil
}

func (p *packIndex) nameOffset(i uint32) int64 {
	if p.version == 1 {
		return 256*4 + int64(i)*24 + 4
	}
	return 8 + 256*4 + int64(i)*sha1.Size
}

// packOffset reads entry i's offset; version 2 keeps offsets of 2 GiB and
// more in a second table of 8-byte values.
func (p *packIndex) packOffset(i, count uint32) (int64, error) {
	var b [8]byte
	if p.version == 1 {
		if _, err := p.idx.ReadAt(b[:4], 256*4+int64(i)*24); err != nil {
			return 0, fmt.Errorf("pack index %s: %w", p.path, err)
		}
		return int64(binary.BigEndian.Uint32(b[:4])), nil
	}
	base := 8 + 256*4 + int64(count)*(sha1.Size+4)
	if _, err := p.idx.ReadAt(b[:4], base+int64(i)*4); err != nil {
		return 0, fmt.Errorf("pack index %s: %w", p.path, err)
	}
	off := binary.BigEndian.Uint32(b[:4])
	if off&0x80000000 == 0 {
		return int64(off), nil
	}
	large := base + int64(count)*4 + int64(off&0x7fffffff)*8
	if _, err := p.idx.ReadAt(b[:], large); err != nil {
		return 0, fmt.Errorf("pack index %s: %w", p.path, err)
	}
	return int64(binary.BigEndian.Uint64(b[:])), nil
}

var packTypes = map[byte]string{1: "commit", 2: "tree", 3: "blob", 4: "tag"}

const (
	packOfsDelta = 6
	packRefDelta = 7
)

// readAt reads the object at off in the pack, resolving deltas against
// bases in the same pack (by offset) or anywhere in s (by id).
func (p *packIndex) readAt(s *objectStore, off int64, depth int) (string, []byte, error) {
	if depth > maxDeltaDepth {
		return "", nil, fmt.Errorf("pack %s: delta chain longer than %d", p.packPath(), maxDeltaDepth)
	}
	if p.pack == nil {
		f, err := os.Open(p.packPath())
		if err != nil {
			return "", nil, err
		}
		p.pack = f
	}

	// An object header is at most 10 bytes of size varint plus a 20-byte
	// base id. A short read near the end of the pack is fine.
	var head [32]byte
	n, readErr := p.pack.ReadAt(head[:], off)
	if n == 0 {
		return "", nil, fmt.Errorf("pack %s at %d: %w", p.packPath(), off, readErr)
	}
	c := head[0]
	typ := (c >> 4) & 7
	size := int64(c & 15)
	i := 1
	for shift := 4; c&0x80 != 0; shift += 7 {
		if i >= n || shift > 56 {
			return "", nil, fmt.Errorf("pack %s at %d: bad object header", p.packPath(), off)
		}
		c = head[i]
		i++
		size |= int64(c&0x7f) << shift
	}
	if size > maxObjectSize {
		return "", nil, fmt.Errorf("pack %s at %d: object of %d bytes is too large to read", p.packPath(), off, size)
	}

	var baseKind string
	var base []byte
	var err error
	switch typ {
	case packOfsDelta:
		if i >= n {
			return "", nil, fmt.Errorf("pack %s at %d: truncated delta header", p.packPath(), off)
		}
		c = head[i]
		i++
		rel := int64(c & 0x7f)
		for c&0x80 != 0 {
			if i >= n {
				return "", nil, fmt.Errorf("pack %s at %d: bad delta offset", p.packPath(), off)
			}
			c = head[i]
			i++
			rel = ((rel + 1) << 7) | int64(c&0x7f)
		}
		if rel <= 0 || rel > off {
			return "", nil, fmt.Errorf("pack %s at %d: bad delta offset", p.packPath(), off)
		}
		baseKind, base, err = p.readAt(s, off-rel, depth+1)
	case packRefDelta:
		if i+sha1.Size > n {
			return "", nil, fmt.Errorf("pack %s at %d: truncated delta header", p.packPath(), off)
		}
		var id [sha1.Size]byte
		copy(id[:], head[i:])
		i += sha1.Size
		baseKind, base, err = s.read(id)
	default:
		if packTypes[typ] == "" {
			return "", nil, fmt.Errorf("pack %s at %d: unknown object type %d", p.packPath(), off, typ)
		}
	}
	if err != nil {
		return "", nil, err
	}

	data, err := inflate(io.NewSectionReader(p.pack, off+int64(i), 1<<62), size)
	if err != nil {
		return "", nil, fmt.Errorf("pack %s at %d: %w", p.packPath(), off, err)
	}
	if base == nil {
		return packTypes[typ], data, nil
	}
	out, err := packfile.PatchDelta(base, data)
	if err != nil {
		return "", nil, fmt.Errorf("pack %s at %d: %w", p.packPath(), off, err)
	}
	return baseKind, out, nil
}

func (p *packIndex) packPath() string {
	return strings.TrimSuffix(p.path, ".idx") + ".pack"
}

// inflate reads exactly size bytes from the zlib stream at r.
func inflate(r io.Reader, size int64) ([]byte, error) {
	zr, err := zlib.NewReader(bufio.NewReaderSize(r, 4096))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	out := make([]byte, size)
	if _, err := io.ReadFull(zr, out); err != nil {
		return nil, err
	}
	return out, nil
}

// commitTree returns the tree id of a commit, peeling tags on the way.
func (s *objectStore) commitTree(id [sha1.Size]byte) ([sha1.Size]byte, error) {
	for range 10 {
		kind, body, err := s.read(id)
		if err != nil {
			return [sha1.Size]byte{}, err
		}
		var field string
		switch kind {
		case "commit":
			field = "tree "
		case "tag":
			field = "object "
		default:
			return [sha1.Size]byte{}, fmt.Errorf("object %x is a %s, not a commit", id, kind)
		}
		line, _, _ := bytes.Cut(body, []byte("\n"))
		text, ok := strings.CutPrefix(string(line), field)
		raw, err := hex.DecodeString(text)
		if !ok || err != nil || len(raw) != sha1.Size {
			return [sha1.Size]byte{}, fmt.Errorf("%s %x: malformed first line %q", kind, id, line)
		}
		copy(id[:], raw)
		if kind == "commit" {
			return id, nil
		}
	}
	return [sha1.Size]byte{}, errors.New("too many nested tags")
}

// subtree returns the id of the directory at prefix below tree, and false
// when there is none.
func (s *objectStore) subtree(tree [sha1.Size]byte, prefix string) ([sha1.Size]byte, bool, error) {
	for _, part := range strings.Split(prefix, "/") {
		kind, body, err := s.read(tree)
		if err != nil {
			return tree, false, err
		}
		if kind != "tree" {
			return tree, false, fmt.Errorf("object %x is a %s, not a tree", tree, kind)
		}
		found := false
		for len(body) > 0 {
			sp := bytes.IndexByte(body, ' ')
			nul := bytes.IndexByte(body, 0)
			if sp < 0 || nul < sp || len(body) < nul+1+sha1.Size {
				return tree, false, fmt.Errorf("tree %x is malformed", tree)
			}
			mode, name := string(body[:sp]), string(body[sp+1:nul])
			if name == part {
				if mode != "40000" {
					return tree, false, nil
				}
				copy(tree[:], body[nul+1:])
				found = true
				break
			}
			body = body[nul+1+sha1.Size:]
		}
		if !found {
			return tree, false, nil
		}
	}
	return tree, true, nil
}
