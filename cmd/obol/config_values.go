package main

import (
	"strings"

	"github.com/obolnet/obol/router"
)

// rulesValue is a list of exit policy rules, one per occurrence of the
// flag (a rule's ports contain commas, so rules are not comma-separated).
type rulesValue struct{ rules *[]string }

func (v rulesValue) String() string {
	if v.rules == nil {
		return ""
	}
	return strings.Join(*v.rules, "; ")
}

func (v rulesValue) Set(s string) error {
	r, err := router.ParseRule(s)
	if err != nil {
		return err
	}
	_ = r
	*v.rules = append(*v.rules, strings.TrimSpace(s))
	return nil
}
