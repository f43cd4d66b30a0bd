package vat

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// CSVOptions configures LoadCSV. Name the label column (by header name or
// by position) or say that the file has none.
type CSVOptions struct {
	// Label is the label column's name in the header row.
	Label string
	// LabelColumn is the label column's 1-based position (0: not given);
	// for files without a header row.
	LabelColumn int
	// Unlabeled says the file has no label column: every column is a
	// feature, and the dataset has no labels.
	Unlabeled bool
	// NoHeader says the first row is data, not column names.
	NoHeader bool
	// Comma is the field separator; 0 means ','.
	Comma rune
	// Classes names the classes by index, for labels given as names
	// (a test file must use its training file's: pass train.ClassNames).
	// nil means the distinct labels of the file, sorted (numerically when
	// they are all integers, which then are their own indices if they
	// are 0 to K−1).
	Classes []string
	// MaxRows bounds the number of data rows; 0 means 10,000,000.
	MaxRows int
	// MaxBytes bounds the file's size; 0 means 1 GiB.
	MaxBytes int64
}

// LoadCSV reads a table of numeric features, one sample per row, with a
// label column (see CSVOptions) or none. Every feature must be a finite
// number; an empty, missing or non-numeric cell, a row of another length,
// an unknown class name or a file over the limits is an error that names
// the file, the row and the column. The dataset's samples are flat
// vectors of the feature columns in file order; ClassNames holds the
// classes and FeatureNames the header's names. Standardize the features
// with FitStandardization on the training set and Apply it to every set.
func LoadCSV(path string, opts CSVOptions) (*Dataset, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("vat: %s: %s", path, fmt.Sprintf(format, a...))
	}
	given := 0
	if opts.Label != "" {
		given++
	}
	if opts.LabelColumn != 0 {
		given++
	}
	if opts.Unlabeled {
		given++
	}
	switch {
	case given != 1:
		return nil, fmt.Errorf("vat: LoadCSV: CSVOptions: give one of Label, LabelColumn and Unlabeled")
	case opts.LabelColumn < 0:
		return nil, fmt.Errorf("vat: LoadCSV: CSVOptions.LabelColumn = %d: want a 1-based position", opts.LabelColumn)
	case opts.Label != "" && opts.NoHeader:
		return nil, fmt.Errorf("vat: LoadCSV: CSVOptions.Label names a column, but NoHeader says there are no names: use LabelColumn")
	case opts.MaxRows < 0 || opts.MaxBytes < 0:
		return nil, fmt.Errorf("vat: LoadCSV: CSVOptions.MaxRows = %d, MaxBytes = %d: want >= 0 (0: the defaults)", opts.MaxRows, opts.MaxBytes)
	case opts.Comma == '"' || opts.Comma == '\r' || opts.Comma == '\n' || opts.Comma == 0xFFFD:
		return nil, fmt.Errorf("vat: LoadCSV: CSVOptions.Comma = %q: want a separator such as ',' or ';' or '\\t'", opts.Comma)
	}
	maxRows, maxBytes := opts.MaxRows, opts.MaxBytes
	if maxRows == 0 {
		maxRows = 10_000_000
	}
	if maxBytes == 0 {
		maxBytes = 1 << 30
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vat: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > maxBytes {
		return nil, bad("%d bytes, over the %d-byte limit (CSVOptions.MaxBytes)", st.Size(), maxBytes)
	}
	r := csv.NewReader(io.LimitReader(f, maxBytes))
	if opts.Comma != 0 {
		r.Comma = opts.Comma
	}
	r.ReuseRecord = true
	var header []string
	labelCol := opts.LabelColumn - 1 // -1: none
	row := 0
	read := func() ([]string, error) {
		rec, err := r.Read()
		row++
		var pe *csv.ParseError
		switch {
		case errors.As(err, &pe):
			return nil, bad("row %d: %v", pe.Line, pe.Err)
		case err != nil && err != io.EOF:
			return nil, bad("row %d: %v", row, err)
		}
		return rec, err
	}
	first, err := read()
	if err == io.EOF {
		return nil, bad("no rows")
	}
	if err != nil {
		return nil, err
	}
	cols := len(first)
	if cols > 1<<16 {
		return nil, bad("%d columns: want at most 65536", cols)
	}
	if !opts.NoHeader {
		header = slices.Clone(first)
		if opts.Label != "" {
			if labelCol = slices.Index(header, opts.Label); labelCol < 0 {
				return nil, bad("no column %q in the header (%s)", clip(opts.Label), clip(strings.Join(header, ", ")))
			}
		}
	}
	if labelCol >= cols {
		return nil, bad("CSVOptions.LabelColumn = %d, but the rows have %d columns", labelCol+1, cols)
	}
	features := cols
	if labelCol >= 0 {
		features--
	}
	if features == 0 {
		return nil, bad("no feature columns")
	}
	colName := func(c int) string {
		if header != nil {
			return fmt.Sprintf("column %d (%q)", c+1, clip(header[c]))
		}
		return fmt.Sprintf("column %d", c+1)
	}
	var x []float32
	var rawLabels []string
	parse := func(rec []string) error {
		if len(rec) != cols {
			return bad("row %d has %d columns, the first row %d", row, len(rec), cols)
		}
		for c, cell := range rec {
			if c == labelCol {
				if strings.TrimSpace(cell) == "" {
					return bad("row %d, %s: the label is missing", row, colName(c))
				}
				rawLabels = append(rawLabels, strings.TrimSpace(cell))
				continue
			}
			s := strings.TrimSpace(cell)
			if s == "" {
				return bad("row %d, %s: missing value", row, colName(c))
			}
			v, err := strconv.ParseFloat(s, 32)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return bad("row %d, %s: %q is not a finite number", row, colName(c), clip(s))
			}
			x = append(x, float32(v))
		}
		return nil
	}
	if opts.NoHeader {
		if err := parse(first); err != nil {
			return nil, err
		}
	}
	for {
		rec, err := read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(x)/features >= maxRows {
			return nil, bad("more than %d data rows (CSVOptions.MaxRows)", maxRows)
		}
		if err := parse(rec); err != nil {
			return nil, err
		}
	}
	n := len(x) / features
	if n == 0 {
		return nil, bad("no data rows")
	}
	d, err := newDataset("LoadCSV", x, []int{features}, n)
	if err != nil {
		return nil, bad("%v", err)
	}
	if header != nil {
		for c, h := range header {
			if c != labelCol {
				d.FeatureNames = append(d.FeatureNames, h)
			}
		}
	}
	if labelCol < 0 {
		return d, nil
	}
	classes := opts.Classes
	if classes == nil {
		classes = distinctLabels(rawLabels)
	}
	if len(classes) > 1<<16 {
		return nil, bad("%d classes: want at most 65536", len(classes))
	}
	index := make(map[string]int, len(classes))
	for i, c := range classes {
		index[c] = i
	}
	d.Labels = make([]int, n)
	for i, l := range rawLabels {
		k, ok := index[l]
		if !ok {
			return nil, bad("row %d, %s: label %q is not one of the classes %s", i+2-btoi(opts.NoHeader), colName(labelCol), clip(l), clip(strings.Join(classes, ", ")))
		}
		d.Labels[i] = k
	}
	d.ClassNames = slices.Clone(classes)
	return d, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// distinctLabels returns the distinct labels sorted: numerically when all
