package vat

import (
	"errors"
	"fmt"
	"image"
	_ "image/gif"  // GIF decoding for LoadImageFolder
	_ "image/jpeg" // JPEG
	_ "image/png"  // PNG
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	_ "golang.org/x/image/bmp" // BMP
	"golang.org/x/image/draw"
	_ "golang.org/x/image/tiff" // TIFF
	_ "golang.org/x/image/webp" // WebP
)

// ImageFolderOptions configures LoadImageFolder. The zero value reads
// grayscale images that all have the first image's size, with pixels
// scaled to [0, 1].
type ImageFolderOptions struct {
	// RGB reads three channels (C×H×W = 3×H×W); false reads one
	// (luminance, as image/color's Gray model computes it).
	RGB bool
	// Width and Height, when set (both), resize every image to that size
	// (Catmull-Rom, golang.org/x/image/draw); when zero every image must
	// have the first image's size, and another size is an error.
	Width, Height int
	// Scale multiplies each 8-bit value (0-255) after Offset is added:
	// x = (v + Offset)·Scale. 0 means 1/255, to [0, 1].
	Scale, Offset float64
	// Unlabeled names a subfolder of root whose images have no label (for
	// semi-supervised training): they come back as the second dataset.
	// Empty means none; every subfolder is then a class.
	Unlabeled string
	// MaxFiles bounds the number of images; 0 means 1,000,000.
	MaxFiles int
	// MaxSide bounds an image's width and height as its header states them,
	// before any pixel is decoded; 0 means 8,192.
	MaxSide int
	// Workers is the number of images decoded at once; 0 means GOMAXPROCS.
	Workers int
	// Progress, if set, is called as images finish decoding (done of
	// total), from one goroutine at a time.
	Progress func(done, total int)
}

// imageExts are the file name extensions LoadImageFolder reads; other
// files (and hidden ones) are skipped.
var imageExts = map[string]string{".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif",
	".bmp": "bmp", ".tif": "tiff", ".tiff": "tiff", ".webp": "webp"}

