package optim

import (
	"fmt"
	"reflect"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/support/exceptions"
)

// This file registers, in GoMLX's exported graph.VJPRegistration map, the gradient rules
// that GoMLX v0.28.8 lacks and that second-order autodiff (AdaHessian's Hessian-vector
// products, the gradient of a gradient) runs into:
//
//   - SelectAndScatterMax/Min: the gradient of max/min pooling is itself a SelectAndScatter
//     node, without a rule. Its VJP with respect to the scattered source is "gather the
//     cotangent at each window's selected position" (the Jacobian of pooling), zero with
//     respect to the operand (the selection is piecewise constant).
//   - BatchNormForTraining: GoMLX's rule produces a fused BatchNormGradient node, which has
//     no rule. We replace the rule with the same gradient written in primitive operations
//     (including the dependence of the batch mean and variance on the input, and the
//     cotangents of the mean and variance outputs), so it can be differentiated again.
//   - Rsqrt, Expm1, Clamp: elementwise rules.
//   - Sign, Floor, Ceil, Round, IsFinite, IsNaN and the comparisons: zero gradient almost
//     everywhere, as GoMLX already does for the logical operations.
//   - Identity: pass-through.
//   - ConvGeneral: GoMLX's rule is kept but extended to the permuted-axes and input-dilated
//     convolutions that the gradient of a convolution creates (see convVJP), including the
//     input dilations [1, 1] of a stride-1 convolution's input gradient (two stacked
//     convolutions, as in models.CNN with two blocks).
//
// Rules already present in GoMLX are left alone, except BatchNormForTraining and
// ConvGeneral. The node parameters (window sizes, epsilon, ...) are private fields of
// GoMLX's nodes: we read them with reflection, and TestVJPNodeParams fails if a GoMLX
// upgrade renames them.
func init() {
	reg := VJPRegistration
	setIfMissing := func(t NodeType, fn VJP) {
		if _, found := reg[t]; !found {
			reg[t] = fn
		}
	}
	setIfMissing(NodeTypeRsqrt, single(rsqrtVJP))
	setIfMissing(NodeTypeExpm1, single(expm1VJP))
	setIfMissing(NodeTypeClamp, single(clampVJP))
	setIfMissing(NodeTypeIdentity, single(func(_, v *Node) []*Node { return []*Node{v} }))
	for _, t := range []NodeType{NodeTypeSign, NodeTypeFloor, NodeTypeCeil, NodeTypeRound,
		NodeTypeIsFinite, NodeTypeIsNaN, NodeTypeEqual, NodeTypeNotEqual, NodeTypeLessThan,
		NodeTypeLessOrEqual, NodeTypeGreaterThan, NodeTypeGreaterOrEqual} {
		setIfMissing(t, zeroGradVJP)
	}
	setIfMissing(NodeTypeSelectAndScatterMax, single(selectAndScatterVJP(compute.ReduceOpMax)))
	setIfMissing(NodeTypeSelectAndScatterMin, single(selectAndScatterVJP(compute.ReduceOpMin)))
	reg[NodeTypeBatchNormForTraining] = batchNormForTrainingVJP
	if orig, found := reg[NodeTypeConvGeneral]; found {
		reg[NodeTypeConvGeneral] = convVJP(orig)
	}
}

// convVJP extends GoMLX's convolution rule to the two kinds of convolution that the gradient
// of a convolution creates and that GoMLX's rule gets wrong, so that second order through a
// convolution panicked:
//
//   - Permuted axes (the kernel gradient is a convolution whose batch axis is the input's
//     channel axis, and so on): GoMLX's rule fails on such layouts. We transpose the operands
//     to the canonical layout (batch, spatial..., channels; kernel spatial..., in, out), apply
//     the rule there, and transpose the results back.
//   - Input dilation (the input gradient of a convolution with strides set, even to 1): GoMLX's
//     rule refuses any input dilations that are set.
//     Such a convolution equals the convolution, without input dilation, of the input dilated
//     explicitly by interior zero-padding; the input's VJP is the strided slice of the padded
//     input's VJP.
//
// Canonical convolutions without input dilation use GoMLX's rule unchanged.
func convVJP(orig VJP) VJP {
	var self VJP
	self = func(node *Node, vjps []*Node, outputShape shapes.Shape) []*Node {
		axes := mustConvAxes(node)
		in := node.Inputs()
		if canonical := canonicalConvAxes(len(axes.InputSpatial)); !reflect.DeepEqual(axes, canonical) {
			permX := append(append([]int{axes.InputBatch}, axes.InputSpatial...), axes.InputChannels)
			permK := append(append([]int(nil), axes.KernelSpatial...), axes.KernelInputChannels, axes.KernelOutputChannels)
			permOut := append(append([]int{axes.OutputBatch}, axes.OutputSpatial...), axes.OutputChannels)
			conv := ConvGeneral(TransposeAllAxes(in[0], permX...), TransposeAllAxes(in[1], permK...), canonical,
				mustIntsField(node, "strides"), mustPaddingsField(node, "paddings"), mustIntsField(node, "inputDilations"),
				mustIntsField(node, "kernelDilations"), mustIntField(node, "channelGroupCount"), mustIntField(node, "batchGroupCount"))
			grads := self(conv, []*Node{TransposeAllAxes(vjps[0], permOut...)}, outputShape)
			if grads[0] != nil {
				grads[0] = TransposeAllAxes(grads[0], inversePerm(permX)...)
			}
			if grads[1] != nil {
				grads[1] = TransposeAllAxes(grads[1], inversePerm(permK)...)
			}
			return grads
		}
		return convInputDilationVJP(orig, node, vjps, outputShape)
	}
	return self
}

