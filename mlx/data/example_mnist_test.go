package data_test

import (
	"fmt"

	"github.com/goptlab/goptlab/mlx/data"
)

// MNIST is on disk once `go mod download` has run (the project's set-up does): it ships
// in a Go module. LayoutNHWC gives images for models.CNN; LayoutFlat gives rows for an MLP.
func ExampleLoadMNIST() {
	train, test, err := data.LoadMNIST("", data.LayoutNHWC)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(train.Name(), train.Len(), train.Inputs()[0].Dims, train.Labels()[0].Dims)
	fmt.Println(test.Name(), test.Len())
	fmt.Println("first training label:", train.Labels()[0].Int32[0])
	// Output:
	// mnist-train 60000 [28 28 1] [1]
	// mnist-test 10000
	// first training label: 5
}
