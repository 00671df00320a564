package ledger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
)

// File appends the records to a file (LEDGER=file), one JSON object a line: the body a broker
// record would have. The file is opened once per process and shared by every session; the core
// never truncates it, readers keep their own byte offset.
//
// Durability: each record is one write(2), made before the task is settled; there is no fsync.
// Once write returns the record is in the kernel's page cache, so it survives a SIGKILL or a
// crash of the core. A host crash or power loss can lose the records the kernel had not written
// back yet (the last seconds): their tasks would then look lost, a false alarm, never a loss
// the ledger hides.
type File struct {
	path string
	host string

	mu sync.Mutex
	f  *os.File
	// unterminated: the file does not end with a newline (a short write, or a torn tail left
	// by a host crash); the next record starts with one, so that it is a line of its own.
	unterminated bool
}

// OpenFile opens (creating it, mode 0640) the ledger file at path for appending, naming host as
// the core host of the records.
func OpenFile(path, host string) (*File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("ledger: open file: %w", err)
	}
	terminated, err := endsWithNewline(path)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("ledger: read file: %w", err)
	}
	return &File{path: path, host: host, f: f, unterminated: !terminated}, nil
}

// Record appends o with the core host filled in, as one line in one write(2) call. An error
// means the whole line may not be in the file: the caller must not settle the task.
func (l *File) Record(_ context.Context, o Outcome) error {
	body, err := encode(o, l.host)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	line := make([]byte, 0, len(body)+2)
	if l.unterminated {
		line = append(line, '\n')
	}
	line = append(append(line, body...), '\n')
	n, err := l.write(line)
	if n == len(line) {
		l.unterminated = false
		return nil
	}
	if n > 0 {
		l.unterminated = true
	}
	if err == nil {
		err = io.ErrShortWrite
	}
	return fmt.Errorf("ledger: write %s (%d of %d bytes): %w", l.path, n, len(line), err)
}

// write is a single write(2) (retried only when a signal interrupted it before it wrote
// anything): os.File.Write would write the rest of a short write in a second call.
func (l *File) write(b []byte) (n int, err error) {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	if cerr := rc.Write(func(fd uintptr) bool {
		for {
			n, err = syscall.Write(int(fd), b)
			if !errors.Is(err, syscall.EINTR) {
				return true
			}
		}
	}); cerr != nil {
		return 0, cerr
	}
	return max(n, 0), err
}

// Close closes the file; a Record after it fails.
func (l *File) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.f.Close()
}

// endsWithNewline tells whether the file at path is empty or ends with a newline; anything but
// a regular file counts as terminated.
func endsWithNewline(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	if !st.Mode().IsRegular() || st.Size() == 0 {
		return true, nil
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, st.Size()-1); err != nil {
		return false, err
	}
	return last[0] == '\n', nil
}
