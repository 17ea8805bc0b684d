// Package cdp speaks the Chrome DevTools Protocol as Chromium carries it on
// --remote-debugging-pipe: JSON messages, each ended by a NUL byte, in one
// direction per pipe. It frames messages and makes the one call the
// frontend issues itself, Browser.getVersion, to learn that a browser is
// ready.
package cdp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrTruncated reports that the pipe ended in the middle of a message.
var ErrTruncated = errors.New("pipe ended inside a message")

const (
	// initialBufSize fits a pipe's default capacity, so that one read
	// drains a full pipe.
	initialBufSize = 64 << 10

	// keepBufSize bounds the buffer a Writer keeps between messages.
	keepBufSize = 1 << 20
)

// Reader splits a stream into NUL-terminated messages. Messages have no
// size limit; the buffer grows to hold the largest one seen.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	r     io.Reader
	buf   []byte // buf[start:end] holds bytes read but not yet returned
	start int
	end   int
	scan  int // buf[start:scan] is known to hold no NUL
}

// NewReader returns a Reader that reads from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r, buf: make([]byte, initialBufSize)}
}

// ReadMessage returns the next message without its NUL. The slice points
// into the Reader's buffer and is valid until the next call. At the end of
// the stream it returns io.EOF, or ErrTruncated if a message was cut short.
func (r *Reader) ReadMessage() ([]byte, error) {
	// A large message (a full-page screenshot) grew the buffer; give the
	// memory back once it has been consumed rather than keep it for the
	// rest of the session.
	if pending := r.end - r.start; len(r.buf) > keepBufSize && pending <= initialBufSize/2 {
		buf := make([]byte, initialBufSize)
		copy(buf, r.buf[r.start:r.end])
		r.buf = buf
		r.scan -= r.start
		r.start, r.end = 0, pending
	}
	for {
		if i := bytes.IndexByte(r.buf[r.scan:r.end], 0); i >= 0 {
			msg := r.buf[r.start : r.scan+i]
			r.start = r.scan + i + 1
			r.scan = r.start
			return msg, nil
		}
		r.scan = r.end

		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// fill reads more bytes, first making room by moving the unfinished
// message to the front or by growing the buffer.
func (r *Reader) fill() error {
	if r.start == r.end {
		r.start, r.end, r.scan = 0, 0, 0
	}
	if r.end == len(r.buf) {
		r.makeRoom()
	}

	n, err := r.r.Read(r.buf[r.end:])
	r.end += n
	if n > 0 {
		return nil
	}
	if err == io.EOF && r.start != r.end {
		return fmt.Errorf("read message: %w (%d bytes pending)", ErrTruncated, r.end-r.start)
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

func (r *Reader) makeRoom() {
	pending := r.end - r.start
	buf := r.buf
	// Grow when the unfinished message fills more than half the buffer;
	// otherwise moving it to the front is enough.
	if pending > len(r.buf)/2 {
		buf = make([]byte, 2*len(r.buf))
	}
	copy(buf, r.buf[r.start:r.end])
	r.buf = buf
	r.scan -= r.start
	r.start, r.end = 0, pending
}

// Writer writes NUL-terminated messages. Each message goes out in one
// write call, so messages from concurrent callers never interleave.
type Writer struct {
	w io.Writer

	mu  sync.Mutex // guards buf and serializes writes to w
	buf []byte
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w}
}

// WriteMessage writes msg followed by a NUL. msg must not contain a NUL.
func (w *Writer) WriteMessage(msg []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()

	w.buf = append(append(w.buf[:0], msg...), 0)
	return w.flushLocked()
}

// CopyMessage reads one whole message from r until io.EOF and writes it
// followed by a NUL. Reading straight into the Writer's buffer saves the
// copy that WriteMessage would make.
func (w *Writer) CopyMessage(r io.Reader) error {
	w.mu.Lock()
	defer w.mu.Unlock()

	buf := w.buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			w.buf = buf
			return fmt.Errorf("read message: %w", err)
		}
	}

	w.buf = append(buf, 0)
	return w.flushLocked()
}

func (w *Writer) flushLocked() error {
	_, err := w.w.Write(w.buf)
	if cap(w.buf) > keepBufSize {
		w.buf = nil
	}
	if err != nil {
		return fmt.Errorf("write message: %w", err)
	}
	return nil
}
