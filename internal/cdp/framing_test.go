package cdp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// chunkReader returns its chunks one Read at a time, then io.EOF.
type chunkReader struct {
	chunks [][]byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

func chunks(parts ...string) *chunkReader {
	c := &chunkReader{}
	for _, p := range parts {
		c.chunks = append(c.chunks, []byte(p))
	}
	return c
}

func TestReader(t *testing.T) {
	big := strings.Repeat("x", 10<<20)

	tests := []struct {
		name    string
		in      io.Reader
		want    []string
		wantErr error
	}{
		{name: "empty stream", in: chunks(), wantErr: io.EOF},
		{name: "one message", in: chunks("{\"id\":1}\x00"), want: []string{`{"id":1}`}, wantErr: io.EOF},
		{
			name:    "split across reads",
			in:      chunks(`{"id"`, `:1,"res`, "ult\":{}}\x00"),
			want:    []string{`{"id":1,"result":{}}`},
			wantErr: io.EOF,
		},
		{
			name:    "several in one read",
			in:      chunks("a\x00b\x00c\x00"),
			want:    []string{"a", "b", "c"},
			wantErr: io.EOF,
		},
		{
			name:    "NUL at the start of a read",
			in:      chunks("abc", "\x00def", "\x00"),
			want:    []string{"abc", "def"},
			wantErr: io.EOF,
		},
		{
			name:    "10 MB message in small reads",
			in:      &chunkReader{chunks: splitEvery("a\x00"+big+"\x00b\x00", 65536)},
			want:    []string{"a", big, "b"},
			wantErr: io.EOF,
		},
		{
			name:    "10 MB message in one read",
			in:      chunks(big + "\x00"),
			want:    []string{big},
			wantErr: io.EOF,
		},
		{
			name:    "no NUL at EOF",
			in:      chunks("a\x00partial"),
			want:    []string{"a"},
			wantErr: ErrTruncated,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.in)
			var got []string
			var err error
			for {
				var msg []byte
				msg, err = r.ReadMessage()
				if err != nil {
					break
				}
				got = append(got, string(msg))
			}

			if !errors.Is(err, tt.wantErr) {
				t.Errorf("got error %v, want %v", err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d messages, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("message %d: got %.40q (%d bytes), want %.40q (%d bytes)",
						i, got[i], len(got[i]), tt.want[i], len(tt.want[i]))
				}
			}
		})
	}
}

func splitEvery(s string, n int) [][]byte {
	var out [][]byte
	for len(s) > n {
		out = append(out, []byte(s[:n]))
		s = s[n:]
	}
	return append(out, []byte(s))
}

// countingWriter records each Write call.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

func TestWriter(t *testing.T) {
	big := strings.Repeat("y", 3<<20)

	tests := []struct {
		name string
		msgs []string
		copy bool
	}{
		{name: "one message", msgs: []string{`{"id":1}`}},
		{name: "several messages", msgs: []string{"a", "bc", ""}},
		{name: "large message", msgs: []string{big, "after"}},
		{name: "copy one message", msgs: []string{`{"id":2}`}, copy: true},
		{name: "copy large message", msgs: []string{big, "after"}, copy: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out countingWriter
			w := NewWriter(&out)
			var want string
			for _, m := range tt.msgs {
				var err error
				if tt.copy {
					err = w.CopyMessage(strings.NewReader(m))
				} else {
					err = w.WriteMessage([]byte(m))
				}
				if err != nil {
					t.Fatalf("write %.20q: %v", m, err)
				}
				want += m + "\x00"
			}

			if got := out.String(); got != want {
				t.Errorf("got %.40q (%d bytes), want %.40q (%d bytes)", got, len(got), want, len(want))
			}
			if out.writes != len(tt.msgs) {
				t.Errorf("got %d writes, want one per message (%d)", out.writes, len(tt.msgs))
			}
		})
	}
}

// TestReaderShrinks checks that the buffer a large message grew is given
// back once the message has been consumed.
func TestReaderShrinks(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 4*keepBufSize)
	stream := append(append(big, 0), []byte("{}\x00")...)
	r := NewReader(bytes.NewReader(stream))

	if msg, err := r.ReadMessage(); err != nil || len(msg) != len(big) {
		t.Fatalf("big message: got %d bytes, %v; want %d", len(msg), err, len(big))
	}
	if msg, err := r.ReadMessage(); err != nil || string(msg) != "{}" {
		t.Fatalf("next message: got %q, %v; want {}", msg, err)
	}
	if got := len(r.buf); got > keepBufSize {
		t.Fatalf("buffer after the big message: %d bytes, want at most %d", got, keepBufSize)
	}
}
