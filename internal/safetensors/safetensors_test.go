package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func sample() *File {
	return &File{
		Metadata: map[string]string{"format": "test", "layers": `[{"layer":"Dense"}]`},
		Tensors: []Tensor{
			FromFloat32("a.weight", []int{2, 3}, []float32{1, -2, 3.5, 0, 1e-30, -7}),
			FromFloat32("a.bias", []int{2}, []float32{0.25, -0.5}),
			FromInt64("n", []int{}, []int64{42}),
			FromFloat32("empty", []int{0, 4}, nil),
		},
	}
}

func encode(t testing.TB, f *File) []byte {
	var b bytes.Buffer
	if err := Encode(&b, f); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRoundTrip(t *testing.T) {
	want := sample()
	b := encode(t, want)
	if n := binary.LittleEndian.Uint64(b); (8+n)%8 != 0 {
		t.Errorf("header of %d bytes leaves the data unaligned", n)
	}
	got, err := Decode(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tensors) != len(want.Tensors) || got.Metadata["layers"] != want.Metadata["layers"] {
		t.Fatalf("got %+v", got)
	}
	for i, w := range want.Tensors {
		g := got.Tensors[i]
		if g.Name != w.Name || g.DType != w.DType || !slices.Equal(g.Shape, w.Shape) || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("tensor %d: got %s %s%v, want %s %s%v", i, g.Name, g.DType, g.Shape, w.Name, w.DType, w.Shape)
		}
	}
	v, err := got.Get("a.weight").Float32()
	if err != nil || v[2] != 3.5 || v[4] != 1e-30 {
		t.Errorf("Float32: %v %v", v, err)
	}
	n, err := got.Get("n").Int64()
	if err != nil || n[0] != 42 {
		t.Errorf("Int64: %v %v", n, err)
	}
	if _, err := got.Get("n").Float32(); !errors.Is(err, ErrFormat) {
		t.Errorf("Float32 of an I64 tensor: %v", err)
	}
}

// TestDecodeReference reads a file laid out by hand as the format's
// documentation describes it (no padding, the metadata last, tensors in
// another order than their data), as other writers produce.
func TestDecodeReference(t *testing.T) {
	hdr := `{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"k":"v"}}`
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	b = append(b, hdr...)
	b = append(b, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40) // 1, 2
	f, err := Decode(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f.Get("a").Float32()
	c, _ := f.Get("b").Float32()
	if a[0] != 1 || c[0] != 2 || f.Metadata["k"] != "v" || f.Tensors[0].Name != "a" {
		t.Fatalf("got %v %v %v", a, c, f.Metadata)
	}
}

// header builds a file with the given JSON header and data bytes.
func header(h string, data int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	return append(append(b, h...), make([]byte, data)...)
}

// Hostile are broken or malicious files; each must give an error wrapping
// ErrFormat. The fuzzer starts from them.
var Hostile = []struct {
	Name string
	Data []byte
	Want string // a part of the error message
}{
	{"empty", nil, "shorter than"},
	{"short", []byte{1, 2, 3}, "shorter than"},
	{"header beyond file", header(`{}`, 0)[:9], "exceeds the file"},
	{"huge header", binary.LittleEndian.AppendUint64(nil, 1<<62), "exceeds the"},
	{"header over the cap", append(binary.LittleEndian.AppendUint64(nil, MaxHeader+1), make([]byte, 64)...), "limit"},
	{"not an object", header(`[1,2]   `, 0), "'{'"},
	{"bad json", header(`{"a":`, 0), "header"},
	{"trailing json", header(`{}{}`, 0), "after the JSON"},
	{"duplicate name", header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "twice"},
	{"unknown dtype", header(`{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}`, 2), "not supported"},
	{"unknown field", header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, 4), "want {dtype"},
	{"no shape", header(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, 4), "want {dtype"},
	{"negative dim", header(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4), "negative"},
	{"shape overflow", header(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, 4), "too large"},
	{"offsets out of bounds", header(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, 8), "outside"},
	{"offsets reversed", header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, 4), "outside"},
	{"size mismatch", header(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8), "needs 12"},
	{"overlap", header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "overlaps"},
	{"hole", header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "hole"},
	{"trailing data", header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 12), "end at byte 4 of 12"},
	{"metadata not strings", header(`{"__metadata__":{"a":1}}`, 0), "__metadata__"},
	{"empty name", header(`{"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4), "empty name"},
}

func TestDecodeHostile(t *testing.T) {
	for _, tc := range Hostile {
		t.Run(tc.Name, func(t *testing.T) {
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			_, err := Decode(bytes.NewReader(tc.Data), int64(len(tc.Data)))
			runtime.ReadMemStats(&ms1)
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.Want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line wrapping ErrFormat and containing %q", err, tc.Want)
			}
			// Allocations stay within a small multiple of the file, plus
			// the decoder's fixed costs.
			if a := ms1.TotalAlloc - ms0.TotalAlloc; a > 64<<10+4*uint64(len(tc.Data)) {
				t.Errorf("allocated %d bytes for a %d-byte file", a, len(tc.Data))
			}
		})
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	if err := WriteFile(path, sample()); err != nil {
		t.Fatal(err)
	}
	// A failing write leaves the old file and no temporary file behind.
	bad := &File{Tensors: []Tensor{{Name: "x", DType: F32, Shape: []int{2}, Data: []byte{1}}}}
	if err := WriteFile(path, bad); err == nil {
		t.Fatal("writing an inconsistent tensor succeeded")
	}
	f, err := ReadFile(path)
	if err != nil || len(f.Tensors) != 4 {
		t.Fatalf("after a failed write: %v %v", f, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries after a failed write, want 1", len(entries))
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	if _, err := ReadFile(dir); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), dir) {
		t.Errorf("reading a folder: %v", err)
	}
}

// FuzzDecode feeds arbitrary bytes to Decode: it must not panic, errors
// are one line, and an accepted file re-encodes to a file that decodes to
// the same tensors.
func FuzzDecode(f *testing.F) {
	f.Add(encode(f, sample()))
	for _, tc := range Hostile {
		f.Add(tc.Data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Decode(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of more than one line: %q", err)
			}
			return
		}
		var total int
		for _, x := range got.Tensors {
			total += len(x.Data)
		}
		if total > len(b) {
			t.Fatalf("%d tensor bytes from a %d-byte file", total, len(b))
		}
		again, err := Decode(bytes.NewReader(encode(t, got)), int64(len(encode(t, got))))
		if err != nil {
			t.Fatalf("re-encoded file does not decode: %v", err)
		}
		if len(again.Tensors) != len(got.Tensors) {
			t.Fatalf("re-encoding changed the tensor count")
		}
		for i := range got.Tensors {
			if !bytes.Equal(got.Tensors[i].Data, again.Tensors[i].Data) || got.Tensors[i].Name != again.Tensors[i].Name {
				t.Fatalf("re-encoding changed tensor %d", i)
			}
		}
	})
}