// LoadImageFolder reads a folder in the layout of Keras'
// image_dataset_from_directory and torchvision's ImageFolder: one
// subfolder per class, whose images are that class's samples, with the
// class names sorted into indices (ClassNames). The optional Unlabeled
// subfolder's images form the second dataset, without labels (nil when
// opts.Unlabeled is empty). PNG, JPEG and GIF decode with the standard
// library, BMP, TIFF and WebP with golang.org/x/image; other files and
// names starting with a dot are skipped.
//
// The files are not trusted: each image's header is read first
// (image.DecodeConfig) and a side over MaxSide, a format other than its
// extension says, a truncated or empty file, an unreadable file or a
// symlink loop is an error that names the file; so is a folder without
// images. Memory stays within the images' decoded size plus the dataset.
func LoadImageFolder(root string, opts ImageFolderOptions) (labeled, unlabeled *Dataset, err error) {
	if (opts.Width == 0) != (opts.Height == 0) || opts.Width < 0 || opts.Height < 0 || opts.Width > 1<<14 || opts.Height > 1<<14 {
		return nil, nil, fmt.Errorf("vat: LoadImageFolder: ImageFolderOptions.Width, Height = %d, %d: want both 1 to 16384, or both 0 (no resizing)", opts.Width, opts.Height)
	}
	if opts.MaxFiles < 0 || opts.MaxSide < 0 || opts.Workers < 0 {
		return nil, nil, fmt.Errorf("vat: LoadImageFolder: ImageFolderOptions.MaxFiles, MaxSide, Workers = %d, %d, %d: want >= 0 (0: the defaults)", opts.MaxFiles, opts.MaxSide, opts.Workers)
	}
	if opts.Scale == 0 {
		opts.Scale = 1.0 / 255
	}
	if opts.MaxFiles == 0 {
		opts.MaxFiles = 1_000_000
	}
	if opts.MaxSide == 0 {
		opts.MaxSide = 8192
	}
	if opts.Workers == 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, fmt.Errorf("vat: LoadImageFolder: %w", err)
	}
	type file struct {
		path  string
		class int // -1: unlabeled
	}
	var classes []string
	var files []file
	foundUnlabeled := false
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		dir := filepath.Join(root, name)
		info, err := os.Stat(dir) // follows a symlinked class folder
		if err != nil {
			return nil, nil, fmt.Errorf("vat: LoadImageFolder: %w", err)
		}
		if !info.IsDir() {
			continue
		}
		class := len(classes)
		if name == opts.Unlabeled {
			class, foundUnlabeled = -1, true
		} else {
			classes = append(classes, name)
		}
		err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".") && path != dir {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			if _, ok := imageExts[strings.ToLower(filepath.Ext(path))]; !ok {
				return nil
			}
			if len(files) >= opts.MaxFiles {
				return fmt.Errorf("%s: more than %d images (ImageFolderOptions.MaxFiles)", root, opts.MaxFiles)
			}
			files = append(files, file{path, class})
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("vat: LoadImageFolder: %w", err)
		}
	}
	if opts.Unlabeled != "" && !foundUnlabeled {
		return nil, nil, fmt.Errorf("vat: LoadImageFolder: %s has no subfolder %q (ImageFolderOptions.Unlabeled)", root, clip(opts.Unlabeled))
	}
	if len(classes) == 0 {
		return nil, nil, fmt.Errorf("vat: LoadImageFolder: %s has no class subfolders", root)
	}
	counts := make([]int, len(classes))
	for _, f := range files {
		if f.class >= 0 {
			counts[f.class]++
		}
	}
	for c, n := range counts {
		if n == 0 {
			return nil, nil, fmt.Errorf("vat: LoadImageFolder: %s has no images", filepath.Join(root, classes[c]))
		}
	}
	if foundUnlabeled && len(files) == sum(counts) {
		return nil, nil, fmt.Errorf("vat: LoadImageFolder: %s has no images", filepath.Join(root, opts.Unlabeled))
	}
	// The geometry: the options', or the first image's.
	w, h := opts.Width, opts.Height
	if w == 0 {
		if w, h, err = imageSize(files[0].path, opts.MaxSide); err != nil {
			return nil, nil, err
		}
	}
	ch := 1
	if opts.RGB {
		ch = 3
	}
	px := ch * h * w
	if int64(px)*int64(len(files)) > 1<<31 {
		return nil, nil, fmt.Errorf("vat: LoadImageFolder: %d images of %d×%d×%d values: over 2^31 values", len(files), ch, h, w)
	}
	pix := make([]float32, len(files)*px)
	errs := make([]error, len(files))
	var mu sync.Mutex
	done := 0
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(opts.Workers, len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = decodeInto(pix[i*px:(i+1)*px], files[i].path, w, h, opts)
				if opts.Progress != nil {
					mu.Lock()
					done++
					opts.Progress(done, len(files))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := firstErr(errs); err != nil {
		return nil, nil, err
	}
	shape := []int{ch, h, w}
	var li, ui []int
	var labels []int
	for i, f := range files {
		if f.class < 0 {
			ui = append(ui, i)
		} else {
			li = append(li, i)
			labels = append(labels, f.class)
		}
	}
	prep := &Preprocessing{RGB: opts.RGB, Width: w, Height: h, Scale: opts.Scale, Offset: opts.Offset, ClassNames: classes}
	all := &Dataset{Images: pix, Shape: shape, Rows: h, Cols: w, Preprocessing: prep}
	labeled = all.subset(li)
	labeled.Labels, labeled.ClassNames = labels, classes
	if foundUnlabeled {
		unlabeled = all.subset(ui)
	}
	return labeled, unlabeled, nil
}

func sum(v []int) int {
	s := 0
	for _, x := range v {
		s += x
	}
	return s
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// imageSize reads an image file's header: its width and height.
func imageSize(path string, maxSide int) (w, h int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("vat: %w", err)
	}
	defer f.Close()
	cfg, _, err := checkImageHeader(f, path, maxSide)
	if err != nil {
		return 0, 0, err
	}
	return cfg.Width, cfg.Height, nil
}

// checkImageHeader reads and checks an image's header from r, which is
// left where decoding starts again (r is rewound).
func checkImageHeader(r io.ReadSeeker, path string, maxSide int) (image.Config, string, error) {
	cfg, format, err := image.DecodeConfig(r)
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			if n, _ := r.Seek(0, io.SeekEnd); n == 0 {
				return cfg, "", fmt.Errorf("vat: %s: an empty file", path)
			}
			return cfg, "", fmt.Errorf("vat: %s: not an image in a known format (PNG, JPEG, GIF, BMP, TIFF, WebP)", path)
		}
		return cfg, "", fmt.Errorf("vat: %s: a broken %s header: %v", path, strings.ToUpper(imageExts[strings.ToLower(filepath.Ext(path))]), oneLine(err))
	}
	if want := imageExts[strings.ToLower(filepath.Ext(path))]; want != "" && want != format {
		return cfg, format, fmt.Errorf("vat: %s: a %s file under a %s name", path, strings.ToUpper(format), strings.ToUpper(want))
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > maxSide || cfg.Height > maxSide {
		return cfg, format, fmt.Errorf("vat: %s: %d×%d pixels: want each side 1 to %d (ImageFolderOptions.MaxSide)", path, cfg.Width, cfg.Height, maxSide)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return cfg, format, fmt.Errorf("vat: %s: %w", path, err)
	}
	return cfg, format, nil
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

// decodeInto decodes the image at path into dst (C×H×W of the options'
// channels and w×h), resizing it or checking its size.
func decodeInto(dst []float32, path string, w, h int, opts ImageFolderOptions) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("vat: %w", err)
	}
	defer f.Close()
	return decodeImage(dst, f, path, w, h, opts)
}

