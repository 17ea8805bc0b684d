package cdp

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// fuzzChunks returns data in reads whose sizes cycle through sizes.
type fuzzChunks struct {
	data  []byte
	sizes []byte
	i     int
}

func (c *fuzzChunks) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(c.sizes) > 0 {
		n = int(c.sizes[c.i%len(c.sizes)]) + 1
		c.i++
	}
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// FuzzReader feeds the pipe framing, which reads what the browser writes,
// with arbitrary bytes cut into arbitrary reads, and checks that it returns
// exactly the NUL-separated messages and then the right end.
func FuzzReader(f *testing.F) {
	f.Add([]byte("{\"id\":1}\x00{\"id\":2}\x00"), []byte{0})
	f.Add([]byte("\x00\x00\x00"), []byte{3, 1})
	f.Add([]byte("unterminated"), []byte{})
	f.Add(bytes.Repeat([]byte("x"), 20000), []byte{255, 17})

	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		want := bytes.Split(data, []byte{0})
		rest := want[len(want)-1]
		want = want[:len(want)-1]

		r := NewReader(&fuzzChunks{data: data, sizes: sizes})
		for i, w := range want {
			got, err := r.ReadMessage()
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if !bytes.Equal(got, w) {
				t.Fatalf("message %d: got %q, want %q", i, got, w)
			}
		}
		_, err := r.ReadMessage()
		switch {
		case len(rest) == 0 && err != io.EOF:
			t.Fatalf("at the end: got %v, want io.EOF", err)
		case len(rest) > 0 && !errors.Is(err, ErrTruncated):
			t.Fatalf("after %d unterminated bytes: got %v, want ErrTruncated", len(rest), err)
		}
	})
}
