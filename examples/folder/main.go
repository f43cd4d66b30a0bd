// Command folder trains a classifier on a folder of your own images with
// semi-supervised VAT, saves it, and predicts a folder of new images into
// a CSV file.
//
// The training folder has one subfolder per class (its name is the
// class's) and, optionally, a subfolder of unlabeled images, the layout of
// Keras' image_dataset_from_directory and torchvision's ImageFolder:
//
//	photos/cat/1.png  photos/cat/2.jpg  photos/dog/a.png  photos/unlabeled/x.png ...
//
//	go run ./examples/folder -train photos -unlabeled unlabeled -size 32x32 -model pets.safetensors
//	go run ./examples/folder -model pets.safetensors -predict new_photos -csv predictions.csv
//
// VAT's ε is chosen from the labeled images before training, the
// library's default (vat.EpsSearch): three models trained
// min(-iterations, 1000) steps each on 70 % of the labels and scored on
// the rest. -eps-search=false skips that and keeps the fixed default, 0.05
// of the data's scale, which suits many datasets but loses to training on
// the labels alone on MNIST with 100 labels (docs/defaults/select.md).
//
// The model file keeps the preprocessing (size, channels, scaling, class
// names), so prediction prepares new images as training did.
package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/org/vat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	train, unlabeled, model, predict, csv string
	width, height                         int
	rgb, epsSearch                        bool
	iterations, batch                     int
	seed                                  uint64
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("folder", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.train, "train", "", "folder of class subfolders to train on")
	fs.StringVar(&o.unlabeled, "unlabeled", "", "the training folder's subfolder of unlabeled images (empty: none)")
	fs.StringVar(&o.model, "model", "model.safetensors", "the model file: written after training, read for -predict without -train")
	fs.StringVar(&o.predict, "predict", "", "folder of images to classify (every image file below it)")
	fs.StringVar(&o.csv, "csv", "predictions.csv", "where -predict writes its CSV (file, class, probability)")
	size := fs.String("size", "", "resize every image to WxH (empty: all images must have the first one's size)")
	fs.BoolVar(&o.rgb, "rgb", false, "three color channels (default: grayscale)")
	fs.IntVar(&o.iterations, "iterations", 2000, "training steps")
	fs.IntVar(&o.batch, "batch", 32, "labeled images per step (and 4× as many unlabeled)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the weights, batches and VAT noise")
	fs.BoolVar(&o.epsSearch, "eps-search", true, "choose VAT's ε from the labeled images first (vat.EpsSearch over EpsScale 0.05, 0.2, 0.7: three models trained min(-iterations, 1000) steps each on 70 % of the labels, scored on the rest); false keeps EpsScale 0.05")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "usage: folder -train DIR [-unlabeled NAME] [-size WxH] [-model FILE] | -model FILE -predict DIR [-csv FILE]\n\n")
			fs.SetOutput(stderr)
			fs.PrintDefaults()
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	if *size != "" {
		w, h, ok := strings.Cut(*size, "x")
		var err1, err2 error
		o.width, err1 = strconv.Atoi(w)
		o.height, err2 = strconv.Atoi(h)
		if !ok || err1 != nil || err2 != nil || o.width < 1 || o.height < 1 || o.width > 4096 || o.height > 4096 {
			return nil, fmt.Errorf("-size %q: want WxH, each 1 to 4096 (for example 32x32)", *size)
		}
	}
	switch {
	case o.train == "" && o.predict == "":
		return nil, fmt.Errorf("give -train DIR, -predict DIR, or both")
	case o.iterations < 1:
		return nil, fmt.Errorf("-iterations %d: want >= 1", o.iterations)
	case o.batch < 1 || o.batch > 4096:
		return nil, fmt.Errorf("-batch %d: want 1 to 4096", o.batch)
	case o.model == "":
		return nil, fmt.Errorf("-model: want a file name")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	var m *vat.Model
	if o.train != "" {
		if m, err = train(ctx, o, stdout, stderr); err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return 1
		}
	}
	if o.predict != "" {
		if m == nil {
			if m, err = vat.LoadModel(o.model); err != nil {
				fmt.Fprintf(stderr, "error: %v\n", err)
				return 1
			}
		}
		if err := predict(m, o, stdout); err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return 1
		}
	}
	return 0
}

