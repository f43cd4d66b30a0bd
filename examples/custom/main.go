// Command custom trains a network of its own, defined in this file from
// Gorgonia's stock ops, with Virtual Adversarial Training on MNIST: the
// package's NewVATTerm adds VAT's term to the graph, Gorgonia's Adam solver
// trains it. It shows what a Gorgonia user writes to add VAT to a network
// (README: "VAT on your own network").
//
//	go run ./examples/custom -epochs 1 -train-limit 2000 -test-limit 1000
//
// It writes results.json (in the shape of examples/mnist's) and
// accuracy.png into -out.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat"
	"github.com/org/vat/internal/results"
	"github.com/org/vat/mnist"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// The network, top to bottom: a 3×3 convolution with 16 filters ("same"
// padding) and ReLU, 2×2 max-pooling, and a dense layer to 10 logits.
// forward builds it on any batch node with the same weights, as NewVATTerm
// requires; the batch is N×784 and is reshaped to N×1×28×28 here.
type network struct {
	kernel, wOut, bOut *G.Node
}

const filters = 16

// newNetwork adds the weights to g, bound to the tensors ws (shared by the
// training and the evaluation graphs, so that both see every update).
func newNetwork(g *G.ExprGraph, ws []*tensor.Dense) *network {
	node := func(t *tensor.Dense, name string) *G.Node {
		return G.NewTensor(g, G.Float32, t.Dims(), G.WithShape(t.Shape()...), G.WithValue(t), G.WithName(name))
	}
	return &network{node(ws[0], "conv/kernel"), node(ws[1], "out/kernel"), node(ws[2], "out/bias")}
}

func (n *network) forward(x *G.Node) (*G.Node, error) {
	batch := x.Shape()[0]
	h, err := G.Reshape(x, tensor.Shape{batch, 1, 28, 28})
	if err == nil {
		h, err = G.Conv2d(h, n.kernel, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1})
	}
	if err == nil {
		h, err = G.Rectify(h)
	}
	if err == nil {
		h, err = G.MaxPool2D(h, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2})
	}
	if err == nil {
		h, err = G.Reshape(h, tensor.Shape{batch, filters * 14 * 14})
	}
	if err == nil {
		h, err = G.Mul(h, n.wOut)
	}
	if err == nil {
		h, err = G.BroadcastAdd(h, n.bOut, nil, []byte{0}) // logits: the losses take them as they are
	}
	return h, err
}

func (n *network) weights() G.Nodes { return G.Nodes{n.kernel, n.wOut, n.bOut} }

