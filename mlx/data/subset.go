package data

import "fmt"

// Subset returns a new dataset named name holding the given rows of d, in that order
// (rows may repeat). Its columns are copies: changing one dataset leaves the other as it is.
// It is how a held-out split is carved from a training set, e.g. the last 10000 rows of
// MNIST's training images as a validation set.
func (d *Dataset) Subset(name string, rows []int) (*Dataset, error) {
	if len(rows) == 0 {
		return nil, fmt.Errorf("data.Subset(%q) of %q: no rows", name, d.name)
	}
	for _, r := range rows {
		if r < 0 || r >= d.n {
			return nil, fmt.Errorf("data.Subset(%q) of %q: row %d out of range [0, %d)", name, d.name, r, d.n)
		}
	}
	take := func(cols []Column) []Column {
		out := make([]Column, len(cols))
		for i, c := range cols {
			out[i].Dims = append([]int(nil), c.Dims...)
			if c.Int32 != nil {
				out[i].Int32 = takeRows(c.Int32, c.rowSize(), rows)
			} else {
				out[i].Float32 = takeRows(c.Float32, c.rowSize(), rows)
			}
		}
		return out
	}
	return New(name, take(d.inputs), take(d.labels))
}

// Range returns the rows [from, to) as a slice of row indices, for [Dataset.Subset].
func Range(from, to int) []int {
	rows := make([]int, 0, max(to-from, 0))
	for r := from; r < to; r++ {
		rows = append(rows, r)
	}
	return rows
}
