package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// logFlags are the logging flags every command takes.
type logFlags struct {
	format string
	level  slog.Level
}

func (l *logFlags) register(fs *flag.FlagSet, defaultLevel slog.Level) {
	l.format = "text"
	l.level = defaultLevel
	fs.Var(choiceValue{&l.format, []string{"text", "json"}}, "log-format", "log `format`: text or json")
	fs.Var(levelValue{&l.level}, "log-level", "log `level`: debug, info, warn or error")
}

// logger builds the process's logger, writing to w (stderr).
func (l *logFlags) logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.level}
	if l.format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// levelValue is a flag.Value for a slog level by name.
type levelValue struct{ l *slog.Level }

func (v levelValue) String() string {
	if v.l == nil {
		return ""
	}
	return strings.ToLower(v.l.String())
}

func (v levelValue) Set(s string) error {
	switch s {
	case "debug", "info", "warn", "error":
		return v.l.UnmarshalText([]byte(s))
	}
	return fmt.Errorf("unknown level; want debug, info, warn or error")
}
