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
	if !ok || mark.suffix == b.suffix() {
		return nil
	}
	restore := mark.userConfig != "" && savedUserConfig(dir, mark.userConfig)
	if mark.userConfig != "" && !restore {
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
	if !restore {
		b.say("the tree's .config came from a build with other kconfig fragments — moved it to %s and configuring afresh", old)
		return nil
	}
	if err := copyFile(filepath.Join(dir, userConfigCopyName), configPath); err != nil {
		return fmt.Errorf("cannot restore your .config from %s: %w — copy it to .config by hand", userConfigCopyName, err)
	}
	b.say("the tree's .config came from a build with other kconfig fragments — moved it to %s and restored your own .config from %s", old, userConfigCopyName)
	return nil
}

// markConfig writes the config marker for the tree's .config when configure
// changed it from the one with CRC32 before. A failure is a warning.
func (b *builder) markConfig(dir, before, user string) {
	crc, err := fileCRC(filepath.Join(dir, ".config"))
	if err != nil || crc == "" || crc == before {
		return
	}
	mark := configMarker{crc: crc, suffix: b.suffix(), userConfig: user}
	if err := writeConfigMarker(dir, mark); err != nil {
		b.warnf("%v", err)
	}
}

// userConfig returns the CRC32 of the tree's .config before configure ("" for
// none) and that of the user's own .config it derives from ("" when it
// started from defconfig). A clean tree's key already names the user's
// config. A dirty tree's key does not, so the marker decides: a .config it
// does not name is the user's own. A user's own .config is also copied to
// .config.ktbuild-user, so a later build with other fragments can start
// from it again.
func (b *builder) userConfig(dir string, acq *acquired) (before, user string, err error) {
	configPath := filepath.Join(dir, ".config")
	if before, err = fileCRC(configPath); err != nil || before == "" {
		return before, "", err
	}
	switch mark, ok := readConfigMarker(dir); {
	case !acq.src.Dirty:
		user = userConfigOf(acq.key)
	case ok && mark.crc == before:
		user = mark.userConfig
	default:
		user = before
	}
	if user != "" && user == before {
		if err := copyFile(configPath, filepath.Join(dir, userConfigCopyName)); err != nil {
			b.warnf("cannot keep a copy of your .config: %v", err)
		}
	}
	return before, user, nil
}

// userConfigCopyName is the copy of the user's own .config that ktbuild
// keeps in a local tree before configuring over it.
const userConfigCopyName = ".config.ktbuild-user"

// savedUserConfig reports whether the tree holds the copy of the user's
// .config whose CRC32 is crc.
func savedUserConfig(dir, crc string) bool {
	got, err := fileCRC(filepath.Join(dir, userConfigCopyName))
	return err == nil && got != "" && got == crc
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, to)
}

func fileCRC(path string) (string, error) {
	crc, err := cache.FileCRC32(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return crc, err
}