// canonicalConvAxes is the layout GoMLX's convolution rule handles: batch, spatial...,
// channels for input and output; spatial..., in, out for the kernel.
func canonicalConvAxes(spatial int) ConvolveAxesConfig {
	axes := ConvolveAxesConfig{InputBatch: 0, InputChannels: spatial + 1, KernelInputChannels: spatial,
		KernelOutputChannels: spatial + 1, OutputBatch: 0, OutputChannels: spatial + 1}
	for i := range spatial {
		axes.InputSpatial = append(axes.InputSpatial, i+1)
		axes.KernelSpatial = append(axes.KernelSpatial, i)
		axes.OutputSpatial = append(axes.OutputSpatial, i+1)
	}
	return axes
}

func inversePerm(perm []int) []int {
	inv := make([]int, len(perm))
	for i, p := range perm {
		inv[p] = i
	}
	return inv
}

// convInputDilationVJP handles input dilation of a canonical convolution (see convVJP).
func convInputDilationVJP(orig VJP, node *Node, vjps []*Node, outputShape shapes.Shape) []*Node {
	dil := mustIntsField(node, "inputDilations")
	if len(dil) == 0 {
		return orig(node, vjps, outputShape)
	}
	// GoMLX's rule refuses any input dilations that are set, even all ones: the input gradient
	// of a stride-1 convolution (e.g. layers.Convolution's, which sets strides to 1) is a
	// convolution with input dilations [1, 1], so second order through two stacked
	// convolutions needs this path too.
	in := node.Inputs()
	x, kernel := in[0], in[1]
	axes := mustConvAxes(node)
	channelGroups, batchGroups := mustIntField(node, "channelGroupCount"), mustIntField(node, "batchGroupCount")
	padAxes := make([]PadAxis, x.Rank())
	sliceAxes := make([]SliceAxisSpec, x.Rank())
	for i := range sliceAxes {
		sliceAxes[i] = AxisRange()
	}
	dilated := false
	for i, axis := range axes.InputSpatial {
		if i < len(dil) && dil[i] > 1 {
			padAxes[axis] = PadAxis{Interior: dil[i] - 1}
			sliceAxes[axis] = AxisRange().Stride(dil[i])
			dilated = true
		}
	}
	padded := x
	if dilated {
		padded = Pad(x, ScalarZero(x.Graph(), x.DType()), padAxes...)
	}
	conv := ConvGeneral(padded, kernel, axes, mustIntsField(node, "strides"), mustPaddingsField(node, "paddings"),
		nil, mustIntsField(node, "kernelDilations"), channelGroups, batchGroups)
	grads := orig(conv, vjps, outputShape)
	gradX := grads[0]
	if gradX != nil && dilated {
		gradX = Slice(gradX, sliceAxes...)
	}
	return []*Node{gradX, grads[1]}
}

// mustConvAxes copies the convolution's axes configuration field by field (its exported
// fields are reached through a private one, so reflect cannot return it as an interface).
func mustConvAxes(node *Node) ConvolveAxesConfig {
	f := mustNodeField(node, "axes")
	var axes ConvolveAxesConfig
	dst := reflect.ValueOf(&axes).Elem()
	for i := range dst.NumField() {
		src := f.FieldByName(dst.Type().Field(i).Name)
		switch dst.Field(i).Kind() {
		case reflect.Int:
			dst.Field(i).SetInt(src.Int())
		case reflect.Slice:
			ints := make([]int, src.Len())
			for j := range ints {
				ints[j] = int(src.Index(j).Int())
			}
			dst.Field(i).Set(reflect.ValueOf(ints))
		default:
			exceptions.Panicf("optim VJP: unexpected field %s in ConvolveAxesConfig", dst.Type().Field(i).Name)
		}
	}
	return axes
}

