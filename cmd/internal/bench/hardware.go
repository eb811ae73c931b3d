package bench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Hardware describes the machine a run was measured on.
type Hardware struct {
	CPU      string  `json:"cpu"`
	Cores    int     `json:"cores"`
	MemoryGB float64 `json:"memory_GiB"`
	OS       string  `json:"os"`
	Go       string  `json:"go"`
}

// ReadHardware reads the CPU model from /proc/cpuinfo and the memory from
// /proc/meminfo; what it cannot read it leaves empty.
func ReadHardware() Hardware {
	h := Hardware{Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		h.CPU = procField(string(b), "model name")
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(procField(string(b), "MemTotal"), " kB"), 64)
		h.MemoryGB = kb / (1 << 20)
	}
	if h.CPU == "" {
		h.CPU = "unknown CPU"
	}
	return h
}

// procField is the value of the first "key: value" line for key.
func procField(text, key string) string {
	for _, l := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// String is the hardware line of the table and the document.
func (h Hardware) String() string {
	return fmt.Sprintf("%s, %d cores, %.1f GiB memory, %s, %s", h.CPU, h.Cores, h.MemoryGB, h.OS, h.Go)
}