// train loads the folder, trains semi-supervised VAT with the library's
// defaults on a small convolutional network, and saves the model.
func train(ctx context.Context, o *options, stdout, stderr io.Writer) (*vat.Model, error) {
	lab, unl, err := vat.LoadImageFolder(o.train, vat.ImageFolderOptions{RGB: o.rgb, Width: o.width, Height: o.height, Unlabeled: o.unlabeled,
		Progress: func(done, total int) {
			if done == total {
				fmt.Fprintf(stderr, "decoded %d images\n", total)
			}
		}})
	if err != nil {
		return nil, err
	}
	if unl == nil { // no unlabeled folder: VAT regularizes on the labeled images themselves
		unl = lab.Unlabeled()
	}
	fmt.Fprintf(stdout, "%d labeled images in %d classes (%s), %d unlabeled, each %v\n", lab.Len(), len(lab.ClassNames),
		strings.Join(lab.ClassNames, ", "), unl.Len(), lab.Shape)
	newModel := func() (*vat.Model, error) {
		return vat.Sequential(lab.Shape, o.seed,
			vat.Conv2D(16, 3, vat.Same), vat.ReLU(), vat.MaxPool2D(2),
			vat.Conv2D(32, 3, vat.Same), vat.ReLU(), vat.MaxPool2D(2),
			vat.Flatten(), vat.Dense(64), vat.ReLU(), vat.Dense(len(lab.ClassNames)))
	}
	m, err := newModel()
	if err != nil {
		return nil, err
	}
	if err := m.SetPreprocessing(*lab.Preprocessing); err != nil {
		return nil, err
	}
	cfg := vat.SemiSupervisedConfig{Iterations: o.iterations, LabeledBatch: o.batch, UnlabeledBatch: 4 * o.batch,
		VAT: &vat.VATConfig{}, EpsSearch: vat.EpsSearch{Off: !o.epsSearch}, EvalEvery: max(1, o.iterations/5), Seed: o.seed}
	if o.epsSearch {
		fmt.Fprintf(stderr, "choosing VAT's ε from the labeled images first (-eps-search=false skips it)\n")
	}
	cfg.OnEval = func(r vat.Report) {
		fmt.Fprintf(stderr, "iteration %d: training loss %.4f (CE %.4f, LDS %.4f)\n", r.Iteration, r.TrainLoss, r.TrainCE, r.TrainLDS)
	}
	tr, err := vat.NewSemiTrainer(m, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := tr.Fit(ctx, lab, unl, nil); err != nil {
		return nil, err
	}
	for _, c := range tr.EpsChoices() {
		mark := ""
		if c.Chosen {
			mark = " (chosen)"
		}
		fmt.Fprintf(stdout, "EpsScale %g (ε %.3g): held-out accuracy %.1f %%, cross-entropy %.3f%s\n", c.EpsScale, c.Eps, 100*c.Accuracy, c.Loss, mark)
	}
	v := tr.Config().VAT
	fmt.Fprintf(stdout, "trained %d iterations; VAT's ε %.3g (probe %v)\n", o.iterations, v.Eps, v.Probe)
	ev, err := m.Evaluate(lab)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "accuracy on the labeled images: %.1f %%\n", 100*ev.Accuracy)
	if err := m.Save(o.model); err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "saved %s\n", o.model)
	return m, nil
}

// predict classifies every image file below o.predict and writes the CSV.
func predict(m *vat.Model, o *options, stdout io.Writer) error {
	var paths []string
	err := filepath.WalkDir(o.predict, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp":
			if !d.IsDir() {
				paths = append(paths, path)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return fmt.Errorf("%s has no images", o.predict)
	}
	out, err := os.Create(o.csv)
	if err != nil {
		return err
	}
	w := csv.NewWriter(out)
	w.Write([]string{"file", "class", "probability"})
	for _, p := range paths {
		img, err := decode(p)
		if err != nil {
			out.Close()
			return err
		}
		pred, err := m.ClassifyImages([]image.Image{img})
		if err != nil {
			out.Close()
			return fmt.Errorf("%s: %w", p, err)
		}
		rel, _ := filepath.Rel(o.predict, p)
		w.Write([]string{rel, pred[0].Name, strconv.FormatFloat(float64(pred[0].Probabilities[pred[0].Class]), 'f', 4, 32)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "classified %d images into %s\n", len(paths), o.csv)
	return nil
}

// decode reads one image with the formats LoadImageFolder reads,
// refusing a header over 8192 pixels a side before decoding it.
func decode(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if cfg.Width > 8192 || cfg.Height > 8192 {
		return nil, fmt.Errorf("%s: %d×%d pixels: want each side at most 8192", path, cfg.Width, cfg.Height)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return img, nil
}