// are integers, as strings otherwise.
func distinctLabels(ls []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range ls {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	ints := true
	for _, l := range out {
		if _, err := strconv.Atoi(l); err != nil {
			ints = false
			break
		}
	}
	if ints {
		slices.SortFunc(out, func(a, b string) int {
			x, _ := strconv.Atoi(a)
			y, _ := strconv.Atoi(b)
			return x - y
		})
		// Integer labels 0..K−1 are their own indices.
		return out
	}
	slices.Sort(out)
	return out
}

// Standardization is a per-feature affine map x → (x − Mean)/Std, fitted
// on a training set (FitStandardization) and applied to every set, so that
// test data is scaled with the training set's statistics.
type Standardization struct {
	Mean, Std []float64
}

// FitStandardization returns each feature's mean and standard deviation
// over d's samples (a feature that never changes gets Std 1).
func FitStandardization(d *Dataset) (Standardization, error) {
	if d.Len() == 0 {
		return Standardization{}, fmt.Errorf("vat: FitStandardization: the dataset is empty")
	}
	px := size(d.shape())
	s := Standardization{Mean: make([]float64, px), Std: make([]float64, px)}
	n := float64(d.Len())
	for i := 0; i < d.Len(); i++ {
		for j, v := range d.Images[i*px : (i+1)*px] {
			s.Mean[j] += float64(v) / n
		}
	}
	for i := 0; i < d.Len(); i++ {
		for j, v := range d.Images[i*px : (i+1)*px] {
			dv := float64(v) - s.Mean[j]
			s.Std[j] += dv * dv / n
		}
	}
	for j, v := range s.Std {
		s.Std[j] = math.Sqrt(v)
		if s.Std[j] == 0 {
			s.Std[j] = 1
		}
	}
	return s, nil
}

// Apply returns a copy of d with its features standardized.
func (s Standardization) Apply(d *Dataset) (*Dataset, error) {
	px := size(d.shape())
	if len(s.Mean) != px || len(s.Std) != px {
		return nil, fmt.Errorf("vat: Standardization.Apply: fitted on %d features, the dataset has %d", len(s.Mean), px)
	}
	out := *d
	out.Images = make([]float32, len(d.Images))
	for i, v := range d.Images {
		j := i % px
		out.Images[i] = float32((float64(v) - s.Mean[j]) / s.Std[j])
	}
	return &out, nil
}
