package vat

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/safetensors"
)

// Errors of weights and checkpoint files, wrapped by the errors of Save,
// Load, LoadModel, Checkpoint and Resume, which also name the file.
var (
	// ErrNotSafetensors: the file is not a valid safetensors file (too
	// short, a header length beyond the file or over 100 MB, a malformed
	// header, an unknown dtype, offsets out of bounds, overlapping or
	// leaving holes).
	ErrNotSafetensors = safetensors.ErrFormat
	// ErrWrongNetwork: the file is valid, but its tensors or its header do
	// not fit the network (a missing or extra tensor, a wrong dtype or
	// shape, another network's layers, a checkpoint of another run).
	ErrWrongNetwork = errors.New("the file does not fit the network")
	// ErrBrokenCheckpoint: a checkpoint's record of the run (its header's
	// "checkpoint" entry) is cut or malformed.
	ErrBrokenCheckpoint = errors.New("a broken checkpoint")
)

// Header keys of the files Save and Checkpoint write.
const (
	metaFormat     = "format"
	metaVersion    = "vat_version"
	metaInputShape = "input_shape"
	metaLayers     = "layers"
	metaPreset     = "preset"
	metaSeed       = "seed"
	metaCheckpoint = "checkpoint"
	metaPrep       = "preprocessing"

	formatWeights    = "github.com/org/vat weights v1"
	formatCheckpoint = "github.com/org/vat checkpoint v1"
	presetMNISTCNN   = "mnist-cnn"

	// optimizerPrefix starts the names of a checkpoint's optimizer state,
	// trainerPrefix those of its trainer's state (the batch orders).
	optimizerPrefix = "optimizer/"
	trainerPrefix   = "trainer/"
)

// presetConfig is the header's record of a NewModel preset.
type presetConfig struct {
	Name    string `json:"name"`
	Dropout bool   `json:"dropout"`
	Seed    uint64 `json:"seed"`
}

// stateEntry is one tensor of the model's state dict, in the file's layout.
type stateEntry struct {
	name  string
	shape []int
	get   func() []float32 // the values in the file's layout
	set   func([]float32)  // stores values given in the file's layout
	count *int64           // set for BatchNorm's num_batches_tracked (I64, shape [])
	host  func() []float32 // a weight's live host buffer, to mark after a load
}

// stateDict lists the model's tensors under PyTorch's state_dict names for
// the same network: "<module>.weight" and "<module>.bias" for convolutions,
// dense layers and batch normalization (γ, β), plus BatchNorm's
// "running_mean", "running_var" and "num_batches_tracked". Modules are
// numbered by their position in the layer list, as in a torch.nn.Sequential
// of the same layers (ReLU, Flatten, MaxPool2D and Dropout count); the
// preset's are conv1, conv2, fc1 and fc2, as in the PyTorch peer's module.
// A Dense kernel (in×out here) is stored out×in, as nn.Linear's weight.
func (m *Model) stateDict() []stateEntry {
	var out []stateEntry
	for i, l := range m.layers {
		w := make([]*Param, len(m.weights[i]))
		for j, k := range m.weights[i] {
			w[j] = m.params[k]
		}
		out = append(out, l.state(m.modules[i], w, m.stats[i], &m.bnBatches[i])...)
	}
	return out
}

func plainEntry(name string, p *Param) stateEntry {
	d := p.Value.Data().([]float32)
	return stateEntry{name: name, shape: append([]int{}, p.Value.Shape()...),
		get: func() []float32 { return d }, set: func(v []float32) { copy(d, v) }, host: func() []float32 { return d }}
}

func sliceEntry(name string, d []float32) stateEntry {
	return stateEntry{name: name, shape: []int{len(d)},
		get: func() []float32 { return d }, set: func(v []float32) { copy(d, v) }, host: func() []float32 { return d }}
}

// transpose returns the r×c row-major matrix a as c×r.
func transpose(a []float32, r, c int) []float32 {
	t := make([]float32, len(a))
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			t[j*r+i] = a[i*c+j]
		}
	}
	return t
}

// header returns the metadata that lets LoadModel rebuild the network.
func (m *Model) header(format string) map[string]string {
	specs := make([]layerSpec, len(m.layers))
	for i, l := range m.layers {
		specs[i] = l.spec()
	}
	ls, _ := json.Marshal(specs)
	shape, _ := json.Marshal(m.inShape)
	h := map[string]string{metaFormat: format, metaVersion: Version, metaInputShape: string(shape), metaLayers: string(ls),
		metaSeed: strconv.FormatUint(m.cfg.Seed, 10)}
	if m.preset {
		p, _ := json.Marshal(presetConfig{Name: presetMNISTCNN, Dropout: m.cfg.Dropout, Seed: m.cfg.Seed})
		h[metaPreset] = string(p)
	}
	if m.prep != nil {
		h[metaPrep] = preprocessingHeader(m.prep)
	}
	return h
}

