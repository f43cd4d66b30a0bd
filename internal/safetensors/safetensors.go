// Package safetensors reads and writes the safetensors format
// (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON, then the tensors' raw little-endian
// bytes. The header maps each tensor's name to
//
//	{"dtype": "F32", "shape": [32, 1, 3, 3], "data_offsets": [begin, end]}
//
// (offsets into the data that follows the header) and may hold a
// "__metadata__" object of string values.
//
// The reader treats every file as hostile. It checks the header length
// against the file's size and a cap before reading the header, parses the
// JSON strictly (no duplicate names, known dtypes, shapes whose byte size
// does not overflow and equals the offsets' span), and requires the
// tensors to tile the data exactly, in order, with neither holes nor
// overlaps, as the reference implementation does. Nothing is allocated
// beyond the file's size. (No maintained Go module offered this
// validation and an atomic writer; the format is small enough to own.)
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrFormat is wrapped by every error about a file's content.
var ErrFormat = errors.New("not a valid safetensors file")

// MaxHeader caps the JSON header's length, as the reference implementation
// does (100 MB).
const MaxHeader = 100 << 20

// DType is a tensor's element type, as the header spells it.
type DType string

// The element types this package reads and writes.
const (
	F32 DType = "F32"
	F64 DType = "F64"
	I64 DType = "I64"
	I32 DType = "I32"
	U8  DType = "U8"
)

// Size returns the bytes per element, or 0 for an unknown type.
func (d DType) Size() int {
	switch d {
	case F32, I32:
		return 4
	case F64, I64:
		return 8
	case U8:
		return 1
	}
	return 0
}

// Tensor is one named tensor. Data holds its raw little-endian bytes.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// File is a whole safetensors file: its tensors in data order, and the
// header's metadata.
type File struct {
	Metadata map[string]string
	Tensors  []Tensor
}

// Get returns the tensor called name, or nil.
func (f *File) Get(name string) *Tensor {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i]
		}
	}
	return nil
}

// Float32 returns t's values when it is an F32 tensor.
func (t *Tensor) Float32() ([]float32, error) {
	if t.DType != F32 {
		return nil, fmt.Errorf("%w: tensor %q is %s, want F32", ErrFormat, t.Name, t.DType)
	}
	out := make([]float32, len(t.Data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return out, nil
}

// FromFloat32 returns an F32 tensor holding v with the given shape.
func FromFloat32(name string, shape []int, v []float32) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{Name: name, DType: F32, Shape: append([]int{}, shape...), Data: b}
}

// FromInt64 returns an I64 tensor holding v with the given shape.
func FromInt64(name string, shape []int, v []int64) Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return Tensor{Name: name, DType: I64, Shape: append([]int{}, shape...), Data: b}
}

// Int64 returns t's values when it is an I64 tensor.
func (t *Tensor) Int64() ([]int64, error) {
	if t.DType != I64 {
		return nil, fmt.Errorf("%w: tensor %q is %s, want I64", ErrFormat, t.Name, t.DType)
	}
	out := make([]int64, len(t.Data)/8)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
	}
	return out, nil
}

