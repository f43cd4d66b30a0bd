package vat_test

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"log"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat"
)

// Train the Keras MNIST CNN with VAT on a slice of MNIST and evaluate it.
func Example() {
	train, test, err := vat.LoadMNIST("") // the GoMNIST module's copy
	if err != nil {
		log.Fatal(err)
	}
	model, err := vat.NewModel(vat.ModelConfig{Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	trainer, err := vat.NewTrainer(model, vat.TrainConfig{
		Epochs: 1,
		VAT:    &vat.VATConfig{}, // the Keras original's ξ = 10, ε = 1, one power iteration
		Seed:   1,
	})
	if err != nil {
		log.Fatal(err)
	}
	history, err := trainer.Fit(context.Background(), train.Head(1280), test.Head(500))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("epochs:", len(history))
	fmt.Println("better than chance:", history[0].TestAccuracy > 0.3)

	labels, err := model.Predict(test.Images[:3*28*28])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("predictions:", len(labels))
	// Output:
	// epochs: 1
	// better than chance: true
	// predictions: 3
}

// Add VAT to a network of your own, built from Gorgonia's stock ops: a
// two-layer perceptron on a batch of 8 vectors of 20 features. forward
// builds the network on any input with the same weights; the term's LDS is
// added to the cross-entropy and the total differentiated as usual.
func ExampleNewVATTerm() {
	g := gorgonia.NewGraph()
	x := gorgonia.NewMatrix(g, gorgonia.Float32, gorgonia.WithShape(8, 20), gorgonia.WithName("x"),
		gorgonia.WithInit(gorgonia.Gaussian(0, 1)))
	y := gorgonia.NewMatrix(g, gorgonia.Float32, gorgonia.WithShape(8, 3), gorgonia.WithName("y"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(8, 3), tensor.WithBacking([]float32{
			1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0}))))
	w1 := gorgonia.NewMatrix(g, gorgonia.Float32, gorgonia.WithShape(20, 16), gorgonia.WithName("w1"),
		gorgonia.WithInit(gorgonia.GlorotU(1)))
	w2 := gorgonia.NewMatrix(g, gorgonia.Float32, gorgonia.WithShape(16, 3), gorgonia.WithName("w2"),
		gorgonia.WithInit(gorgonia.GlorotU(1)))
	forward := func(in *gorgonia.Node) (*gorgonia.Node, error) {
		h, err := gorgonia.Mul(in, w1)
		if err != nil {
			return nil, err
		}
		if h, err = gorgonia.Tanh(h); err != nil {
			return nil, err
		}
		return gorgonia.Mul(h, w2) // logits: no softmax
	}
	logits, err := forward(x)
	if err != nil {
		log.Fatal(err)
	}
	ce, err := vat.CrossEntropy(logits, y)
	if err != nil {
		log.Fatal(err)
	}
	term, err := vat.NewVATTerm(x, logits, forward, vat.VATConfig{Eps: 2}, 1)
	if err != nil {
		log.Fatal(err)
	}
	loss := gorgonia.Must(gorgonia.Add(ce, term.LDS)) // CE + α·LDS with α = 1
	if _, err := gorgonia.Grad(loss, w1, w2); err != nil {
		log.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g, gorgonia.BindDualValues(w1, w2))
	defer vm.Close()
	term.Resample() // a new random direction before every step
	if err := vm.RunAll(); err != nil {
		log.Fatal(err)
	}
	r := term.RAdv.Value().Data().([]float32)[:20] // the first sample's perturbation
	var norm float64
	for _, v := range r {
		norm += float64(v) * float64(v)
	}
	fmt.Printf("LDS > 0: %v, |r_adv| = %.3f\n", term.LDS.Value().Data().(float32) > 0, math.Sqrt(norm))
	// Output:
	// LDS > 0: true, |r_adv| = 2.000
}

// Define a network from the package's layers and train it with VAT.
func ExampleSequential() {
	train, test, err := vat.LoadMNIST("")
	if err != nil {
		log.Fatal(err)
	}
	m, err := vat.Sequential([]int{1, 28, 28}, 1,
		vat.Conv2D(8, 3, vat.Same), vat.ReLU(), vat.MaxPool2D(2),
		vat.Flatten(), vat.Dense(32), vat.ReLU(), vat.Dense(10))
	if err != nil {
		log.Fatal(err)
	}
	trainer, err := vat.NewTrainer(m, vat.TrainConfig{Epochs: 1, VAT: &vat.VATConfig{}, Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	history, err := trainer.Fit(context.Background(), train.Head(1280), test.Head(500))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("parameters:", m.NumParams(), "classes:", m.Classes())
	fmt.Println("better than chance:", history[0].TestAccuracy > 0.3)
	// Output:
	// parameters: 50618 classes: 10
	// better than chance: true
}

// Save a model's weights, rebuild it from the file alone, and continue a
// training run from a checkpoint.
func ExampleModel_Save() {
	dir, err := os.MkdirTemp("", "vat-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	model, err := vat.Sequential([]int{784}, 1, vat.Dense(32), vat.ReLU(), vat.Dense(10))
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(dir, "mlp.safetensors")
	if err := model.Save(path); err != nil {
		log.Fatal(err)
	}
	loaded, err := vat.LoadModel(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(loaded.StateDictNames(), loaded.NumParams())

	train, _, err := vat.LoadMNIST("")
	if err != nil {
		log.Fatal(err)
	}
	train = train.Head(512)
	trainer, err := vat.NewTrainer(loaded, vat.TrainConfig{Epochs: 2, Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := trainer.TrainEpoch(context.Background(), train); err != nil {
		log.Fatal(err)
	}
	ckpt := filepath.Join(dir, "run.ckpt")
	if err := trainer.Checkpoint(ckpt); err != nil {
		log.Fatal(err)
	}
	resumed, err := vat.Resume(ckpt, vat.TrainConfig{}) // e.g. in another process
	if err != nil {
		log.Fatal(err)
	}
	history, err := resumed.Fit(context.Background(), train, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(resumed.History()), "epochs in all,", len(history), "after the resume")
	// Output:
	// [0.weight 0.bias 2.weight 2.bias] 25450
	// 2 epochs in all, 1 after the resume
}

// Train semi-supervised with another optimizer and schedule, stop
// mid-run, checkpoint, and continue in a new trainer from the file: the
// same run as one never stopped.
func ExampleSemiTrainer_Checkpoint() {
	train, test, err := vat.LoadMNIST("")
	if err != nil {
		log.Fatal(err)
	}
	split, err := vat.SplitLabeled(train.Head(2000), 100, vat.Classes, 1)
	if err != nil {
		log.Fatal(err)
	}
	newModel := func() *vat.Model {
		m, err := vat.Sequential([]int{784}, 1, vat.Dense(64), vat.BatchNorm(), vat.ReLU(), vat.Dense(10))
		if err != nil {
			log.Fatal(err)
		}
		return m
	}
	cfg := vat.SemiSupervisedConfig{Iterations: 40, LabeledBatch: 50, UnlabeledBatch: 100, EvalEvery: 20,
		VAT:       &vat.VATConfig{Eps: 2},
		Optimizer: vat.SGD{LR: 0.05, Momentum: 0.9},
		Schedule:  vat.WarmUp{Steps: 5, Then: vat.StepDecay{Every: 10, Factor: 0.8}}}
	whole, err := vat.NewSemiTrainer(newModel(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := whole.Fit(context.Background(), split.Labeled, split.Unlabeled, test.Head(500)); err != nil {
		log.Fatal(err)
	}

	ctx, stop := context.WithCancel(context.Background())
	cfg.OnStep = func(s vat.StepInfo) {
		if s.Iteration == 25 {
			stop() // as Ctrl-C would
		}
	}
	first, err := vat.NewSemiTrainer(newModel(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	_, err = first.Fit(ctx, split.Labeled, split.Unlabeled, test.Head(500))
	fmt.Println("stopped:", errors.Is(err, context.Canceled), "at iteration", first.Iteration())
	path := filepath.Join(os.TempDir(), "vat-example-semi.ckpt")
	defer os.Remove(path)
	if err := first.Checkpoint(path); err != nil {
		log.Fatal(err)
	}
	resumed, err := vat.ResumeSemi(path, vat.SemiSupervisedConfig{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := resumed.Fit(context.Background(), split.Labeled, split.Unlabeled, test.Head(500)); err != nil {
		log.Fatal(err)
	}
	a, b := whole.History(), resumed.History()
	fmt.Println("same test accuracy as the uninterrupted run:", a[len(a)-1].TestAccuracy == b[len(b)-1].TestAccuracy)
	// Output:
	// stopped: true at iteration 25
	// same test accuracy as the uninterrupted run: true
}

// Let SemiTrainer choose VAT's ε from the labels: with the zero VATConfig
// it first trains one short model per candidate scale on 70 % of the
// labels, scores each on the other 30 %, and then trains the run's model on
// all of them with the scale chosen (SemiSupervisedConfig.EpsSearch).
func ExampleSemiTrainer_EpsChoices() {
	train, _, err := vat.LoadMNIST("")
	if err != nil {
		log.Fatal(err)
	}
	split, err := vat.SplitLabeled(train.Head(3000), 100, vat.Classes, 1)
	if err != nil {
		log.Fatal(err)
	}
	m, err := vat.Sequential([]int{784}, 1, vat.Dense(64), vat.ReLU(), vat.Dense(10))
	if err != nil {
		log.Fatal(err)
	}
	tr, err := vat.NewSemiTrainer(m, vat.SemiSupervisedConfig{Iterations: 200, LabeledBatch: 50, UnlabeledBatch: 100,
		VAT: &vat.VATConfig{}, EpsSearch: vat.EpsSearch{Iterations: 100}})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := tr.Fit(context.Background(), split.Labeled, split.Unlabeled, nil); err != nil {
		log.Fatal(err)
	}
	scale := vat.DataScale(split.Labeled, split.Unlabeled)
	for _, c := range tr.EpsChoices() {
		fmt.Printf("EpsScale %g (ε %.2f) chosen: %v\n", c.EpsScale, c.Eps, c.Chosen)
	}
	fmt.Printf("the run's ε: %.2f of the data's scale\n", tr.Config().VAT.Eps/scale)
	// Output:
	// EpsScale 0.05 (ε 0.36) chosen: true
	// EpsScale 0.2 (ε 1.45) chosen: false
	// EpsScale 0.7 (ε 5.07) chosen: false
	// the run's ε: 0.05 of the data's scale
}

// Read a table with a label column, standardize it with the training
// set's statistics, and look at what came out.
func ExampleLoadCSV() {
	dir, err := os.MkdirTemp("", "vat-example-csv")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "iris.csv")
	table := "sepal_length,sepal_width,species\n5.1,3.5,setosa\n7.0,3.2,versicolor\n6.3,3.3,virginica\n4.9,3.0,setosa\n"
	if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
		log.Fatal(err)
	}
	d, err := vat.LoadCSV(path, vat.CSVOptions{Label: "species"})
	if err != nil {
		log.Fatal(err)
	}
	std, err := vat.FitStandardization(d)
	if err != nil {
		log.Fatal(err)
	}
	d, _ = std.Apply(d)
	fmt.Println("samples:", d.Len(), "features:", d.FeatureNames, "classes:", d.ClassNames, "labels:", d.Labels)
	fmt.Printf("first sample, standardized: %.2f\n", d.Images[:2])

	// A broken cell is named by its row and column.
	os.WriteFile(path, []byte("a,b,y\n1,2,0\n3,oops,1\n"), 0o644)
	_, err = vat.LoadCSV(path, vat.CSVOptions{Label: "y"})
	fmt.Println(strings.TrimPrefix(err.Error(), "vat: "+path+": "))
	// Output:
	// samples: 4 features: [sepal_length sepal_width] classes: [setosa versicolor virginica] labels: [0 1 2 0]
	// first sample, standardized: [-0.84 1.39]
	// row 3, column 2 ("b"): "oops" is not a finite number
}

// Load a folder of images in class subfolders, train on it, and classify a
// new image.Image the way the folder's images were prepared.
func ExampleLoadImageFolder() {
	root, err := os.MkdirTemp("", "vat-example-images")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	// Two classes of 8×8 gray images: dark and light.
	gray := func(v uint8) image.Image {
		img := image.NewGray(image.Rect(0, 0, 8, 8))
		for i := range img.Pix {
			img.Pix[i] = v + uint8(i%5)
		}
		return img
	}
	for class, base := range map[string]uint8{"dark": 20, "light": 220} {
		os.MkdirAll(filepath.Join(root, class), 0o755)
		for i := 0; i < 6; i++ {
			f, _ := os.Create(filepath.Join(root, class, fmt.Sprintf("%d.png", i)))
			png.Encode(f, gray(base+uint8(3*i)))
			f.Close()
		}
	}
	train, _, err := vat.LoadImageFolder(root, vat.ImageFolderOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(train.Len(), "images of", train.Shape, "in classes", train.ClassNames)
	m, err := vat.Sequential(train.Shape, 1, vat.Flatten(), vat.Dense(2))
	if err != nil {
		log.Fatal(err)
	}
	tr, err := vat.NewTrainer(m, vat.TrainConfig{Epochs: 20, BatchSize: 4, Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := tr.Fit(context.Background(), train, nil); err != nil {
		log.Fatal(err)
	}
	if err := m.SetPreprocessing(*train.Preprocessing); err != nil { // saved by m.Save too
		log.Fatal(err)
	}
	p, err := m.ClassifyImages([]image.Image{gray(240), gray(5)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p[0].Name, p[1].Name)
	// Output:
	// 12 images of [1 8 8] in classes [dark light]
	// light dark
}
