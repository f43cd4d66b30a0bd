package vat

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Errors that describe a broken IDX file. They come wrapped with the file's
// path; test for them with errors.Is.
var (
	ErrMissingFile   = errors.New("missing file")
	ErrNotGzip       = errors.New("corrupt gzip data")
	ErrBadMagic      = errors.New("wrong magic number")
	ErrBadHeader     = errors.New("impossible IDX header")
	ErrTruncated     = errors.New("truncated file")
	ErrTrailingData  = errors.New("data after the end")
	ErrCountMismatch = errors.New("image and label counts differ")
	ErrBadLabel      = errors.New("label outside 0-9")
)

// LoadIDX reads an IDX image file (magic 0x00000803: unsigned bytes, rank
// 3) and its IDX label file (magic 0x00000801: unsigned bytes, rank 1),
// gzip-compressed or not. A path ending in .gz that does not exist is also
// looked for without the suffix. Pixels are converted to float32 as they
// are decompressed, so loading needs little memory beyond the dataset
// itself.
//
// The files are not trusted: the header must have the IDX type and rank,
// images of at most 16,384 pixels a side, and sizes the file can hold (an
// uncompressed file exactly; a gzip stream at most 1,032 times its size,
// deflate's limit), all checked before anything is allocated; memory then
// grows only with the data actually read. Every problem is an error that
// names the file.
func LoadIDX(imagesPath, labelsPath string) (*Dataset, error) {
	return loadIDX(imagesPath, labelsPath, idxLimits{})
}

// idxLimits is the image geometry a caller expects (0: any, up to
// maxIDXSide).
type idxLimits struct{ rows, cols int }

const (
	maxIDXSide      = 1 << 14 // largest image side LoadIDX accepts
	maxDeflateRatio = 1032    // deflate expands at most ~1032:1 (RFC 1951: 258-byte matches in 2 bits)
	idxUnsignedByte = 0x08    // the IDX type byte of unsigned bytes
	maxIDXBytes     = 1 << 40 // no IDX file's data is larger (checked without overflow)
)

// check returns why an image file's dimensions (count, rows, cols) are
// unacceptable, or "".
func (lim idxLimits) check(dims []int) string {
	rows, cols := dims[1], dims[2]
	switch {
	case rows == 0 || cols == 0 || rows > maxIDXSide || cols > maxIDXSide:
		return fmt.Sprintf("images of %d×%d pixels (each side 1-%d)", rows, cols, maxIDXSide)
	case lim.rows > 0 && (rows != lim.rows || cols != lim.cols):
		return fmt.Sprintf("images of %d×%d pixels, want %d×%d", rows, cols, lim.rows, lim.cols)
	case dims[0] == 0:
		return "no images"
	}
	return ""
}

func loadIDX(imagesPath, labelsPath string, lim idxLimits) (*Dataset, error) {
	imf, err := openIDX(imagesPath, 3, lim.check)
	if err != nil {
		return nil, err
	}
	defer imf.Close()
	rows, cols := imf.dims[1], imf.dims[2]
	lf, err := openIDX(labelsPath, 1, func([]int) string { return "" })
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	if imf.dims[0] != lf.dims[0] {
		return nil, fmt.Errorf("vat: %s has %d images but %s has %d labels: %w", imf.used, imf.dims[0], lf.used, lf.dims[0], ErrCountMismatch)
	}
	labels := make([]uint8, 0, min(lf.size, 1<<20))
	if err := lf.read(func(b []byte) { labels = append(labels, b...) }); err != nil {
		return nil, err
	}
	for i, l := range labels {
		if l >= Classes {
			return nil, fmt.Errorf("vat: %s: label %d of item %d: %w", lf.used, l, i, ErrBadLabel)
		}
	}
	d := &Dataset{Images: make([]float32, 0, min(imf.size, 1<<20)), Labels: make([]int, len(labels)), Rows: rows, Cols: cols, Shape: []int{1, rows, cols}}
	for i, l := range labels {
		d.Labels[i] = int(l)
	}
	if err := imf.read(func(b []byte) {
		// Capacity doubles (append's own growth is 1.25× at this size),
		// never past the header's size nor past twice what has arrived.
		if need := len(d.Images) + len(b); need > cap(d.Images) {
			d.Images = slices.Grow(d.Images, min(imf.size, max(need, 2*cap(d.Images)))-len(d.Images))
		}
		for _, v := range b {
			d.Images = append(d.Images, float32(v)/255)
		}
	}); err != nil {
		return nil, err
	}
	return d, nil
}

// idxFile is an IDX file of unsigned bytes, opened and positioned at its
// data.
type idxFile struct {
	r     io.Reader     // the data: raw, or the gzip stream's content
	raw   *bufio.Reader // the file itself
	dims  []int
	size  int    // data bytes the header promises
	used  string // the path read
	close []io.Closer
}