type entry struct {
	DType   DType    `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// Encode writes f to w: the tensors in f's order, the header padded with
// spaces to a multiple of 8 bytes so that the data is aligned.
func Encode(w io.Writer, f *File) error {
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	put := func(key string, v any) error {
		if hdr.Len() > 1 {
			hdr.WriteByte(',')
		}
		k, _ := json.Marshal(key)
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		hdr.Write(k)
		hdr.WriteByte(':')
		hdr.Write(b)
		return nil
	}
	if len(f.Metadata) > 0 {
		if err := put("__metadata__", f.Metadata); err != nil {
			return err
		}
	}
	var off int64
	seen := map[string]bool{}
	for _, t := range f.Tensors {
		n, ok := byteSize(t.DType, t.Shape)
		switch {
		case t.Name == "" || t.Name == "__metadata__" || seen[t.Name]:
			return fmt.Errorf("safetensors: tensor name %q empty, reserved or repeated", t.Name)
		case !ok || n != int64(len(t.Data)):
			return fmt.Errorf("safetensors: tensor %q: %d bytes for %s%v", t.Name, len(t.Data), t.DType, t.Shape)
		}
		seen[t.Name] = true
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		if err := put(t.Name, entry{DType: t.DType, Shape: shape, Offsets: [2]int64{off, off + n}}); err != nil {
			return err
		}
		off += n
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(hdr.Len()))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(hdr.Bytes()); err != nil {
		return err
	}
	for _, t := range f.Tensors {
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}

// byteSize returns the size of a tensor of dtype d and shape, and false when
// the type is unknown, a dimension negative or the size overflows.
func byteSize(d DType, shape []int) (int64, bool) {
	n := int64(d.Size())
	if n == 0 {
		return 0, false
	}
	for _, s := range shape {
		if s < 0 || (s > 0 && n > math.MaxInt64/int64(s)) {
			return 0, false
		}
		n *= int64(s)
	}
	return n, true
}

// Decode reads a file of size bytes from r. Errors wrap ErrFormat (the
// content is wrong) or the reader's error; they do not name the file.
func Decode(r io.ReaderAt, size int64) (*File, error) {
	if size < 8 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the 8-byte header length", ErrFormat, size)
	}
	var nb [8]byte
	if _, err := r.ReadAt(nb[:], 0); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint64(nb[:])
	switch {
	case n > MaxHeader && printable(nb[:]):
		return nil, fmt.Errorf("%w: it starts with the text %q, where a safetensors file has its header's length", ErrFormat, nb[:])
	case n > MaxHeader:
		return nil, fmt.Errorf("%w: header length %d exceeds the %d-byte limit", ErrFormat, n, MaxHeader)
	case n > uint64(size-8):
		return nil, fmt.Errorf("%w: header length %d exceeds the file's remaining %d bytes", ErrFormat, n, size-8)
	case n < 2:
		return nil, fmt.Errorf("%w: header length %d", ErrFormat, n)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, err
	}
	dataLen := size - 8 - int64(n)
	f, spans, err := parseHeader(hdr, dataLen)
	if err != nil {
		return nil, err
	}
	data := make([]byte, dataLen)
	if dataLen > 0 {
		if _, err := r.ReadAt(data, 8+int64(n)); err != nil {
			return nil, err
		}
	}
	for i := range f.Tensors {
		f.Tensors[i].Data = data[spans[i][0]:spans[i][1]:spans[i][1]]
	}
	return f, nil
}

// parseHeader checks the JSON header against a data section of dataLen
// bytes and returns the tensors (without data) in data order with their
// byte spans.
func parseHeader(hdr []byte, dataLen int64) (*File, [][2]int64, error) {
	if hdr[0] != '{' {
		return nil, nil, fmt.Errorf("%w: the header does not start with '{'", ErrFormat)
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	f := &File{}
	type item struct {
		t    Tensor
		span [2]int64
	}
	var items []item
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
		}
		name, _ := tok.(string)
		if seen[name] {
			return nil, nil, fmt.Errorf("%w: header: %q appears twice", ErrFormat, name)
		}
		seen[name] = true
		if name == "__metadata__" {
			if err := dec.Decode(&f.Metadata); err != nil {
				return nil, nil, fmt.Errorf("%w: header: __metadata__ is not an object of strings: %v", ErrFormat, oneLine(err))
			}
			continue
		}
		var e entry
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("%w: header: %v", ErrFormat, oneLine(err))
		}
		strict := json.NewDecoder(bytes.NewReader(raw))
		strict.DisallowUnknownFields()
		if err := strict.Decode(&e); err != nil || e.Shape == nil {
			return nil, nil, fmt.Errorf("%w: tensor %q: want {dtype, shape, data_offsets}", ErrFormat, clip(name))
		}
		if name == "" {
			return nil, nil, fmt.Errorf("%w: a tensor has an empty name", ErrFormat)
		}
		if e.DType.Size() == 0 {
			return nil, nil, fmt.Errorf("%w: tensor %q: dtype %q not supported (want F32, F64, I64, I32 or U8)", ErrFormat, clip(name), clip(string(e.DType)))
		}
		size, ok := byteSize(e.DType, e.Shape)
		b, end := e.Offsets[0], e.Offsets[1]
		switch {
		case !ok:
			return nil, nil, fmt.Errorf("%w: tensor %q: shape %v is negative or too large", ErrFormat, clip(name), e.Shape)
		case b < 0 || end < b || end > dataLen:
			return nil, nil, fmt.Errorf("%w: tensor %q: offsets [%d, %d] outside the %d data bytes", ErrFormat, clip(name), b, end, dataLen)
		case end-b != size:
			return nil, nil, fmt.Errorf("%w: tensor %q: offsets span %d bytes, %s%v needs %d", ErrFormat, clip(name), end-b, e.DType, e.Shape, size)
		}
		items = append(items, item{t: Tensor{Name: name, DType: e.DType, Shape: e.Shape}, span: e.Offsets})
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if rest := bytes.TrimLeft(hdr[dec.InputOffset():], " "); len(rest) != 0 {
		return nil, nil, fmt.Errorf("%w: header: %d bytes after the JSON object", ErrFormat, len(rest))
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].span[0] < items[j].span[0] })
	var at int64
	spans := make([][2]int64, len(items))
	for i, it := range items {
		if it.span[0] != at {
			what := "overlaps the one before"
			if it.span[0] > at {
				what = "leaves a hole before it"
			}
			return nil, nil, fmt.Errorf("%w: tensor %q: offset %d %s (which ends at %d)", ErrFormat, clip(it.t.Name), it.span[0], what, at)
		}
		at = it.span[1]
		f.Tensors = append(f.Tensors, it.t)
		spans[i] = it.span
	}
	if at != dataLen {
		return nil, nil, fmt.Errorf("%w: the tensors end at byte %d of %d data bytes", ErrFormat, at, dataLen)
	}
	return f, spans, nil
}

// clip shortens a string from a hostile header for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:61] + "..."
	}
	return s
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

// ReadFile reads and validates the file at path. Errors are one line and
// name the file.
func ReadFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError names the file
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w: not a regular file", path, ErrFormat)
	}
	f, err := Decode(fh, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// WriteFile writes f to path atomically: into a temporary file in the same
// folder, synced to disk, then renamed over path (and the folder synced), so
// that a crash leaves either the old file or the new one, never a torn one.
func WriteFile(path string, f *File) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = Encode(tmp, f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err = tmp.Chmod(0o644); err != nil { // CreateTemp's 0600 is for the temporary name only
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil { // best effort: not every file system syncs folders
		d.Sync()
		d.Close()
	}
	return nil
}

// printable reports whether b is printable ASCII text (or whitespace):
// the start of a text file, not of a header length.
func printable(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 || c > 0x7e) && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}
