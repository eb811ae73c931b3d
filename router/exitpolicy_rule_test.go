package router

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseRule(t *testing.T) {
	all := []PortRange{{1, 65535}}
	tests := []struct {
		in   string
		want Rule
		str  string
	}{
		{"accept 0.0.0.0/0:80,443", Rule{Accept, netip.MustParsePrefix("0.0.0.0/0"), []PortRange{{80, 80}, {443, 443}}}, "accept 0.0.0.0/0:80,443"},
		{"reject *:25", Rule{Reject, netip.Prefix{}, []PortRange{{25, 25}}}, "reject *:25"},
		{"accept [2001:db8::]/32:1-65535", Rule{Accept, netip.MustParsePrefix("2001:db8::/32"), all}, "accept [2001:db8::]/32:*"},
		{"  ACCEPT   *:*  ", Rule{Accept, netip.Prefix{}, all}, "accept *:*"},
		{"accept *4:*", Rule{Accept, netip.MustParsePrefix("0.0.0.0/0"), all}, "accept 0.0.0.0/0:*"},
		{"accept *6:443", Rule{Accept, netip.MustParsePrefix("::/0"), []PortRange{{443, 443}}}, "accept [::]/0:443"},
		{"reject 10.1.2.3/8:*", Rule{Reject, netip.MustParsePrefix("10.0.0.0/8"), all}, "reject 10.0.0.0/8:*"},
		{"reject 1.2.3.4:22", Rule{Reject, netip.MustParsePrefix("1.2.3.4/32"), []PortRange{{22, 22}}}, "reject 1.2.3.4:22"},
		{"reject [::1]:22", Rule{Reject, netip.MustParsePrefix("::1/128"), []PortRange{{22, 22}}}, "reject [::1]:22"},
		{"accept *:443,80,81-85,84", Rule{Accept, netip.Prefix{}, []PortRange{{80, 85}, {443, 443}}}, "accept *:80-85,443"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRule(tt.in)
			if err != nil {
				t.Fatalf("ParseRule: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseRule = %+v, want %+v", got, tt.want)
			}
			if s := got.String(); s != tt.str {
				t.Fatalf("String() = %q, want %q", s, tt.str)
			}
		})
	}
}

func TestParseRuleErrors(t *testing.T) {
	bad := []string{
		"", "accept", "allow *:*", "accept *", "accept *:", "accept *:0", "accept *:65536",
		"accept *:10-5", "accept *:-5", "accept *:5-", "accept *:+5", "accept *: 5",
		"accept 1.2.3.4/33:*", "accept 1.2.3.4/-1:*", "accept 1.2.3/8:*", "accept ::1:*",
		"accept [1.2.3.4]:*", "accept [::ffff:1.2.3.4]:*", "accept [fe80::1%eth0]:*",
		"accept [::1]/129:*", "accept *:a", "accept host.example:80", "accept **:*",
		"accept *:" + strings.Repeat("1,", maxRulePorts) + "1",
		"accept *:" + strings.Repeat("1", maxRuleLen),
	}
	for _, s := range bad {
		if r, err := ParseRule(s); err == nil {
			t.Errorf("ParseRule(%q) = %v, want error", s, r)
		}
	}
}

func TestParseExitPolicyReportsLine(t *testing.T) {
	_, err := ParseExitPolicy([]string{"accept *:80", "nonsense"})
	if err == nil || !strings.Contains(err.Error(), "rule 2") {
		t.Fatalf("err = %v, want mention of rule 2", err)
	}
}

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{
		"accept 0.0.0.0/0:80,443", "reject *:25", "accept [2001:db8::]/32:1-65535",
		"accept *:*", "reject *4:1-1024", "accept *6:443", "reject [::1]:22", "accept 10.0.0.0/8:80-90,100",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			return
		}
		if len(r.Ports) == 0 {
			t.Fatalf("%q: no ports", s)
		}
		again, err := ParseRule(r.String())
		if err != nil {
			t.Fatalf("%q: String() %q does not parse: %v", s, r.String(), err)
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("%q: round trip %+v != %+v", s, r, again)
		}
		_ = NewExitPolicy([]Rule{r}).Summary()
	})
}