// tensors returns the model's state dict as safetensors tensors, copying
// the weights from the GPU first when one is in use.
func (m *Model) tensors() []safetensors.Tensor {
	if a := backend.Active(); a != nil {
		m.syncParams(a)
	}
	var ts []safetensors.Tensor
	for _, e := range m.stateDict() {
		if e.count != nil {
			ts = append(ts, safetensors.FromInt64(e.name, e.shape, []int64{*e.count}))
			continue
		}
		ts = append(ts, safetensors.FromFloat32(e.name, e.shape, e.get()))
	}
	return ts
}

// Save writes the model's weights to path as a safetensors file, atomically
// (a temporary file, synced, then renamed over path). Tensor names and
// layouts are those of PyTorch's state_dict for the same network (see
// Model.StateDictNames), so torch's load_state_dict reads the file; the
// header's metadata records the input shape, the layers and the package
// version, so that LoadModel rebuilds the model from the file alone.
func (m *Model) Save(path string) error {
	if m == nil {
		return fmt.Errorf("vat: Save: model is nil")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	f := &safetensors.File{Metadata: m.header(formatWeights), Tensors: m.tensors()}
	if err := safetensors.WriteFile(path, f); err != nil {
		return fmt.Errorf("vat: Save: %w", err)
	}
	return nil
}

// StateDictNames returns the names of the tensors Save writes, in order.
func (m *Model) StateDictNames() []string {
	var names []string
	for _, e := range m.stateDict() {
		names = append(names, e.name)
	}
	return names
}

// Load reads weights saved by Save, by Checkpoint, or by PyTorch
// (safetensors.torch.save_file of a state_dict with the names
// StateDictNames lists) into m. Every tensor must be there with its exact
// shape, as float32 (num_batches_tracked as int64), and no other; a file
// whose header records another network is refused. Nothing changes when an
// error is returned.
func (m *Model) Load(path string) error {
	if m == nil {
		return fmt.Errorf("vat: Load: model is nil")
	}
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return fmt.Errorf("vat: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.loadFile(f, path); err != nil {
		return err
	}
	return nil
}

// LoadModel rebuilds the model saved at path by Save or Checkpoint, from
// the file alone, with its weights. (A file written by PyTorch has no
// layer list: build the model, then call Load.)
func LoadModel(path string) (*Model, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vat: %w", err)
	}
	m, err := modelFromHeader(f, path)
	if err != nil {
		return nil, err
	}
	if err := m.loadFile(f, path); err != nil {
		return nil, err
	}
	return m, nil
}

// modelFromHeader builds the network a file's metadata describes, with
// fresh weights.
func modelFromHeader(f *safetensors.File, path string) (*Model, error) {
	meta := f.Metadata
	var dataBytes int64
	for _, t := range f.Tensors {
		dataBytes += int64(len(t.Data))
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("vat: %s: %w: %s", path, ErrWrongNetwork, fmt.Sprintf(format, a...))
	}
	switch meta[metaFormat] {
	case formatWeights, formatCheckpoint:
	case "":
		return nil, bad("no %q in the header: not written by this package (build the model and call Load)", metaFormat)
	default:
		return nil, bad("format %q, want %q", clip(meta[metaFormat]), formatWeights)
	}
	var preset *presetConfig
	if p, ok := meta[metaPreset]; ok {
		preset = &presetConfig{}
		if err := json.Unmarshal([]byte(p), preset); err != nil || preset.Name != presetMNISTCNN {
			return nil, bad("preset %q: want {\"name\": %q, ...}", clip(p), presetMNISTCNN)
		}
	}
	var shape []int
	var layers []Layer
	if preset != nil {
		shape, layers = presetShape(), presetLayers(preset.Dropout)
	} else {
		if err := json.Unmarshal([]byte(meta[metaInputShape]), &shape); err != nil || len(shape) == 0 || len(shape) > 3 {
			return nil, bad("input shape %q: want a JSON list of 1 to 3 sizes", clip(meta[metaInputShape]))
		}
		for _, d := range shape {
			if d < 1 || d > 1<<16 {
				return nil, bad("input shape %v: want sizes 1 to 65536", shape)
			}
		}
		var specs []layerSpec
		if err := json.Unmarshal([]byte(meta[metaLayers]), &specs); err != nil || len(specs) == 0 {
			return nil, bad("layers %q: want a JSON list of layers", clip(meta[metaLayers]))
		}
		layers = make([]Layer, len(specs))
		for i, s := range specs {
			l, err := s.layer()
			if err != nil {
				return nil, bad("layer %d: %v", i+1, err)
			}
			layers[i] = l
		}
	}
	// The weights must come from the file, not from an allocation the
	// header alone asks for: a layer list can describe a network far
	// larger than the file. Count the parameters before building it.
	if n, ok := paramCount(shape, layers, dataBytes/4); !ok {
		return nil, bad("the layers need more than the %d float32 weights the file's %d data bytes can hold", dataBytes/4, dataBytes)
	} else if n < 0 {
		return nil, bad("the layers do not fit the input shape %v", shape)
	}
	if preset != nil {
		m, err := NewModel(ModelConfig{Dropout: preset.Dropout, Seed: preset.Seed})
		if err != nil {
			return nil, bad("%v", err)
		}
		return m, nil
	}
	var seed uint64 // the initial weights' seed, kept for Model.Config
	if v, ok := meta[metaSeed]; ok {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			return nil, bad("seed %q: want an unsigned integer", clip(v))
		}
	}
	m, err := Sequential(shape, seed, layers...)
	if err != nil {
		return nil, bad("%v", err)
	}
	return m, nil
}

