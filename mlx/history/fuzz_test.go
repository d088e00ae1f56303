package history

import (
	"bytes"
	"io"
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
		// Histories ReadCSV returns are valid, non-empty and have distinct keys: WriteCSV takes them.
		roundTrip(t, "CSV", in, ReadCSV, WriteCSV)
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
		roundTrip(t, "JSON", in, ReadJSON, WriteJSON)
	})
}

// roundTrip reads in with read; if it is accepted, the histories must be written by write
// and read back unchanged.
func roundTrip(t *testing.T, format, in string, read func(io.Reader) ([]*History, error), write func(io.Writer, ...*History) error) {
	hs, err := read(strings.NewReader(in))
	if err != nil {
		return
	}
	var out bytes.Buffer
	if err := write(&out, hs...); err != nil {
		t.Fatalf("Read%s accepted input that Write%s rejects: %v\ninput: %q", format, format, err, in)
	}
	again, err := read(&out)
	if err != nil {
		t.Fatalf("re-reading written %s: %v\n%s", format, err, out.String())
	}
	equal(t, again, hs)
}
