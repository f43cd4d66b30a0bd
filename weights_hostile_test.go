package vat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/org/vat/internal/safetensors"
)

// smallNet is the network the hostile-file tests load into.
func smallNet(t testing.TB) *Model {
	m, err := Sequential([]int{1, 6, 6}, 1, Conv2D(2, 3), BatchNorm(), ReLU(), Flatten(), Dense(3))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// encodeFile returns the bytes of a safetensors file.
func encodeFile(t testing.TB, f *safetensors.File) []byte {
	var b bytes.Buffer
	if err := safetensors.Encode(&b, f); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// validFile returns a valid weights file of smallNet, decoded, for
// variations.
func validFile(t testing.TB) *safetensors.File {
	m := smallNet(t)
	return &safetensors.File{Metadata: m.header(formatWeights), Tensors: m.tensors()}
}

// hostileWeights are broken or malicious weights files, each with the
// sentinel its error must wrap and a part of its message.
func hostileWeights(t testing.TB) []struct {
	name string
	data []byte
	want error
	msg  string
} {
	valid := encodeFile(t, validFile(t))
	mutate := func(fn func(f *safetensors.File)) []byte {
		f := validFile(t)
		fn(f)
		return encodeFile(t, f)
	}
	rawHeader := func(h string) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
		return append(append(b, h...), make([]byte, 16)...)
	}
	other, _ := Sequential([]int{1, 6, 6}, 1, Conv2D(3, 3), Flatten(), Dense(3))
	bigDense, _ := Sequential([]int{1, 6, 6}, 1, Flatten(), Dense(3))
	huge := bigDense.header(formatWeights)
	huge[metaLayers] = `[{"layer":"Flatten"},{"layer":"Dense","units":1073741824},{"layer":"Dense","units":3}]`
	return []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"truncated", valid[:len(valid)/2], ErrNotSafetensors, "header length"},
		{"truncated data", valid[:len(valid)-3], ErrNotSafetensors, "data bytes"},
		{"header beyond the file", append(binary.LittleEndian.AppendUint64(nil, 1<<20), valid[8:100]...), ErrNotSafetensors, "exceeds the file"},
		{"huge header", append(binary.LittleEndian.AppendUint64(nil, 1<<40), valid[8:]...), ErrNotSafetensors, "limit"},
		{"offsets out of bounds", rawHeader(`{"0.weight":{"dtype":"F32","shape":[2,1,3,3],"data_offsets":[0,72]}}`), ErrNotSafetensors, "outside"},
		{"overlapping offsets", rawHeader(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`), ErrNotSafetensors, "overlaps"},
		{"wrong dtype", mutate(func(f *safetensors.File) {
			t := &f.Tensors[0]
			t.DType, t.Data = safetensors.F64, append(t.Data, t.Data...)
		}), ErrWrongNetwork, "want F32"},
		{"wrong shape", mutate(func(f *safetensors.File) { f.Tensors[0].Shape = []int{1, 2, 3, 3} }), ErrWrongNetwork, "want F32[2 1 3 3]"},
		{"missing tensor", mutate(func(f *safetensors.File) { f.Tensors = f.Tensors[1:] }), ErrWrongNetwork, "missing"},
		{"extra tensor", mutate(func(f *safetensors.File) {
			f.Tensors = append(f.Tensors, safetensors.FromFloat32("9.weight", []int{1}, []float32{1}))
		}), ErrWrongNetwork, "unexpected tensor"},
		{"another network", encodeFile(t, &safetensors.File{Metadata: other.header(formatCheckpoint), Tensors: other.tensors()}), ErrWrongNetwork, "in the file"},
		{"no metadata", mutate(func(f *safetensors.File) { f.Metadata = nil }), nil, ""}, // fine for Load (a PyTorch file)
		{"layers beyond the file", mutate(func(f *safetensors.File) { f.Metadata = huge }), ErrWrongNetwork, "in the file"},
		{"unknown layer", mutate(func(f *safetensors.File) { f.Metadata[metaLayers] = `[{"layer":"LSTM"}]` }), ErrWrongNetwork, "in the file"},
		{"a text file", []byte("Virtual adversarial training: notes\nnot weights\n"), ErrNotSafetensors, `starts with the text "Virtual "`},
		{"negative count", mutate(func(f *safetensors.File) {
			for i := range f.Tensors {
				if strings.HasSuffix(f.Tensors[i].Name, "num_batches_tracked") {
					f.Tensors[i] = safetensors.FromInt64(f.Tensors[i].Name, nil, []int64{-1})
				}
			}
		}), ErrWrongNetwork, "non-negative"},
	}
}

// TestLoadHostileFiles: every broken file gives one error line that names
// the file and wraps the right sentinel, allocates no more than a small
// multiple of the file's size, and leaves the model unchanged.
func TestLoadHostileFiles(t *testing.T) {
	for _, tc := range hostileWeights(t) {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hostile.safetensors")
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			m := smallNet(t)
			before := m.params[0].Value.Data().([]float32)[0]
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			err := m.Load(path)
			runtime.ReadMemStats(&ms1)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Load: %v\nwant one line wrapping %v, naming the file and containing %q", err, tc.want, tc.msg)
			}
			if msg := strings.TrimPrefix(err.Error(), "vat: "+path+": "); len(msg) > 200 {
				t.Errorf("Load's message is %d characters after the file's name: want under 200: %s", len(msg), msg)
			}
			if a := ms1.TotalAlloc - ms0.TotalAlloc; a > 256<<10+8*uint64(len(tc.data)) {
				t.Errorf("Load allocated %d bytes for a %d-byte file", a, len(tc.data))
			}
			if m.params[0].Value.Data().([]float32)[0] != before {
				t.Error("a failed Load changed the weights")
			}
		})
	}
}

// TestLoadModelHostileHeaders: LoadModel refuses headers that describe
// networks the file cannot hold, before building them.
func TestLoadModelHostileHeaders(t *testing.T) {
	bigDense, _ := Sequential([]int{1, 6, 6}, 1, Flatten(), Dense(3))
	for _, tc := range []struct {
		name string
		meta func(map[string]string)
		msg  string
	}{
		{"huge dense", func(h map[string]string) {
			h[metaLayers] = `[{"layer":"Flatten"},{"layer":"Dense","units":1073741824},{"layer":"Dense","units":3}]`
		}, "can hold"},
		{"overflowing dense", func(h map[string]string) {
			h[metaLayers] = `[{"layer":"Dense","units":9223372036854775807},{"layer":"Dense","units":9223372036854775807}]`
		}, "can hold"},
		{"huge preset", func(h map[string]string) { h[metaPreset] = `{"name":"mnist-cnn"}` }, "can hold"},
		{"unknown preset", func(h map[string]string) { h[metaPreset] = `{"name":"resnet"}` }, "preset"},
		{"bad shape", func(h map[string]string) { h[metaInputShape] = `[0, 5]` }, "input shape"},
		{"shape with a newline", func(h map[string]string) { h[metaInputShape] = "[1,\n2" }, "input shape"},
		{"no layers", func(h map[string]string) { h[metaLayers] = `[]` }, "layers"},
		{"bad padding", func(h map[string]string) { h[metaLayers] = `[{"layer":"Conv2D","filters":1,"kernel":1,"padding":"x"}]` }, "padding"},
		{"not ours", func(h map[string]string) { delete(h, metaFormat) }, "not written by this package"},
		{"bad seed", func(h map[string]string) { h[metaSeed] = "-1" }, "seed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meta := bigDense.header(formatWeights)
			tc.meta(meta)
			path := filepath.Join(t.TempDir(), "w.safetensors")
			if err := os.WriteFile(path, encodeFile(t, &safetensors.File{Metadata: meta, Tensors: bigDense.tensors()}), 0o644); err != nil {
				t.Fatal(err)
			}
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			_, err := LoadModel(path)
			runtime.ReadMemStats(&ms1)
			if !errors.Is(err, ErrWrongNetwork) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("LoadModel: %v\nwant one line wrapping ErrWrongNetwork, naming the file and containing %q", err, tc.msg)
			}
			if a := ms1.TotalAlloc - ms0.TotalAlloc; a > 1<<20 {
				t.Errorf("LoadModel allocated %d bytes", a)
			}
		})
	}
}

// FuzzLoadWeights feeds arbitrary files to LoadModel, Load and Resume:
// no panic, errors are one line naming the file, and what loads is
// consistent. The seed corpus (valid files and the hostile ones) runs in
// every go test.
func FuzzLoadWeights(f *testing.F) {
	f.Add(encodeFile(f, validFile(f)))
	tr, err := NewTrainer(smallNet(f), TrainConfig{Epochs: 1, BatchSize: 4})
	if err != nil {
		f.Fatal(err)
	}
	ckpt := filepath.Join(f.TempDir(), "c.ckpt")
	if err := tr.Checkpoint(ckpt); err != nil {
		f.Fatal(err)
	}
	b, _ := os.ReadFile(ckpt)
	f.Add(b)
	for _, tc := range hostileWeights(f) {
		f.Add(tc.data)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.safetensors")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		check := func(what string, err error) {
			if err != nil && (strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), path)) {
				t.Fatalf("%s: error %q: want one line naming the file", what, err)
			}
		}
		m, err := LoadModel(path)
		check("LoadModel", err)
		if err == nil && m.NumParams()*4 > len(data) {
			t.Fatalf("LoadModel built %d weights from %d bytes", m.NumParams(), len(data))
		}
		check("Load", smallNet(t).Load(path))
		_, err = Resume(path, TrainConfig{})
		check("Resume", err)
	})
}
