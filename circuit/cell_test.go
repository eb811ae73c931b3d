package circuit

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseCell(t *testing.T) {
	good := make([]byte, CellSize)
	copy(good, []byte{0, 0, 1, 2, byte(CmdRelay)})
	unknown := append([]byte(nil), good...)
	unknown[4] = 0x30
	reserved := append([]byte(nil), good...)
	reserved[4] = 0x41
	for _, tc := range []struct {
		name string
		in   []byte
		err  error
	}{
		{"ok", good, nil},
		{"reserved payment command", reserved, nil},
		{"truncated", good[:CellSize-1], ErrCellTruncated},
		{"empty", nil, ErrCellTruncated},
		{"oversized", append(append([]byte(nil), good...), 0), ErrCellOversized},
		{"unknown command", unknown, ErrUnknownCommand},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCell(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if c.CircID != 0x102 || len(c.Payload) != PayloadLen {
				t.Fatalf("cell %d %d", c.CircID, len(c.Payload))
			}
			out, err := c.MarshalBinary()
			if err != nil || !bytes.Equal(out, tc.in) {
				t.Fatalf("round trip: %v", err)
			}
		})
	}
}

func TestMarshalCell(t *testing.T) {
	out, err := Cell{CircID: 9, Command: CmdPadding, Payload: []byte{1}}.MarshalBinary()
	if err != nil || len(out) != CellSize || out[5] != 1 || !allZero(out[6:]) {
		t.Fatalf("short payload not padded: %v", err)
	}
	if _, err := (Cell{Payload: make([]byte, PayloadLen+1)}).MarshalBinary(); !errors.Is(err, ErrCellOversized) {
		t.Fatalf("oversized: %v", err)
	}
	if _, err := (Cell{Command: 0x31}).MarshalBinary(); !errors.Is(err, ErrUnknownCommand) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestDestroy(t *testing.T) {
	for r := DestroyNone; r <= destroyReasonMax; r++ {
		got, err := ParseDestroy(DestroyPayload(r))
		if err != nil || got != r {
			t.Fatalf("%v: %v %v", r, got, err)
		}
	}
	bad := DestroyPayload(destroyReasonMax + 1)
	if _, err := ParseDestroy(bad); !errors.Is(err, ErrUnknownDestroyCode) {
		t.Fatalf("unknown reason: %v", err)
	}
	pad := DestroyPayload(DestroyTimeout)
	pad[9] = 1
	if _, err := ParseDestroy(pad); !errors.Is(err, ErrBadPadding) {
		t.Fatalf("padding: %v", err)
	}
	if _, err := ParseDestroy(pad[:3]); !errors.Is(err, ErrCellTruncated) {
		t.Fatalf("short: %v", err)
	}
}

func TestRelayPlaintext(t *testing.T) {
	for _, tc := range []struct {
		name string
		rc   RelayCell
		err  error
	}{
		{"data", RelayCell{Command: RelayData, StreamID: 3, Body: []byte("hi")}, nil},
		{"full", RelayCell{Command: RelayData, StreamID: 3, Body: make([]byte, MaxRelayBody)}, nil},
		{"circuit sendme", RelayCell{Command: RelaySendme}, nil},
		{"stream sendme", RelayCell{Command: RelaySendme, StreamID: 1}, nil},
		{"payment", RelayCell{Command: RelayPayBalanceUpdate, Body: []byte{1}}, nil},
		{"hidden service", RelayCell{Command: RelayIntroduce1}, nil},
		{"too long", RelayCell{Command: RelayData, StreamID: 3, Body: make([]byte, MaxRelayBody+1)}, ErrRelayLength},
		{"data on stream 0", RelayCell{Command: RelayData}, ErrStreamID},
		{"extend on a stream", RelayCell{Command: RelayExtend, StreamID: 2}, ErrStreamID},
		{"payment on a stream", RelayCell{Command: RelayPayAck, StreamID: 2}, ErrStreamID},
		{"unknown", RelayCell{Command: 0x30}, ErrUnknownRelayCommand},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := EncodeRelayPlaintext(tc.rc)
			if !errors.Is(err, tc.err) {
				t.Fatalf("encode: %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			got, err := DecodeRelayPlaintext(p)
			if err != nil || got.Command != tc.rc.Command || got.StreamID != tc.rc.StreamID || !bytes.Equal(got.Body, tc.rc.Body) {
				t.Fatalf("decode: %+v %v", got, err)
			}
		})
	}
}

func TestDecodeRelayStrict(t *testing.T) {
	p, _ := EncodeRelayPlaintext(RelayCell{Command: RelayData, StreamID: 1, Body: []byte("abc")})
	pad := append([]byte(nil), p...)
	pad[RelayHeaderLen+3] = 1
	long := append([]byte(nil), p...)
	long[lengthOff], long[lengthOff+1] = 0xff, 0xff
	unk := append([]byte(nil), p...)
	unk[relayCmdOff] = 0x7f
	for _, tc := range []struct {
		name string
		in   []byte
		err  error
	}{
		{"padding", pad, ErrBadPadding},
		{"length", long, ErrRelayLength},
		{"unknown", unk, ErrUnknownRelayCommand},
		{"truncated", p[:100], ErrCellTruncated},
		{"oversized", append(p, 0), ErrCellOversized},
	} {
		if _, err := DecodeRelayPlaintext(tc.in); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
}
