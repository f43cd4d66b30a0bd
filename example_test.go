package vat_test

import (
	"context"
	"fmt"
	"log"

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
		VAT:    &vat.VATConfig{}, // the seed's ξ = 10, ε = 1, one power iteration
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
