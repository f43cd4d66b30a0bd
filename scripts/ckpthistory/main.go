// Command ckpthistory prints the reports a semi-supervised checkpoint
// holds (a run of examples/semisup in progress, say): its iteration, ε and
// probe (or that it is supervised), and every report's training losses and test error.
//
//	go run ./scripts/ckpthistory out/semisup/checkpoints/vat-1.ckpt
package main

import (
	"fmt"
	"os"

	"github.com/org/vat"
)

func main() {
	for _, p := range os.Args[1:] {
		t, err := vat.ResumeSemi(p, vat.SemiSupervisedConfig{})
		if err != nil {
			fmt.Println(p, err)
			continue
		}
		if v := t.Config().VAT; v != nil {
			fmt.Println(p, "iteration", t.Iteration(), "eps", v.Eps, v.Probe)
		} else {
			fmt.Println(p, "iteration", t.Iteration(), "supervised")
		}
		for _, r := range t.History() {
			fmt.Printf("  %5d  train CE %.4f LDS %.4f  test error %.2f %%\n", r.Iteration, r.TrainCE, r.TrainLDS, 100*(1-r.TestAccuracy))
		}
	}
}
