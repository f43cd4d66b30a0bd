package vat

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// digitPNG encodes MNIST image i of d as an 8-bit grayscale PNG.
func digitPNG(t testing.TB, d *Dataset, i int) []byte {
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for p := 0; p < 784; p++ {
		img.Pix[p] = uint8(d.Images[i*784+p]*255 + 0.5)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// writeDigitFolder writes per digit class perClass MNIST images of d as
// PNGs into root/<name>/, names "zero" to "nine", and unlabeled images
// into root/unlabeled; it returns the indices written per class.
func writeDigitFolder(t testing.TB, root string, d *Dataset, perClass, unlabeled int) {
	names := []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
	count := make([]int, 10)
	for i := 0; i < d.Len() && (slices.Min(count) < perClass); i++ {
		c := d.Labels[i]
		if count[c] >= perClass {
			continue
		}
		dir := filepath.Join(root, names[c])
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, "img"+strconv.Itoa(i)+".png"), digitPNG(t, d, i), 0o644); err != nil {
			t.Fatal(err)
		}
		count[c]++
	}
	if unlabeled > 0 {
		dir := filepath.Join(root, "unlabeled")
		os.MkdirAll(dir, 0o755)
		for i := d.Len() - unlabeled; i < d.Len(); i++ {
			os.WriteFile(filepath.Join(dir, "u"+strconv.Itoa(i)+".png"), digitPNG(t, d, i), 0o644)
		}
	}
}

// TestLoadImageFolder: a folder of MNIST PNGs reads back as the digits,
// classes sorted by name, the unlabeled folder apart; resizing, RGB and
// scaling options apply.
func TestLoadImageFolder(t *testing.T) {
	_, test := loadMNIST(t)
	root := t.TempDir()
	writeDigitFolder(t, root, test, 3, 5)
	os.WriteFile(filepath.Join(root, "zero", "notes.txt"), []byte("not an image"), 0o644) // skipped
	os.WriteFile(filepath.Join(root, ".DS_Store"), []byte("x"), 0o644)                    // skipped
	var calls, last int
	lab, unl, err := LoadImageFolder(root, ImageFolderOptions{Unlabeled: "unlabeled", Workers: 3, Progress: func(done, total int) { calls, last = done, total }})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"eight", "five", "four", "nine", "one", "seven", "six", "three", "two", "zero"}
	if !slices.Equal(lab.ClassNames, want) || lab.Len() != 30 || unl.Len() != 5 || unl.Labeled() || calls != 35 || last != 35 {
		t.Fatalf("classes %v, %d labeled, %d unlabeled, progress %d/%d", lab.ClassNames, lab.Len(), unl.Len(), calls, last)
	}
	if !slices.Equal(lab.shape(), []int{1, 28, 28}) {
		t.Fatalf("shape %v", lab.shape())
	}
	// Every labeled image is one of the test digits of its class, to 8 bits.
	names := map[string]int{"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
	for i := 0; i < lab.Len(); i++ {
		digit := names[lab.ClassNames[lab.Labels[i]]]
		found := false
		for j := 0; j < test.Len() && !found; j++ {
			if test.Labels[j] != digit {
				continue
			}
			same := true
			for p := 0; p < 784 && same; p++ {
				if d := lab.Images[i*784+p] - test.Images[j*784+p]; d > 0.5/255+1e-6 || d < -0.5/255-1e-6 {
					same = false
				}
			}
			found = same
		}
		if !found {
			t.Fatalf("image %d (class %s) is none of the test set's digits", i, lab.ClassNames[lab.Labels[i]])
		}
	}
	rgb, _, err := LoadImageFolder(root, ImageFolderOptions{Unlabeled: "unlabeled", RGB: true, Width: 14, Height: 14, Scale: 2.0 / 255, Offset: -127.5})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rgb.shape(), []int{3, 14, 14}) || slices.Max(rgb.Images) > 1.0001 || slices.Min(rgb.Images) < -1.0001 {
		t.Fatalf("RGB 14×14 in [-1, 1]: shape %v, range %v..%v", rgb.shape(), slices.Min(rgb.Images), slices.Max(rgb.Images))
	}
	for i := 0; i < 196; i++ { // gray images: the three channels agree
		if rgb.Images[i] != rgb.Images[196+i] || rgb.Images[i] != rgb.Images[392+i] {
			t.Fatalf("pixel %d: channels %v %v %v", i, rgb.Images[i], rgb.Images[196+i], rgb.Images[392+i])
		}
	}
}

// pngHeader returns a valid PNG signature and IHDR chunk for w×h 8-bit
// grayscale, with nothing after it: what a decompression bomb shows first.
func pngHeader(w, h uint32) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 0 // bit depth 8, grayscale
	chunk := append([]byte("IHDR"), ihdr...)
	b = binary.BigEndian.AppendUint32(b, 13)
	b = append(b, chunk...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(chunk))
}

