package kbuild

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// FragmentLine is one setting of a kconfig fragment or .config.
type FragmentLine struct {
	// Symbol is the full option name, e.g. "CONFIG_BPF_SYSCALL".
	Symbol string
	// Value is the text after "=", or "n" for "# CONFIG_X is not set".
	Value string
	// Line is the setting as written, without surrounding whitespace.
	Line string
	// Number is the 1-based line number in the fragment.
	Number int
}

const notSetSuffix = " is not set"

// maxReportedLines bounds how many invalid lines one ParseFragment error lists.
const maxReportedLines = 10

// ParseFragment parses a kconfig fragment called name (a path or label used
// in errors). Blank lines and comments are skipped, and every other line
// must be CONFIG_NAME=value or "# CONFIG_NAME is not set". The error lists
// every invalid line, up to ten.
func ParseFragment(name string, data []byte) ([]FragmentLine, error) {
	var lines []FragmentLine
	var errs []error
	for i, raw := range strings.Split(string(data), "\n") {
		text := strings.TrimSpace(raw)
		if text == "" {
			continue
		}
		line, ok, problem := parseLine(text)
		if problem != "" {
			if len(errs) < maxReportedLines {
				errs = append(errs, fmt.Errorf("%s:line %d: %s — expected CONFIG_NAME=value or # CONFIG_NAME is not set", name, i+1, problem))
			}
			continue
		}
		if ok {
			line.Number = i + 1
			lines = append(lines, line)
		}
	}
	return lines, errors.Join(errs...)
}

// parseLine parses one trimmed, non-empty line. It returns ok=false for a
// comment and a non-empty problem for a line that is neither a setting nor
// a comment.
func parseLine(text string) (line FragmentLine, ok bool, problem string) {
	if strings.HasPrefix(text, "#") {
		// kconfig reads exactly "# CONFIG_X is not set" and treats any
		// other spelling as a comment, so this parser does the same.
		symbol, found := strings.CutSuffix(strings.TrimPrefix(text, "# "), notSetSuffix)
		if !found || !validSymbol(symbol) {
			return FragmentLine{}, false, ""
		}
		return FragmentLine{Symbol: symbol, Value: "n", Line: "# " + symbol + notSetSuffix}, true, ""
	}

	symbol, value, found := strings.Cut(text, "=")
	switch {
	case !found:
		return FragmentLine{}, false, fmt.Sprintf("%q has no \"=\"", text)
	case !validSymbol(symbol):
		return FragmentLine{}, false, fmt.Sprintf("%q is not an option name (CONFIG_ followed by letters, digits and underscores)", symbol)
	case value == "":
		return FragmentLine{}, false, fmt.Sprintf("%s has an empty value", symbol)
	case strings.HasPrefix(value, `"`):
		if len(value) < 2 || !strings.HasSuffix(value, `"`) {
			return FragmentLine{}, false, fmt.Sprintf("%s has an unterminated string value %s", symbol, value)
		}
	case strings.ContainsAny(value, " \t#"):
		return FragmentLine{}, false, fmt.Sprintf("%s has value %q with spaces or a comment; kconfig has no trailing comments", symbol, value)
	}
	return FragmentLine{Symbol: symbol, Value: value, Line: text}, true, ""
}

func validSymbol(symbol string) bool {
	name, found := strings.CutPrefix(symbol, "CONFIG_")
	if !found || name == "" {
		return false
	}
	for _, c := range name {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// MergeFragments returns base, a newline, then extra. Appended to a .config
// and resolved by olddefconfig, a symbol set in both takes extra's value
// because kconfig keeps the last assignment.
func MergeFragments(base, extra []byte) []byte {
	merged := make([]byte, 0, len(base)+1+len(extra))
	merged = append(merged, base...)
	merged = append(merged, '\n')
	return append(merged, extra...)
}

// effective returns each symbol's last setting in lines, in order of the
// symbol's first appearance.
func effective(lines []FragmentLine) []FragmentLine {
	index := map[string]int{}
	var out []FragmentLine
	for _, line := range lines {
		if i, ok := index[line.Symbol]; ok {
			out[i] = line
			continue
		}
		index[line.Symbol] = len(out)
		out = append(out, line)
	}
	return out
}

// configValues maps each symbol set in a .config to its value, "n" for
// "# CONFIG_X is not set". Lines that are not settings are ignored, and the
// last setting of a symbol wins as in kconfig.
func configValues(data []byte) map[string]string {
	values := map[string]string{}
	for _, raw := range bytes.Split(data, []byte("\n")) {
		text := strings.TrimSpace(string(raw))
		if text == "" {
			continue
		}
		if line, ok, _ := parseLine(text); ok {
			values[line.Symbol] = line.Value
		}
	}
	return values
}

// valueOf returns symbol's value in a .config map, "n" when it is absent:
// kconfig leaves out options whose dependencies are unmet, which is off.
func valueOf(values map[string]string, symbol string) string {
	if v, ok := values[symbol]; ok {
		return v
	}
	return "n"
}
