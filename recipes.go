package vat

// A Recipe is a published semi-supervised VAT setting for MNIST with 100
// labels (10 per class): its network, training configuration and source,
// and what the source leaves unknown. Recipes returns them;
// examples/semisup runs them by name (-preset).
type Recipe struct {
	// Name is the preset's name: "official-2015" or "tpami-2018".
	Name string
	// Source says where the setting comes from.
	Source string
	// Unknown says what the source leaves open and what the recipe
	// chose for it.
	Unknown string
	// Reported is the test error the source reports.
	Reported string
	// Network describes the layers.
	Network string
	// Layers returns fresh layers of the network, on 1×28×28 inputs.
	Layers func() []Layer
	// Config is the training configuration (Seed left to the caller).
	Config SemiSupervisedConfig
}

// Model returns the recipe's network, initialized from seed.
func (r Recipe) Model(seed uint64) (*Model, error) {
	return Sequential([]int{1, ImageRows, ImageCols}, seed, r.Layers()...)
}

// Recipes returns the published settings for MNIST with 100 labels, each
// with its schedule and number of updates (SPEC.md has the sources in
// detail):
//
//   - official-2015: the ICLR 2016 paper's code (takerum/vat,
//     train_mnist_semisup.py): MLP 784-1200-1200-10, Dense → BatchNorm →
//     ReLU, batch norm on the logits too; batches of 100 labeled and 250
//     unlabeled; 50,000 updates; Adam at 0.002 multiplied by 0.9 every 500
//     updates, β₁ 0.9 throughout; ε 0.3, ξ 1e-6 (in float64: here the
//     Exact probe, which is what ξ → 0 computes), one power iteration, α
//     1; batch norm's population statistics recomputed after training.
//     Reported: about 2.1 % error.
//   - tpami-2018: the TPAMI paper (arXiv:1704.03976, appendix C; its
//     author in takerum/vat issue 3): MLP 784-1200-600-300-150-10 with
//     batch norm and Gaussian noise of standard deviation 0.5 on every
//     hidden layer, ε 5. Reported: 1.36 %. Its code was never released:
//     the schedule, the number of updates and the batch sizes are the
//     official-2015 recipe's.
func Recipes() []Recipe {
	return []Recipe{
		{
			Name:     "official-2015",
			Source:   "takerum/vat (Theano), train_mnist_semisup.py and models/fnn_mnist_semisup.py; ICLR 2016 paper",
			Reported: "about 2.1 % (its author, takerum/vat issue 3)",
			Unknown: "the code's printed error is on 1,000 images held out of the training set; here the unlabeled pool is " +
				"the other 59,900 training images and the error is on MNIST's test set",
			Network: "MLP 784-1200-1200-10, Dense → BatchNorm → ReLU, BatchNorm on the logits",
			Layers: func() []Layer {
				return []Layer{Flatten(), Dense(1200), BatchNorm(), ReLU(), Dense(1200), BatchNorm(), ReLU(), Dense(Classes), BatchNorm()}
			},
			Config: SemiSupervisedConfig{Iterations: 50000, LabeledBatch: 100, UnlabeledBatch: 250,
				VAT:       &VATConfig{Eps: 0.3, Probe: Exact},
				Optimizer: Adam{LR: 0.002}, Schedule: StepDecay{Every: 500, Factor: 0.9}, EvalEvery: 1000},
		},
		{
			Name:     "tpami-2018",
			Source:   "Miyato et al., TPAMI 2018 (arXiv:1704.03976), appendix C; its author in takerum/vat issue 3",
			Reported: "1.36 %",
			Unknown: "no code was released: the number of updates, the schedule, the batch sizes and whether population " +
				"statistics were used are unknown; the recipe takes official-2015's",
			Network: "MLP 784-1200-600-300-150-10, Dense → BatchNorm → ReLU → GaussianNoise(0.5) on every hidden layer",
			Layers: func() []Layer {
				ls := []Layer{Flatten()}
				for _, units := range []int{1200, 600, 300, 150} {
					ls = append(ls, Dense(units), BatchNorm(), ReLU(), GaussianNoise(0.5))
				}
				return append(ls, Dense(Classes))
			},
			Config: SemiSupervisedConfig{Iterations: 50000, LabeledBatch: 100, UnlabeledBatch: 250,
				VAT:       &VATConfig{Eps: 5, Probe: Exact},
				Optimizer: Adam{LR: 0.002}, Schedule: StepDecay{Every: 500, Factor: 0.9}, EvalEvery: 1000},
		},
	}
}
