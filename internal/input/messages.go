package input

import (
	"bytes"
	"io"

	"github.com/ccfpush/ccfpush/internal/finding"
)

// Messages reads many small inputs one after another — the values of Kafka
// messages — with one Spec, reusing one decoder's buffers, so that a
// message costs no buffer of its own. A value is read whole (messages are
// at most a few MB) and may be a scanner report, a JSON array of records,
// NDJSON (objects on a line each, or pretty-printed over several).
type Messages struct {
	o   Options
	dec *finding.Decoder
	r   Reader
}

// NewMessages returns a reader of messages; its errors are Spec.Validate's.
func NewMessages(o Options) (*Messages, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Messages{o: o, dec: new(finding.Decoder)}, nil
}

// Read returns the records of one message value, named name. The Reader
// it returns is valid until the next call.
func (m *Messages) Read(r io.Reader, name string) *Reader {
	data, err := io.ReadAll(r)
	if err != nil {
		return failed(err)
	}
	fo := m.o.options(m.o)
	fo.Source = name
	if m.o.Format() == finding.FormatAuto && m.o.RecordsPath == "" {
		// Decided here, once, on the whole value (the note that auto
		// recognised a report would come once per message).
		if fo.Format = finding.Detect(data); !fo.Format.IsReport() {
			fo.Format = recordsFormat(data)
		}
	}
	if err := m.dec.Reset(bytes.NewReader(data), fo); err != nil {
		return failed(err) // checked by NewMessages
	}
	m.r = Reader{dec: m.dec, name: name, keep: m.o.KeepDeadLetters}
	return &m.r
}

// recordsFormat is the format of plain records as package record's auto
// detection decides it: an array, or objects one after another; auto when
// the value starts with something else (the decoder says what is wrong).
func recordsFormat(data []byte) finding.Format {
	v := bytes.TrimLeft(bytes.TrimPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case len(v) > 0 && v[0] == '[':
		return finding.FormatJSON
	case len(v) > 0 && v[0] == '{':
		return finding.FormatNDJSON
	}
	return finding.FormatAuto
}

// failed returns a Reader whose Next fails with err.
func failed(err error) *Reader {
	d, _ := finding.NewDecoder(errReader{err}, finding.Options{Format: finding.FormatNDJSON})
	return &Reader{dec: d}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