// initWeights draws Glorot-uniform kernels and zero biases from seed
// (Gorgonia's own initializers seed from the clock).
func initWeights(seed uint64) []*tensor.Dense {
	rng := rand.New(rand.NewPCG(seed, 1))
	glorot := func(fanIn, fanOut int, shape ...int) *tensor.Dense {
		l := math.Sqrt(6 / float64(fanIn+fanOut))
		d := make([]float32, tensor.Shape(shape).TotalSize())
		for i := range d {
			d[i] = float32(l * (2*rng.Float64() - 1))
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
	}
	return []*tensor.Dense{
		glorot(9, 9*filters, filters, 1, 3, 3),
		glorot(filters*14*14, 10, filters*14*14, 10),
		tensor.New(tensor.WithShape(10), tensor.Of(tensor.Float32)),
	}
}

// trainer is the training graph for batches of a fixed size: CE + α·LDS.
type trainer struct {
	g        *G.ExprGraph
	x, y     *tensor.Dense
	net      *network
	ce, loss *G.Node
	term     *vat.VATTerm
	vm       G.VM
}

func newTrainer(ws []*tensor.Dense, batch int, cfg vat.VATConfig, seed uint64) (*trainer, error) {
	t := &trainer{g: G.NewGraph(), x: tensor.New(tensor.WithShape(batch, 784), tensor.Of(tensor.Float32)),
		y: tensor.New(tensor.WithShape(batch, 10), tensor.Of(tensor.Float32))}
	x := G.NewMatrix(t.g, G.Float32, G.WithShape(batch, 784), G.WithValue(t.x), G.WithName("x"))
	y := G.NewMatrix(t.g, G.Float32, G.WithShape(batch, 10), G.WithValue(t.y), G.WithName("y"))
	t.net = newNetwork(t.g, ws)
	logits, err := t.net.forward(x)
	if err != nil {
		return nil, err
	}
	if t.ce, err = vat.CrossEntropy(logits, y); err != nil {
		return nil, err
	}
	// VAT: the term needs only x, the clean logits and forward.
	if t.term, err = vat.NewVATTerm(x, logits, t.net.forward, cfg, seed); err != nil {
		return nil, err
	}
	alpha := G.NewConstant(float32(cfg.Alpha))
	if t.loss, err = G.Add(t.ce, G.Must(G.Mul(alpha, t.term.LDS))); err != nil {
		return nil, err
	}
	if _, err = G.Grad(t.loss, t.net.weights()...); err != nil {
		return nil, err
	}
	t.vm = G.NewTapeMachine(t.g, G.BindDualValues(t.net.weights()...))
	return t, nil
}

// evaluator computes logits for batches of a fixed size.
type evaluator struct {
	x      *tensor.Dense
	logits *G.Node
	vm     G.VM
}

func newEvaluator(ws []*tensor.Dense, batch int) (*evaluator, error) {
	g := G.NewGraph()
	e := &evaluator{x: tensor.New(tensor.WithShape(batch, 784), tensor.Of(tensor.Float32))}
	x := G.NewMatrix(g, G.Float32, G.WithShape(batch, 784), G.WithValue(e.x), G.WithName("x"))
	var err error
	if e.logits, err = newNetwork(g, ws).forward(x); err != nil {
		return nil, err
	}
	e.vm = G.NewTapeMachine(g)
	return e, nil
}

// options are the parsed flags.
type options struct {
	epochs, batch         int
	trainLimit, testLimit int
	eps, lr               float64
	seed                  uint64
	data, out             string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("custom", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&o.epochs, "epochs", 3, "epochs (>= 1)")
	fs.IntVar(&o.batch, "batch", 16, "batch size (1 to 4096; the last partial batch of an epoch is skipped)")
	fs.IntVar(&o.trainLimit, "train-limit", 0, "use the first N training images (0 = all 60,000)")
	fs.IntVar(&o.testLimit, "test-limit", 0, "use the first N test images (0 = all 10,000)")
	fs.Float64Var(&o.eps, "eps", 1, "VAT: length of the adversarial perturbation (> 0)")
	fs.Float64Var(&o.lr, "lr", 5e-3, "Adam's learning rate (> 0)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the weights, shuffling and VAT noise")
	fs.StringVar(&o.data, "data", "", "folder with the four MNIST IDX files (default: the GoMNIST module's copy)")
	fs.StringVar(&o.out, "out", "out/custom", "folder for results.json and accuracy.png")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "usage: custom [flags]\n\nTrains a network defined in examples/custom with VAT on MNIST.\n\n")
			fs.SetOutput(stderr)
			fs.PrintDefaults()
		}
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	case o.epochs < 1:
		return nil, fmt.Errorf("-epochs %d: want >= 1", o.epochs)
	case o.batch < 1 || o.batch > 4096:
		return nil, fmt.Errorf("-batch %d: want 1 to 4096", o.batch)
	case o.trainLimit < 0:
		return nil, fmt.Errorf("-train-limit %d: want >= 0 (0 = all)", o.trainLimit)
	case o.testLimit < 0:
		return nil, fmt.Errorf("-test-limit %d: want >= 0 (0 = all)", o.testLimit)
	case !(o.eps > 0) || math.IsInf(o.eps, 0):
		return nil, fmt.Errorf("-eps %v: want a finite number > 0", o.eps)
	case !(o.lr > 0) || math.IsInf(o.lr, 0):
		return nil, fmt.Errorf("-lr %v: want a finite number > 0", o.lr)
	case o.out == "":
		return nil, fmt.Errorf("-out: want a folder")
	}
	return o, nil
}

// run is the whole program; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		err = train(o, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	return 0
}