// TestLoadImageFolderRejects: each hostile file is one error line that
// names it, before its pixels are decoded.
func TestLoadImageFolderRejects(t *testing.T) {
	_, test := loadMNIST(t)
	good := digitPNG(t, test, 0)
	var jpg bytes.Buffer
	jpeg.Encode(&jpg, image.NewGray(image.Rect(0, 0, 28, 28)), nil)
	gif := []byte("GIF89a")
	for _, tc := range []struct {
		name  string
		setup func(dir string) string // writes the bad file, returns its path
		want  string
	}{
		{"decompression bomb", func(dir string) string {
			p := filepath.Join(dir, "bomb.png")
			os.WriteFile(p, append(pngHeader(100000, 100000), make([]byte, 64)...), 0o644)
			return p
		}, "100000×100000 pixels"},
		{"truncated", func(dir string) string {
			p := filepath.Join(dir, "cut.png")
			os.WriteFile(p, good[:len(good)/2], 0o644)
			return p
		}, "cut.png"},
		{"extension lies", func(dir string) string {
			p := filepath.Join(dir, "photo.png")
			os.WriteFile(p, jpg.Bytes(), 0o644)
			return p
		}, "a JPEG file under a PNG name"},
		{"zero bytes", func(dir string) string {
			p := filepath.Join(dir, "empty.png")
			os.WriteFile(p, nil, 0o644)
			return p
		}, "an empty file"},
		{"text", func(dir string) string {
			p := filepath.Join(dir, "text.png")
			os.WriteFile(p, []byte("hello, not a picture"), 0o644)
			return p
		}, "not an image"},
		{"broken GIF", func(dir string) string {
			p := filepath.Join(dir, "g.gif")
			os.WriteFile(p, gif, 0o644)
			return p
		}, "g.gif"},
		{"unreadable (dangling link)", func(dir string) string {
			p := filepath.Join(dir, "gone.png")
			os.Symlink(filepath.Join(dir, "nowhere.png"), p)
			return p
		}, "gone.png"},
		{"symlink loop", func(dir string) string {
			a, b := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")
			os.Symlink(b, a)
			os.Symlink(a, b)
			return a
		}, "a.png"},
		{"another size", func(dir string) string {
			p := filepath.Join(dir, "zz_big.png")
			var b bytes.Buffer
			img := image.NewGray(image.Rect(0, 0, 30, 28))
			img.Set(1, 1, color.Gray{200})
			png.Encode(&b, img)
			os.WriteFile(p, b.Bytes(), 0o644)
			return p
		}, "30×28 pixels, the folder's first image 28×28"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "cats")
			os.MkdirAll(dir, 0o755)
			os.WriteFile(filepath.Join(dir, "0_ok.png"), good, 0o644)
			bad := tc.setup(dir)
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			_, _, err := LoadImageFolder(root, ImageFolderOptions{})
			runtime.ReadMemStats(&ms1)
			if a := ms1.TotalAlloc - ms0.TotalAlloc; a > 8<<20 { // the bomb would need 10 GB
				t.Errorf("LoadImageFolder allocated %d bytes for two small files", a)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Base(bad)) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("LoadImageFolder: %v, want one line naming %s and containing %q", err, bad, tc.want)
			}
		})
	}
	// Folders without images, and bad options.
	empty := t.TempDir()
	os.MkdirAll(filepath.Join(empty, "cats"), 0o755)
	if _, _, err := LoadImageFolder(empty, ImageFolderOptions{}); err == nil || !strings.Contains(err.Error(), "cats has no images") {
		t.Errorf("a class without images: %v", err)
	}
	if _, _, err := LoadImageFolder(t.TempDir(), ImageFolderOptions{}); err == nil || !strings.Contains(err.Error(), "no class subfolders") {
		t.Errorf("no classes: %v", err)
	}
	for _, o := range []ImageFolderOptions{{Width: 5}, {Width: -1, Height: -1}, {MaxFiles: -1}} {
		if _, _, err := LoadImageFolder(empty, o); err == nil || !strings.Contains(err.Error(), "ImageFolderOptions") {
			t.Errorf("options %+v: %v", o, err)
		}
	}
	if _, _, err := LoadImageFolder(empty, ImageFolderOptions{Unlabeled: "pool"}); err == nil || !strings.Contains(err.Error(), `no subfolder "pool"`) {
		t.Errorf("a missing unlabeled folder: %v", err)
	}
}

// FuzzDecodeImage: whatever the bytes, decoding a file gives 28×28 gray
// values in [0, 1] or an error naming the file; it never panics, and a
// header claiming more than MaxSide is refused before decoding.
func FuzzDecodeImage(f *testing.F) {
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	var b bytes.Buffer
	png.Encode(&b, img)
	f.Add(b.Bytes())
	f.Add(pngHeader(100000, 100000))
	f.Add(pngHeader(28, 28))
	f.Add([]byte("GIF89a\x1c\x00\x1c\x00"))
	f.Add([]byte{})
	var j bytes.Buffer
	jpeg.Encode(&j, img, nil)
	f.Add(j.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		dst := make([]float32, 784)
		err := decodeImage(dst, bytes.NewReader(data), "fuzz.png", 28, 28, ImageFolderOptions{Scale: 1.0 / 255, MaxSide: 1024, Width: 28, Height: 28})
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.png") {
				t.Fatalf("error without the file's name: %v", err)
			}
			return
		}
		for _, v := range dst {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("value %v outside [0, 1]", v)
			}
		}
	})
}
