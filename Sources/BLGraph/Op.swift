/// The operations of the graph IR. Every activation is a 4-D float tensor `[M, C, H, W]` (row-major,
/// NCHW) except after `linear` and `temporalMean`, which produce 2-D `[M, F]`. `M` is the batch `N`
/// times a per-clip frame count the shape inference tracks (see `NodeShape.perClip`).
///
/// Semantics are exactly those of the PyTorch reference in eval mode; each case documents them.
package enum Op: Sendable, Equatable {
    /// The network input `[N, frames*channels, H, W]` (a clip's frames stacked on channels, as
    /// `bLVNet_TAM.forward` takes it). No inputs. There is exactly one, node 0.
    case input(frames: Int, channels: Int)

    /// `[N, T*C, H, W]` viewed as `[N*T, C, H, W]` (a free reshape of contiguous memory): frame `t` of
    /// clip `n` becomes row `n*T + t`. One input.
    case framesFromChannels(frames: Int)

    /// 2-D convolution, cross-correlation as `torch.nn.Conv2d`:
    /// `out[m, o, y, x] = bias[o] + sum_{i in group(o), ky, kx} w[o, i', ky, kx] * in[m, i, y*s - p + ky, x*s - p + kx]`,
    /// zero outside the input; `Hout = (H + 2p - k) / s + 1` (floor). Weight `[Cout, Cin/groups, k, k]`,
    /// optional bias `[Cout]`. With `relu`, `max(0, .)` is applied to the result. One input.
    case conv2d(Conv2D)

    /// Inference batch normalization per channel:
    /// `out = (x - mean) / sqrt(var + eps) * weight + bias`. One input.
    case batchNorm(BatchNorm)

    /// `max(0, x)` elementwise. One input.
    case relu

    /// Elementwise sum of two inputs of identical shape, then `max(0, .)` when `relu`. Two inputs.
    case add(relu: Bool)

    /// Average pooling as `nn.AvgPool2d(kernel, stride, padding)` with `count_include_pad=True`
    /// and `ceil_mode=False`: the divisor is always `kernel*kernel` (padded zeros count).
    /// `Hout = (H + 2p - k) / s + 1`. The reference uses kernel 3, stride 2, padding 1. One input.
    case avgPool2d(kernel: Int, stride: Int, padding: Int)

    /// Nearest-neighbour resize of input 0 to the H and W of input 1 (input 1 only provides the size;
    /// its M must equal input 0's), as `F.interpolate(x, size)` in mode `nearest`:
    /// for each axis with sizes `in -> out`: `src = dst` if `out == in`; `src = dst >> 1` if `out == 2*in`;
    /// otherwise `src = min(Int(floorf(Float(dst) * (Float(in) / Float(out)))), in - 1)` in float32.
    /// Two inputs.
    case resizeNearest

    /// Temporal aggregation module (TAM). Rows are frames of clips of `duration` consecutive rows.
    /// With `b = weights.count` depthwise 1x1 weights `w_i` (each `[C, 1, 1, 1]`):
    /// `out[n*D + t, c] = max(0, sum_i w_i[c] * in[n*D + t + i - b/2, c])`, a term omitted when
    /// `t + i - b/2` falls outside `0..<D` (never crossing clips; `b/2` rounds down). One input.
    case tam(TAM)

    /// Picks every other frame of each clip of `period` rows: row `n*period/2 + j` of the output is
    /// row `n*period + 2j + (parity == .big ? 1 : 0)` of the input. `.big` takes the odd frames,
    /// `.little` the even frames (reference `big_list` / `little_list`). One input.
    case selectFrames(period: Int, parity: FrameParity)

    /// Writes each input row `i` to output rows `2i` and `2i + 1` (M doubles). One input.
    case duplicateFrames

    /// Mean over H and W: `[M, C, H, W] -> [M, C, 1, 1]` (`nn.AdaptiveAvgPool2d(1)`). One input.
    case globalAvgPool

    /// Fully connected layer on `[M, F, 1, 1]` or `[M, F]` inputs: `out[m, o] = bias[o] + sum_f w[o, f] * in[m, f]`,
    /// weight `[out, F]`, bias `[out]`; output `[M, out]`. One input.
    case linear(Linear)

    /// Mean over the `frames` consecutive rows of each clip: `[N*frames, F] -> [N, F]`. One input.
    case temporalMean(frames: Int)

    /// The op's name in text dumps and JSON.
    package var name: String {
        switch self {
        case .input: return "input"
        case .framesFromChannels: return "framesFromChannels"
        case .conv2d: return "conv2d"
        case .batchNorm: return "batchNorm"
        case .relu: return "relu"
        case .add: return "add"
        case .avgPool2d: return "avgPool2d"
        case .resizeNearest: return "resizeNearest"
        case .tam: return "tam"
        case .selectFrames: return "selectFrames"
        case .duplicateFrames: return "duplicateFrames"
        case .globalAvgPool: return "globalAvgPool"
        case .linear: return "linear"
        case .temporalMean: return "temporalMean"
        }
    }

    /// How many inputs the op takes.
    package var arity: Int {
        switch self {
        case .input: return 0
        case .add, .resizeNearest: return 2
        default: return 1
        }
    }

    /// Names of the weights the op reads, in a fixed order.
    package var weightNames: [String] {
        switch self {
        case .conv2d(let c): return [c.weight] + (c.bias.map { [$0] } ?? [])
        case .batchNorm(let b): return [b.weight, b.bias, b.runningMean, b.runningVar]
        case .tam(let t): return t.weights
        case .linear(let l): return [l.weight, l.bias]
        default: return []
        }
    }
}