// paramCount returns the number of weights layers have on inputs of
// shape, false when it exceeds limit (or a size overflows it), and -1 when
// a layer does not fit (Sequential then says why).
func paramCount(shape []int, layers []Layer, limit int64) (int64, bool) {
	var n int64
	for _, l := range layers {
		out, err := l.output(shape)
		if err != nil {
			return -1, true
		}
		for _, p := range l.params(shape) {
			k, ok := product(p.shape, limit)
			if !ok || n+k > limit {
				return 0, false
			}
			n += k
		}
		if _, ok := product(out, math.MaxInt32); !ok {
			return 0, false // an activation of over 2^31 values per sample
		}
		shape = out
	}
	return n, true
}

// product returns the product of dims, and false when it exceeds limit
// (without overflowing).
func product(dims []int, limit int64) (int64, bool) {
	p := int64(1)
	for _, d := range dims {
		if d < 0 || (d > 0 && p > limit/int64(d)) {
			return 0, false
		}
		p *= int64(d)
	}
	return p, p <= limit
}

// loadFile checks every tensor of f against the model, then stores them.
// Tensors under "optimizer/" and "trainer/" are allowed in checkpoints and
// ignored here.
func (m *Model) loadFile(f *safetensors.File, path string) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("vat: %s: %w: %s", path, ErrWrongNetwork, fmt.Sprintf(format, a...))
	}
	if ls, ok := f.Metadata[metaLayers]; ok {
		want := m.header(formatWeights)
		if ls != want[metaLayers] || f.Metadata[metaInputShape] != want[metaInputShape] {
			return bad("%s", networkDiff(f.Metadata[metaInputShape], ls, want[metaInputShape], m.layers))
		}
	}
	entries := m.stateDict()
	known := map[string]bool{}
	for _, e := range entries {
		known[e.name] = true
	}
	for _, t := range f.Tensors {
		if !known[t.Name] && !(f.Metadata[metaFormat] == formatCheckpoint && (strings.HasPrefix(t.Name, optimizerPrefix) || strings.HasPrefix(t.Name, trainerPrefix))) {
			return bad("unexpected tensor %q (this network's are %s)", clip(t.Name), strings.Join(m.StateDictNames(), ", "))
		}
	}
	values := make([][]float32, len(entries))
	counts := make([]int64, len(entries))
	for i, e := range entries {
		t := f.Get(e.name)
		if t == nil {
			return bad("tensor %q is missing", e.name)
		}
		if e.count != nil {
			v, err := t.Int64()
			if err != nil || len(t.Shape) != 0 || v[0] < 0 {
				return bad("tensor %q is %s%v, want a non-negative I64 scalar", e.name, t.DType, t.Shape)
			}
			counts[i] = v[0]
			continue
		}
		if t.DType != safetensors.F32 || !slices.Equal(t.Shape, e.shape) {
			return bad("tensor %q is %s%v, want F32%v", e.name, t.DType, t.Shape, e.shape)
		}
		values[i], _ = t.Float32()
	}
	var prep *Preprocessing
	if js, ok := f.Metadata[metaPrep]; ok {
		var pj preprocessingJSON
		dec := json.NewDecoder(strings.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&pj); err != nil {
			return bad("the preprocessing entry %q is not valid: %s", clip(js), clip(err.Error()))
		}
		p := pj.preprocessing()
		if err := p.check(m); err != nil {
			return bad("%v", err)
		}
		prep = &p
	}
	if prep != nil {
		m.prep = prep
	}
	var written [][]float32
	for i, e := range entries {
		if e.count != nil {
			*e.count = counts[i]
			continue
		}
		e.set(values[i])
		if e.host != nil {
			written = append(written, e.host())
		}
	}
	backend.MarkHostWritten(written...)
	return nil
}

// clip shortens a string from a file for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// moduleNames returns PyTorch's module names for a Sequential list of n
// layers: their positions.
func moduleNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	return names
}

// networkDiff says in one short line how the network a file's header
// describes (its input shape and layer list, as JSON) differs from a
// model's: the input shape, the number of layers, or the first layer that
// differs.
func networkDiff(fileShape, fileLayers, shape string, layers []Layer) string {
	if fileShape != shape {
		return fmt.Sprintf("the file's network takes inputs %s, this model %s", clip(fileShape), clip(shape))
	}
	var specs []layerSpec
	if err := json.Unmarshal([]byte(fileLayers), &specs); err != nil {
		return fmt.Sprintf("the file's layer list is not valid JSON (%s)", clip(err.Error()))
	}
	for i := 0; i < len(specs) && i < len(layers); i++ {
		if specs[i] != layers[i].spec() {
			return fmt.Sprintf("layer %d is %s in the file, %s in this model", i+1, specs[i], layers[i].spec())
		}
	}
	return fmt.Sprintf("the file's network has %d layers, this model %d", len(specs), len(layers))
}
