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

// configPendingName is the file in a local tree that exists while configure
// rewrites .config. It contains the kconfig suffix and the CRC32 of the
// user's .config the build started from ("-" for none). A build killed
// mid-configure leaves it, so the next build can tell .config is half-written.
const configPendingName = ".ktbuild-config.pending"

// configPending is the content of the pending file.
type configPending struct {
	suffix, userConfig string
}

func readConfigPending(dir string) (configPending, bool) {
	data, err := os.ReadFile(filepath.Join(dir, configPendingName))
	if err != nil {
		return configPending{}, false
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		// An unreadable record still means configure was cut short.
		return configPending{userConfig: "?"}, true
	}
	p := configPending{suffix: fields[0], userConfig: fields[1]}
	if p.userConfig == "-" {
		p.userConfig = ""
	}
	return p, true
}

// beginConfigure records that configure is about to rewrite dir's .config,
// which started from the user's .config with CRC32 user ("" for none).
func (b *builder) beginConfigure(dir, user string) {
	if user == "" {
		user = "-"
	}
	path := filepath.Join(dir, configPendingName)
	if err := os.WriteFile(path, []byte(b.suffix()+" "+user+"\n"), 0o644); err != nil {
		b.warnf("cannot record that configure runs in %s: %v — if this build is killed, check .config before the next one", path, err)
	}
}

// endConfigure removes the pending record once the marker describes the
// .config that configure left.
func endConfigure(dir string) {
	os.Remove(filepath.Join(dir, configPendingName))
}

// pendingUserConfig returns the CRC32 of the user's .config that a build
// killed mid-configure started from ("" for none), when dir holds such a
// build's half-written .config. It fails when that config cannot be
// restored, because the copy of it is gone.
func (b *builder) pendingUserConfig(dir string) (user string, pending bool, err error) {
	p, ok := readConfigPending(dir)
	if !ok {
		return "", false, nil
	}
	if b.req.Clean || p.userConfig == "" || savedUserConfig(dir, p.userConfig) {
		return p.userConfig, true, nil
	}
	return "", true, fmt.Errorf("an earlier build in %s was killed while it configured over your own .config, and the copy of yours (%s) is gone or changed — put your .config back, or pass -clean to start from defconfig", dir, userConfigCopyName)
}

// recoverConfigure undoes the half-written .config of a build killed
// mid-configure: it restores the user's .config from its copy, or moves
// .config aside when the build started from defconfig.
func (b *builder) recoverConfigure(dir string) error {
	user, pending, err := b.pendingUserConfig(dir)
	if err != nil || !pending {
		return err
	}
	configPath := filepath.Join(dir, ".config")
	crc, err := fileCRC(configPath)
	if err != nil {
		return err
	}
	if crc != "" && (user == "" || crc != user) {
		old := configPath + ".ktbuild-old"
		if err := os.Rename(configPath, old); err != nil {
			return fmt.Errorf("cannot move the half-written .config aside: %w", err)
		}
		if user == "" || b.req.Clean {
			b.say("an earlier build was killed while it configured this tree — moved its half-written .config to %s and configuring afresh", old)
		} else {
			if err := copyFile(filepath.Join(dir, userConfigCopyName), configPath); err != nil {
				return fmt.Errorf("cannot restore your .config from %s: %w — copy it to .config by hand", userConfigCopyName, err)
			}
			b.say("an earlier build was killed while it configured this tree — moved its half-written .config to %s and restored your own from %s", old, userConfigCopyName)
		}
	}
	endConfigure(dir)
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