/// Which frames `selectFrames` keeps.
package enum FrameParity: String, Sendable, Equatable {
    /// Odd frames of each clip (1, 3, 5, ...): the reference big branch.
    case big
    /// Even frames of each clip (0, 2, 4, ...): the reference little branch.
    case little
}

/// Attributes of `Op.conv2d` (square kernels, equal strides and padding on both axes).
package struct Conv2D: Sendable, Equatable {
    package var inChannels: Int
    package var outChannels: Int
    package var kernel: Int
    package var stride: Int
    package var padding: Int
    package var groups: Int
    /// Weight name; the tensor is `[outChannels, inChannels/groups, kernel, kernel]`.
    package var weight: String
    /// Optional bias name; the tensor is `[outChannels]`.
    package var bias: String?
    /// Apply `max(0, .)` to the output.
    package var relu: Bool

    package init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                groups: Int = 1, weight: String, bias: String? = nil, relu: Bool = false) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.groups = groups
        self.weight = weight
        self.bias = bias
        self.relu = relu
    }

    package var weightShape: [Int] { [outChannels, inChannels / max(groups, 1), kernel, kernel] }
}

/// Attributes of `Op.batchNorm`; every tensor is `[channels]`.
package struct BatchNorm: Sendable, Equatable {
    package var channels: Int
    package var weight: String
    package var bias: String
    package var runningMean: String
    package var runningVar: String
    package var eps: Double

    package init(channels: Int, weight: String, bias: String, runningMean: String, runningVar: String, eps: Double = 1e-5) {
        self.channels = channels
        self.weight = weight
        self.bias = bias
        self.runningMean = runningMean
        self.runningVar = runningVar
        self.eps = eps
    }

    /// The four names of a PyTorch `BatchNorm2d` module called `prefix`.
    package init(channels: Int, module prefix: String, eps: Double = 1e-5) {
        self.init(channels: channels, weight: prefix + ".weight", bias: prefix + ".bias",
                  runningMean: prefix + ".running_mean", runningVar: prefix + ".running_var", eps: eps)
    }
}

/// Attributes of `Op.tam`.
package struct TAM: Sendable, Equatable {
    /// Frames per clip the module blends over.
    package var duration: Int
    package var channels: Int
    /// `b` depthwise weights `[channels, 1, 1, 1]`, for temporal offsets `-b/2 ... b/2` in order.
    package var weights: [String]

    package init(duration: Int, channels: Int, weights: [String]) {
        self.duration = duration
        self.channels = channels
        self.weights = weights
    }

    package var blendingFrames: Int { weights.count }
}

/// Attributes of `Op.linear`.
package struct Linear: Sendable, Equatable {
    package var inFeatures: Int
    package var outFeatures: Int
    /// `[outFeatures, inFeatures]`
    package var weight: String
    /// `[outFeatures]`
    package var bias: String

    package init(inFeatures: Int, outFeatures: Int, weight: String, bias: String) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.weight = weight
        self.bias = bias
    }
}