// Close closes the file.
func (f *idxFile) Close() error {
	var first error
	for i := len(f.close) - 1; i >= 0; i-- {
		if err := f.close[i].Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// openIDX opens an IDX file of unsigned bytes with the given rank and reads
// and checks its header: magic, type, rank, the dimensions (check says what
// is wrong with them, or ""), and a data size that the file can hold.
func openIDX(path string, rank int, check func(dims []int) string) (_ *idxFile, err error) {
	used := path
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && strings.HasSuffix(path, ".gz") {
		if f2, err2 := os.Open(strings.TrimSuffix(path, ".gz")); err2 == nil {
			f, err, used = f2, nil, strings.TrimSuffix(path, ".gz")
		}
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("vat: %s: %w", path, ErrMissingFile)
	}
	if err != nil {
		return nil, fmt.Errorf("vat: %w", err)
	}
	idx := &idxFile{used: used, close: []io.Closer{f}}
	defer func() {
		if err != nil {
			idx.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("vat: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("vat: %s: %w: it is a folder or device, not a file", used, ErrMissingFile)
	}
	br := bufio.NewReader(f)
	idx.r, idx.raw = br, br
	gz := false
	if head, _ := br.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("vat: %s: %w: %v", used, ErrNotGzip, err)
		}
		zr.Multistream(false) // one member; anything after it is trailing data
		idx.r, idx.close, gz = zr, append(idx.close, zr), true
	} else if strings.HasSuffix(used, ".gz") {
		return nil, fmt.Errorf("vat: %s: %w: no gzip header (%d bytes)", used, ErrNotGzip, st.Size())
	}
	hdr := make([]byte, 4+4*rank)
	if n, err := io.ReadFull(idx.r, hdr); err != nil {
		return nil, idx.readError(err, fmt.Sprintf("%d bytes, the header alone needs %d", n, len(hdr)))
	}
	if hdr[0] != 0 || hdr[1] != 0 || hdr[2] != idxUnsignedByte || int(hdr[3]) != rank {
		return nil, fmt.Errorf("vat: %s: %w: 0x%08x, want 0x0000%02x%02x (unsigned bytes, rank %d)",
			used, ErrBadMagic, binary.BigEndian.Uint32(hdr), idxUnsignedByte, rank, rank)
	}
	// The data size, with overflow checked: each dimension is a uint32.
	size := uint64(1)
	for i := 0; i < rank; i++ {
		d := uint64(binary.BigEndian.Uint32(hdr[4+4*i:]))
		idx.dims = append(idx.dims, int(d))
		if d != 0 && size > maxIDXBytes/d {
			return nil, fmt.Errorf("vat: %s: %w: dimensions %v hold more than 2^40 bytes", used, ErrBadHeader, hdr2dims(hdr, rank))
		}
		size *= d
	}
	if why := check(idx.dims); why != "" {
		return nil, fmt.Errorf("vat: %s: %w: %s", used, ErrBadHeader, why)
	}
	// What the file can hold: an uncompressed file exactly what follows the
	// header; a gzip stream no more than deflate's expansion limit.
	room := uint64(st.Size()) - uint64(len(hdr))
	if gz {
		room = uint64(st.Size()) * maxDeflateRatio
	}
	if size > room {
		return nil, fmt.Errorf("vat: %s: %w: header promises %v = %d bytes, a %d-byte file holds at most %d",
			used, ErrTruncated, idx.dims, size, st.Size(), room)
	}
	idx.size = int(size)
	return idx, nil
}

// hdr2dims lists the dimensions in an IDX header.
func hdr2dims(hdr []byte, rank int) []uint32 {
	ds := make([]uint32, rank)
	for i := range ds {
		ds[i] = binary.BigEndian.Uint32(hdr[4+4*i:])
	}
	return ds
}

// readError classifies a read failure: a stream that ends early is
// truncated (what says how far it got), anything else is corrupt data.
func (f *idxFile) readError(err error, what string) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("vat: %s: %w: %s", f.used, ErrTruncated, what)
	}
	return fmt.Errorf("vat: %s: %w: %v", f.used, ErrNotGzip, err)
}

// read passes the data to fn in chunks, and checks that the file holds
// exactly the size its header promises.
func (f *idxFile) read(fn func([]byte)) error {
	buf := make([]byte, 1<<16)
	left := f.size
	for left > 0 {
		n, err := io.ReadFull(f.r, buf[:min(len(buf), left)])
		fn(buf[:n])
		left -= n
		if err != nil {
			return f.readError(err, fmt.Sprintf("header promises %v = %d bytes, file holds %d", f.dims, f.size, f.size-left))
		}
	}
	// Reading on to the end also checks a gzip stream's checksum.
	n, err := io.ReadFull(f.r, buf[:1])
	if n > 0 {
		return fmt.Errorf("vat: %s: %w: more than the %d bytes its header promises (%v)", f.used, ErrTrailingData, f.size, f.dims)
	}
	if err != io.EOF {
		return fmt.Errorf("vat: %s: %w: %v", f.used, ErrNotGzip, err)
	}
	if f.r != io.Reader(f.raw) { // gzip: nothing may follow the stream
		if _, err := f.raw.ReadByte(); err == nil {
			return fmt.Errorf("vat: %s: %w: bytes after the end of the gzip stream", f.used, ErrTrailingData)
		}
	}
	return nil
}
