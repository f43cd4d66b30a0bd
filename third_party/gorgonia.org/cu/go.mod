module gorgonia.org/cu

go 1.21

require (
	github.com/google/uuid v1.3.0
	github.com/pkg/errors v0.9.1
	gonum.org/v1/gonum v0.14.0
)