func train(o *options, stdout, stderr io.Writer) error {
	trainSet, testSet, err := mnist.Load(o.data)
	if err != nil {
		return err
	}
	trainSet, testSet = trainSet.Head(o.trainLimit), testSet.Head(o.testLimit)
	if trainSet.Len() < o.batch {
		return fmt.Errorf("-batch %d: more than the %d training images", o.batch, trainSet.Len())
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("-out: %w", err)
	}
	cfg := vat.VATConfig{Eps: o.eps, Alpha: 1}
	ws := initWeights(o.seed)
	tr, err := newTrainer(ws, o.batch, cfg, o.seed)
	if err != nil {
		return err
	}
	defer tr.vm.Close()
	solver := G.NewAdamSolver(G.WithLearnRate(o.lr))
	shuffle := rand.New(rand.NewPCG(o.seed, 2))

	res := results.New(trainSet.Len(), testSet.Len())
	run := results.Run{Name: "cnn+vat", Options: results.RunOptions{VAT: true, Eps: &cfg.Eps, Alpha: &cfg.Alpha,
		Epochs: o.epochs, Batch: o.batch, Seed: o.seed, Optimizer: fmt.Sprintf("adam(lr=%g)", o.lr)}}
	var epochs []vat.Report
	for e := 1; e <= o.epochs; e++ {
		r := vat.Report{Epoch: e}
		perm := shuffle.Perm(trainSet.Len())
		steps := trainSet.Len() / o.batch
		start := time.Now()
		for s := 0; s < steps; s++ {
			setBatch(tr.x.Data().([]float32), tr.y.Data().([]float32), trainSet, perm[s*o.batch:(s+1)*o.batch])
			tr.term.Resample() // a new random direction every step
			tr.vm.Reset()
			if err := tr.vm.RunAll(); err != nil {
				return fmt.Errorf("epoch %d, step %d: %w", e, s+1, err)
			}
			if err := solver.Step(G.NodesToValueGrads(tr.net.weights())); err != nil {
				return err
			}
			r.TrainLoss += scalar(tr.loss) / float64(steps)
			r.TrainCE += scalar(tr.ce) / float64(steps)
			r.TrainLDS += scalar(tr.term.LDS) / float64(steps)
		}
		r.Seconds = time.Since(start).Seconds()
		start = time.Now()
		if r.TestAccuracy, r.TestLoss, err = evaluate(ws, testSet); err != nil {
			return err
		}
		r.EvalSeconds = time.Since(start).Seconds()
		fmt.Fprintf(stderr, "epoch %d/%d: train loss %.4f (CE %.4f, LDS %.4f), test accuracy %.2f %%, %.1f s\n",
			e, o.epochs, r.TrainLoss, r.TrainCE, r.TrainLDS, 100*r.TestAccuracy, r.Seconds)
		epochs = append(epochs, r)
	}
	run.SetEpochs(epochs)
	res.Runs = append(res.Runs, run)
	results.PrintTable(stdout, res)
	return res.Write(o.out)
}

// setBatch copies the images idx of d (flattened) and their one-hot labels.
func setBatch(x, y []float32, d *vat.Dataset, idx []int) {
	clear(y)
	for i, j := range idx {
		copy(x[i*784:(i+1)*784], d.Images[j*784:(j+1)*784])
		y[i*10+int(d.Labels[j])] = 1
	}
}

// evaluate returns the accuracy and mean cross-entropy on d, in batches of
// up to 500 (one graph per batch size).
func evaluate(ws []*tensor.Dense, d *vat.Dataset) (acc, loss float64, err error) {
	evals := map[int]*evaluator{}
	for first := 0; first < d.Len(); first += 500 {
		n := min(500, d.Len()-first)
		e, ok := evals[n]
		if !ok {
			if e, err = newEvaluator(ws, n); err != nil {
				return 0, 0, err
			}
			defer e.vm.Close()
			evals[n] = e
		}
		copy(e.x.Data().([]float32), d.Images[first*784:(first+n)*784])
		e.vm.Reset()
		if err := e.vm.RunAll(); err != nil {
			return 0, 0, err
		}
		z := e.logits.Value().Data().([]float32)
		for i := 0; i < n; i++ {
			row, label := z[i*10:(i+1)*10], int(d.Labels[first+i])
			best, m := 0, math.Inf(-1)
			for k, v := range row {
				m = math.Max(m, float64(v))
				if v > row[best] {
					best = k
				}
			}
			var s float64
			for _, v := range row {
				s += math.Exp(float64(v) - m)
			}
			loss += m + math.Log(s) - float64(row[label])
			if best == label {
				acc++
			}
		}
	}
	return acc / float64(d.Len()), loss / float64(d.Len()), nil
}

// scalar reads a scalar node's value after a run.
func scalar(n *G.Node) float64 {
	switch v := n.Value().Data().(type) {
	case float32:
		return float64(v)
	case []float32:
		return float64(v[0])
	}
	return math.NaN()
}