// decodeImage is decodeInto on an open file (or any reader): the header
// checked before any pixel is decoded.
func decodeImage(dst []float32, f io.ReadSeeker, path string, w, h int, opts ImageFolderOptions) error {
	cfg, _, err := checkImageHeader(f, path, opts.MaxSide)
	if err != nil {
		return err
	}
	if opts.Width == 0 && (cfg.Width != w || cfg.Height != h) {
		return fmt.Errorf("vat: %s: %d×%d pixels, the folder's first image %d×%d: set ImageFolderOptions.Width and Height to resize", path, cfg.Width, cfg.Height, w, h)
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return fmt.Errorf("vat: %s: %v", path, oneLine(err))
	}
	imageToCHW(dst, img, w, h, opts.RGB, opts.Scale, opts.Offset)
	return nil
}

// imageToCHW writes img, resized to w×h if it has another size, into dst
// as C×H×W values (v + offset)·scale of its 8-bit channels (RGB, or
// luminance).
func imageToCHW(dst []float32, img image.Image, w, h int, rgb bool, scale, offset float64) {
	b := img.Bounds()
	if b.Dx() != w || b.Dy() != h {
		r := image.NewRGBA(image.Rect(0, 0, w, h))
		draw.CatmullRom.Scale(r, r.Bounds(), img, b, draw.Src, nil)
		img, b = r, r.Bounds()
	}
	plane := w * h
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA() // 16-bit, alpha-premultiplied
			i := y*w + x
			if rgb {
				dst[i] = float32((float64(r>>8) + offset) * scale)
				dst[plane+i] = float32((float64(g>>8) + offset) * scale)
				dst[2*plane+i] = float32((float64(bl>>8) + offset) * scale)
				continue
			}
			// image/color's Gray conversion: (19595r + 38470g + 7471b + 1<<15) >> 24.
			y8 := (19595*r + 38470*g + 7471*bl + 1<<15) >> 24
			dst[i] = float32((float64(y8) + offset) * scale)
		}
	}
}
