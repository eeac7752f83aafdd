package source

import (
	"crypto/sha1"
	"strconv"
	"strings"
)

// indexTreeHash returns the id of the tree object that `git write-tree`
// would write for entries, which all lie under a directory whose path with
// its trailing slash is baseLen bytes long. node is the cache-tree node of
// that directory, or nil. A valid node whose entry count matches is
// trusted as git trusts it; other directories are hashed from the entries.
//
// The entries must be stage-0 and sorted as the index sorts them; that
// order is also the order of a tree object's entries.
func indexTreeHash(entries []indexEntry, baseLen int, node *cacheTree) [sha1.Size]byte {
	if node != nil && node.entries >= 0 && node.entries == len(entries) {
		return node.hash
	}

	var body []byte
	for i := 0; i < len(entries); {
		rel := entries[i].name[baseLen:]
		slash := strings.IndexByte(rel, '/')
		if slash < 0 {
			body = appendTreeEntry(body, entries[i].mode, rel, entries[i].hash)
			i++
			continue
		}

		dir := rel[:slash+1]
		child := node.child(dir[:slash])
		end := subtreeEnd(entries, i, baseLen, dir, child)
		sub := indexTreeHash(entries[i:end], baseLen+len(dir), child)
		body = appendTreeEntry(body, 0o40000, dir[:slash], sub)
		i = end
	}
	return hashObject("tree", body)
}

// subtreeEnd returns the end of the run of entries starting at i whose
// names continue with dir (a name with its trailing slash) after baseLen
// bytes. A cache-tree node's entry count is used as a first guess and
// checked at both edges before it is believed.
func subtreeEnd(entries []indexEntry, i, baseLen int, dir string, child *cacheTree) int {
	inDir := func(j int) bool {
		return strings.HasPrefix(entries[j].name[baseLen:], dir)
	}
	if child != nil && child.entries > 0 {
		end := i + child.entries
		if end <= len(entries) && inDir(end-1) && (end == len(entries) || !inDir(end)) {
			return end
		}
	}
	end := i + 1
	for end < len(entries) && inDir(end) {
		end++
	}
	return end
}

func appendTreeEntry(b []byte, mode uint32, name string, id [sha1.Size]byte) []byte {
	b = strconv.AppendUint(b, uint64(mode), 8)
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, 0)
	return append(b, id[:]...)
}

// hashObject returns the git object id of an object of the given type.
func hashObject(kind string, body []byte) [sha1.Size]byte {
	h := sha1.New()
	h.Write([]byte(kind + " " + strconv.Itoa(len(body)) + "\x00"))
	h.Write(body)
	var id [sha1.Size]byte
	h.Sum(id[:0])
	return id
}
