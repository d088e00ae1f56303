package history

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzReadCSV checks that ReadCSV never panics, and that whatever it accepts survives a
// write/read round trip unchanged.
func FuzzReadCSV(f *testing.F) {
	var buf bytes.Buffer
	if err := WriteCSV(&buf, sample()...); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.String())
	f.Add("name,optimizer,seed,step,time,evals,loss\n")
	f.Add("name,optimizer,seed,step,time,evals,loss,lr\na,adam,1,1,0,1,NaN,\na,adam,1,2,0.5,2,+Inf,1e-3\n")
	f.Add("name,optimizer,seed,step,time,evals,loss\n\"a\nb\",x,1,1,0,0,1\n")
	f.Add("name,optimizer,seed,step,time,evals,loss\na,adam,1,0,0,1,2\n")
	f.Add("a,b,c\n1,2\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		hs, err := ReadCSV(strings.NewReader(in))
		if err != nil {
			return
		}
		var out bytes.Buffer
		// Histories ReadCSV returns are valid, non-empty and have distinct keys.
		if err := WriteCSV(&out, hs...); err != nil {
			t.Fatalf("ReadCSV accepted input that WriteCSV rejects: %v\ninput: %q", err, in)
		}
		again, err := ReadCSV(&out)
		if err != nil {
			t.Fatalf("re-reading written CSV: %v\n%s", err, out.String())
		}
		equal(t, again, hs)
	})
}

// FuzzReadJSON checks that ReadJSON never panics, and that whatever it accepts survives a
// write/read round trip unchanged.
func FuzzReadJSON(f *testing.F) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, append(sample(), New("empty", "x", 0))...); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.String())
	f.Add(`{"version":1,"runs":[]}`)
	f.Add(`{"version":1,"runs":[{"name":"a","optimizer":"b","seed":1,"records":[{"step":1,"time":0,"evals":1,"loss":"NaN","metrics":{"lr":"-Inf"}}]}]}`)
	f.Add(`{"version":1,"runs":[{"records":[{"step":-1,"time":0,"evals":1,"loss":1}]}]}`)
	f.Add(`{"version":1,"runs":[null]}`)
	f.Add(`[1,2,3]`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, in string) {
		hs, err := ReadJSON(strings.NewReader(in))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteJSON(&out, hs...); err != nil {
			t.Fatalf("ReadJSON accepted input that WriteJSON rejects: %v\ninput: %q", err, in)
		}
		again, err := ReadJSON(&out)
		if err != nil {
			t.Fatalf("re-reading written JSON: %v\n%s", err, out.String())
		}
		equal(t, again, hs)
	})
}