// single adapts a single-output rule to graph.VJP.
func single(fn func(node, v *Node) []*Node) VJP {
	return func(node *Node, vjps []*Node, _ shapes.Shape) []*Node { return fn(node, vjps[0]) }
}

func zeroGradVJP(node *Node, _ []*Node, _ shapes.Shape) []*Node {
	return make([]*Node, len(node.Inputs()))
}

// rsqrtVJP: d x^(-1/2) = -1/2 x^(-3/2) = -1/2 y^3.
func rsqrtVJP(node, v *Node) []*Node {
	return []*Node{Mul(v, MulScalar(Mul(node, Square(node)), -0.5))}
}

// expm1VJP: d(e^x - 1) = e^x = y + 1.
func expm1VJP(node, v *Node) []*Node {
	return []*Node{Mul(v, OnePlus(node))}
}

// clampVJP: Clamp(min, x, max). The gradient goes to x inside [min, max], else to the bound.
func clampVJP(node, v *Node) []*Node {
	in := node.Inputs()
	lo, x, hi := in[0], in[1], in[2]
	zero := ZerosLike(v)
	below := LessThan(x, broadcastTo(lo, x))
	above := GreaterThan(x, broadcastTo(hi, x))
	toX := Where(LogicalOr(below, above), zero, v)
	return []*Node{
		reduceTo(Where(below, v, zero), lo),
		toX,
		reduceTo(Where(above, v, zero), hi),
	}
}

func broadcastTo(x, like *Node) *Node {
	if x.Shape().EqualDimensions(like.Shape()) {
		return x
	}
	return BroadcastToDims(x, like.Shape().Dimensions...)
}

// reduceTo sums v down to the shape of a scalar operand that was broadcast.
func reduceTo(v, operand *Node) *Node {
	if v.Shape().EqualDimensions(operand.Shape()) {
		return v
	}
	if operand.IsScalar() {
		return ReduceAllSum(v)
	}
	exceptions.Panicf("optim VJP: cannot reduce cotangent of shape %s to operand shape %s", v.Shape(), operand.Shape())
	return nil
}

// nodeField reads a private parameter of a GoMLX node (the struct behind node.inputs).
func nodeField(node *Node, field string) (reflect.Value, error) {
	v := reflect.ValueOf(node).Elem().FieldByName("inputs")
	if !v.IsValid() {
		return reflect.Value{}, fmt.Errorf("graph.Node has no field \"inputs\"")
	}
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return reflect.Value{}, fmt.Errorf("node %s has nil inputs", node.Type())
		}
		v = v.Elem()
	}
	f := v.FieldByName(field)
	if !f.IsValid() {
		return reflect.Value{}, fmt.Errorf("parameters of %s have no field %q", node.Type(), field)
	}
	return f, nil
}

// mustNodeField is nodeField for the rules, which panic (graph building) on error.
func mustNodeField(node *Node, field string) reflect.Value {
	f, err := nodeField(node, field)
	if err != nil {
		exceptions.Panicf("optim VJP: %v", err)
	}
	return f
}

func mustIntField(node *Node, field string) int {
	return int(mustNodeField(node, field).Int())
}

func mustIntsField(node *Node, field string) []int {
	f := mustNodeField(node, field)
	if f.Len() == 0 {
		return nil // GoMLX and the backends treat nil, not empty, as "default"
	}
	out := make([]int, f.Len())
	for i := range out {
		out[i] = int(f.Index(i).Int())
	}
	return out
}

func mustPaddingsField(node *Node, field string) [][2]int {
	f := mustNodeField(node, field)
	if f.Len() == 0 {
		return nil
	}
	out := make([][2]int, f.Len())
	for i := range out {
		out[i] = [2]int{int(f.Index(i).Index(0).Int()), int(f.Index(i).Index(1).Int())}
	}
	return out
}

