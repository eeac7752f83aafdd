package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ktstr/ktbuild/lib/cache"
)

// configMarkerName is the file in a local tree that records the .config
// ktbuild's last build there produced. It separates ktbuild's own .config from
// one the user wrote, without depending on what the cache holds.
const configMarkerName = ".ktbuild-config"

// configMarker is the content of the marker: the CRC32 of the .config, the
// kconfig suffix (fragment hashes) it was configured with, and the CRC32 of
// the user's .config it started from, "" when it started from defconfig.
type configMarker struct {
	crc, suffix, userConfig string
}

func readConfigMarker(dir string) (configMarker, bool) {
	data, err := os.ReadFile(filepath.Join(dir, configMarkerName))
	if err != nil {
		return configMarker{}, false
	}
	fields := strings.Fields(string(data))
	if len(fields) != 3 {
		return configMarker{}, false
	}
	m := configMarker{crc: fields[0], suffix: fields[1], userConfig: fields[2]}
	if m.userConfig == "-" {
		m.userConfig = ""
	}
	return m, true
}

func writeConfigMarker(dir string, m configMarker) error {
	user := m.userConfig
	if user == "" {
		user = "-"
	}
	path := filepath.Join(dir, configMarkerName)
	if err := os.WriteFile(path, []byte(m.crc+" "+m.suffix+" "+user+"\n"), 0o644); err != nil {
		return fmt.Errorf("cannot record the build's .config in %s: %w", path, err)
	}
	return nil
}

// userConfigOf returns the CRC32 of the user's .config that a local key
// names ("cfg{crc}"), or "" for a key without one.
func userConfigOf(key string) string {
	_, rest, ok := strings.Cut(key, "-cfg")
	if !ok || len(rest) < 8 {
		return ""
	}
	return rest[:8]
}

// setAsideStaleConfig moves away a .config that ktbuild wrote for other
// fragments, so configure starts again from defconfig instead of carrying
// the options of an earlier -extrakconfig into this build. A user's own
// .config, and one written for these very fragments, stay.
func (b *builder) setAsideStaleConfig(dir string) error {
	mark, ok := readConfigMarker(dir)
	if !ok || mark.suffix == b.suffix() || mark.userConfig != "" {
		return nil
	}
	configPath := filepath.Join(dir, ".config")
	crc, err := fileCRC(configPath)
	if err != nil || crc != mark.crc {
		return err
	}
	old := configPath + ".ktbuild-old"
	if err := os.Rename(configPath, old); err != nil {
		return fmt.Errorf("cannot move the earlier build's .config aside: %w", err)
	}
	b.say("the tree's .config came from a build with other kconfig fragments — moved it to %s and configuring afresh", old)
	return nil
}

// markConfig writes the config marker for the tree's .config when configure
// changed it from the one with CRC32 before. A failure is a warning.
func (b *builder) markConfig(dir, before, key string) {
	crc, err := fileCRC(filepath.Join(dir, ".config"))
	if err != nil || crc == "" || crc == before {
		return
	}
	mark := configMarker{crc: crc, suffix: b.suffix(), userConfig: userConfigOf(key)}
	if err := writeConfigMarker(dir, mark); err != nil {
		b.warnf("%v", err)
	}
}

func fileCRC(path string) (string, error) {
	crc, err := cache.FileCRC32(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return crc, err
}
