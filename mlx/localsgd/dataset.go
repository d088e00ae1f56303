package localsgd

import (
	"fmt"

	"github.com/goptlab/goptlab/mlx/data"
)

// ShardedDataset turns a dataset and its split over K workers into a dataset whose
// examples each hold one example of every worker's shard, so that mlx/train's loop feeds
// local SGD unchanged: its batches have shape [batch, K, ...] (use Config.WorkerAxis = 1).
// Row r holds, for worker k, the example shards.Indices[k][r mod len(shard k)]: the
// dataset has as many rows as the largest shard, and smaller shards repeat within an
// epoch (each worker takes the same number of local steps; the FedAvg weights still come
// from the shard sizes, see [data.Shards.Sizes]).
func ShardedDataset(ds *data.Dataset, shards data.Shards) (*data.Dataset, error) {
	if ds == nil {
		return nil, fmt.Errorf("localsgd.ShardedDataset: the dataset is nil")
	}
	K := shards.Workers()
	if K < 1 {
		return nil, fmt.Errorf("localsgd.ShardedDataset: shards has no worker")
	}
	rows := 0
	for k, idx := range shards.Indices {
		if len(idx) == 0 {
			return nil, fmt.Errorf("localsgd.ShardedDataset: shards.Indices[%d] is empty", k)
		}
		for _, r := range idx {
			if r < 0 || r >= ds.Len() {
				return nil, fmt.Errorf("localsgd.ShardedDataset: shards.Indices[%d] holds row %d, out of range [0, %d)",
					k, r, ds.Len())
			}
		}
		rows = max(rows, len(idx))
	}
	order := make([]int, 0, rows*K)
	for r := range rows {
		for k := range K {
			order = append(order, shards.Indices[k][r%len(shards.Indices[k])])
		}
	}
	regroup := func(cols []data.Column) ([]data.Column, error) {
		out := make([]data.Column, len(cols))
		for i, c := range cols {
			size := 1
			for _, d := range c.Dims {
				size *= d
			}
			nc := data.Column{Dims: append([]int{K}, c.Dims...)}
			var err error
			if c.Float32 != nil {
				nc.Float32, err = data.TakeRows(c.Float32, size, order)
			} else {
				nc.Int32, err = data.TakeRows(c.Int32, size, order)
			}
			if err != nil {
				return nil, fmt.Errorf("localsgd.ShardedDataset: column %d: %w", i, err)
			}
			out[i] = nc
		}
		return out, nil
	}
	inputs, err := regroup(ds.Inputs())
	if err != nil {
		return nil, err
	}
	labels, err := regroup(ds.Labels())
	if err != nil {
		return nil, err
	}
	return data.New(fmt.Sprintf("%s/sharded(K=%d)", ds.Name(), K), inputs, labels)
}