// selectAndScatterVJP returns the VJP of SelectAndScatter{Max,Min}(operand, source): for each
// window (one element of source), the cotangent (shaped like operand) at the position the
// window selected, the first maximum (minimum) in row-major window order, as XLA selects.
func selectAndScatterVJP(op compute.ReduceOpType) func(node, v *Node) []*Node {
	return func(node, v *Node) []*Node {
		in := node.Inputs()
		operand, source := in[0], in[1]
		window := mustIntsField(node, "windowDimensions")
		strides := mustIntsField(node, "windowStrides")
		paddings := mustPaddingsField(node, "paddings")
		rank := operand.Rank()
		if len(strides) == 0 {
			strides = window
		}
		g := operand.Graph()
		x, u := operand, v
		if len(paddings) > 0 {
			fill := Infinity(g, operand.DType(), -1)
			if op == compute.ReduceOpMin {
				fill = Infinity(g, operand.DType(), 1)
			}
			padX := make([]PadAxis, rank)
			for i, p := range paddings {
				padX[i] = PadAxis{Start: p[0], End: p[1]}
			}
			x = Pad(x, fill, padX...)
			u = Pad(u, ScalarZero(g, v.DType()), padX...)
		}
		outDims := source.Shape().Dimensions
		// Enumerate the window offsets in row-major order.
		offsets := [][]int{{}}
		for axis := range rank {
			var next [][]int
			for _, o := range offsets {
				for k := range window[axis] {
					next = append(next, append(append([]int(nil), o...), k))
				}
			}
			offsets = next
		}
		slice := func(t *Node, off []int) *Node {
			specs := make([]SliceAxisSpec, rank)
			for axis := range rank {
				start := off[axis]
				specs[axis] = AxisRange(start, start+(outDims[axis]-1)*strides[axis]+1).Stride(strides[axis])
			}
			return Slice(t, specs...)
		}
		var best *Node
		for _, off := range offsets {
			xs := slice(x, off)
			if best == nil {
				best = xs
			} else if op == compute.ReduceOpMax {
				best = Max(best, xs)
			} else {
				best = Min(best, xs)
			}
		}
		best = StopGradient(best)
		var found, out *Node
		for _, off := range offsets {
			hit := Equal(StopGradient(slice(x, off)), best)
			if found != nil {
				hit = LogicalAnd(hit, LogicalNot(found))
			}
			us := slice(u, off)
			if out == nil {
				out = Where(hit, us, ZerosLike(us))
				found = hit
			} else {
				out = Where(hit, us, out)
				found = LogicalOr(found, hit)
			}
		}
		return []*Node{nil, out}
	}
}

// batchNormForTrainingVJP is the gradient of BatchNormForTraining(x, scale, offset) ->
// (y, batchMean, batchVariance), written in primitive operations so that it can be
// differentiated again. With xhat = (x-mean)/sqrt(var+eps) and N the number of reduced
// elements per feature:
//
//	dx      = scale/sqrt(var+eps) * (dy - mean(dy) - xhat*mean(dy*xhat))
//	          + dMean/N + dVar*2*(x-mean)/N
//	dscale  = sum(dy*xhat)
//	doffset = sum(dy)
func batchNormForTrainingVJP(node *Node, vjps []*Node, _ shapes.Shape) []*Node {
	in := node.Inputs()
	x, scale := in[0], in[1]
	eps, featureAxis := mustNodeField(node, "epsilon").Float(), int(mustNodeField(node, "featureAxis").Int())
	rank := x.Rank()
	var reduceAxes []int
	n := 1
	for axis := range rank {
		if axis != featureAxis {
			reduceAxes = append(reduceAxes, axis)
			n *= x.Shape().Dimensions[axis]
		}
	}
	dims := x.Shape().Dimensions
	keepDims := make([]int, rank)
	for axis := range keepDims {
		keepDims[axis] = 1
	}
	keepDims[featureAxis] = dims[featureAxis]
	keep := func(t *Node) *Node { // per-feature [C] -> broadcast to x's shape
		return BroadcastToDims(Reshape(t, keepDims...), dims...)
	}
	mean := ReduceMean(x, reduceAxes...)
	centered := Sub(x, keep(mean))
	variance := ReduceMean(Square(centered), reduceAxes...)
	invStd := Rsqrt(AddScalar(variance, eps))
	xhat := Mul(centered, keep(invStd))

	dx := ZerosLike(x)
	var dScale, dOffset *Node
	if dy := vjps[0]; dy != nil {
		dScale = ReduceSum(Mul(dy, xhat), reduceAxes...)
		dOffset = ReduceSum(dy, reduceAxes...)
		inner := Sub(Sub(dy, keep(DivScalar(dOffset, float64(n)))), Mul(xhat, keep(DivScalar(dScale, float64(n)))))
		dx = Mul(keep(Mul(scale, invStd)), inner)
	}
	if dMean := vjps[1]; dMean != nil {
		dx = Add(dx, keep(DivScalar(dMean, float64(n))))
	}
	if dVar := vjps[2]; dVar != nil {
		dx = Add(dx, Mul(keep(dVar), MulScalar(centered, 2/float64(n))))
	}
	return []*Node{dx, dScale, dOffset}
}
