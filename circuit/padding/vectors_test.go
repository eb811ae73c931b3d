package padding

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "regenerate specs/vectors/padding.json")

const vectorPath = "../../specs/vectors/padding.json"

type vectorFile struct {
	Description string             `json:"description"`
	Negotiate   []negotiateVector  `json:"padding_negotiate"`
	Negotiated  []negotiatedVector `json:"padding_negotiated"`
	Invalid     []invalidVector    `json:"invalid_padding_negotiate"`
}

type negotiateVector struct {
	Name    string    `json:"name"`
	Message Negotiate `json:"message"`
	Body    string    `json:"body_hex"`
}

type negotiatedVector struct {
	Name    string     `json:"name"`
	Message Negotiated `json:"message"`
	Body    string     `json:"body_hex"`
}

type invalidVector struct {
	Why  string `json:"why"`
	Body string `json:"body_hex"`
}

func vectors(t *testing.T) vectorFile {
	front := Program{Cells: 117, Schedule: Offsets, Delays: []Bin{
		{Edge: 1517 * time.Millisecond, Weight: 1}, {Edge: 2257 * time.Millisecond, Weight: 1},
		{Edge: 2875 * time.Millisecond, Weight: 1}, {Edge: 3449 * time.Millisecond, Weight: 1},
		{Edge: 4025 * time.Millisecond, Weight: 1}, {Edge: 4651 * time.Millisecond, Weight: 1},
		{Edge: 5430 * time.Millisecond, Weight: 1}, {Edge: 9016 * time.Millisecond, Weight: 1},
	}}
	v := vectorFile{Description: "Circuit padding negotiation bodies (specs/12-padding.md); edges in nanoseconds in message, milliseconds on the wire."}
	for _, c := range []struct {
		name string
		n    Negotiate
	}{
		{"START hs-setup, slot 0", Negotiate{Command: Start, Machine: MachineHSSetup, Slot: 0, Program: HSSetup.Relay}},
		{"START a FRONT relay half (w = 2.96 s), slot 1", Negotiate{Command: Start, Machine: MachineFront, Slot: 1, Program: front}},
		{"START stop on either direction", Negotiate{Command: Start, Machine: 9, Program: Program{Cells: 3, StopOn: StopOnForward | StopOnBackward, Delays: []Bin{{Edge: 0, Weight: 1}, {Edge: 250 * time.Millisecond, Weight: 3}}}}},
		{"STOP slot 1", Negotiate{Command: Stop, Machine: MachineFront, Slot: 1}},
	} {
		b, err := c.n.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		v.Negotiate = append(v.Negotiate, negotiateVector{c.name, c.n, hex.EncodeToString(b)})
	}
	for _, c := range []struct {
		name string
		n    Negotiated
	}{
		{"started", Negotiated{Command: Start, Machine: MachineHSSetup, Slot: 0, Response: OK}},
		{"refused (slot busy)", Negotiated{Command: Start, Machine: 9, Slot: 1, Response: Refused}},
	} {
		b, _ := c.n.MarshalBinary()
		v.Negotiated = append(v.Negotiated, negotiatedVector{c.name, c.n, hex.EncodeToString(b)})
	}
	base := "000100000005000001000a01" // START, 5 cells, one bin of 10 ms
	mut := func(why string, at int, hexb string) invalidVector {
		b, _ := hex.DecodeString(base)
		patch, _ := hex.DecodeString(hexb)
		copy(b[at:], patch)
		return invalidVector{why, hex.EncodeToString(b)}
	}
	v.Invalid = []invalidVector{
		mut("version 1", 0, "01"),
		mut("slot 2", 3, "02"),
		mut("zero cells", 4, "0000"),
		mut("1001 cells", 4, "03e9"),
		mut("unknown stop event", 6, "04"),
		mut("unknown schedule", 7, "02"),
		{"bins not increasing", base[:16] + "02" + "000a01" + "000a01"},
		mut("all weights zero", 11, "00"),
		mut("edge over 60 s", 9, "ea61"),
		{"truncated bin", base[:len(base)-2]},
		{"trailing byte", base + "00"},
		{"STOP with a program", "0002000000"},
	}
	return v
}

func TestVectors(t *testing.T) {
	want := vectors(t)
	if *update {
		b, _ := json.MarshalIndent(want, "", "  ")
		if err := os.WriteFile(vectorPath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(vectorPath)
	if err != nil {
		t.Fatal(err)
	}
	var got vectorFile
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	for _, v := range got.Negotiate {
		body, _ := hex.DecodeString(v.Body)
		n, err := ParseNegotiate(body)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		b, _ := n.MarshalBinary()
		w, _ := v.Message.MarshalBinary()
		if !bytes.Equal(b, body) || !bytes.Equal(w, body) {
			t.Fatalf("%s: encodings differ", v.Name)
		}
	}
	for _, v := range got.Negotiated {
		body, _ := hex.DecodeString(v.Body)
		n, err := ParseNegotiated(body)
		if err != nil || n != v.Message {
			t.Fatalf("%s: %+v %v", v.Name, n, err)
		}
	}
	for _, v := range got.Invalid {
		body, _ := hex.DecodeString(v.Body)
		if _, err := ParseNegotiate(body); err == nil {
			t.Fatalf("invalid vector %q accepted", v.Why)
		}
	}
	if len(got.Negotiate) != len(want.Negotiate) || len(got.Invalid) != len(want.Invalid) {
		t.Fatal("the vector file is stale: run with -update")
	}
}

// The base of the invalid vectors is valid: each fails for its mutation.
func TestInvalidVectorBase(t *testing.T) {
	b, _ := hex.DecodeString("000100000005000001000a01")
	if _, err := ParseNegotiate(b); err != nil {
		t.Fatal(err)
	}
}
