import BLCore
import BLKernels
import Foundation
import BLVNet

/// The hyper-parameters of a bLVNet-TAM network: what shapes its weights and its computation.
///
/// Everything but ``frames`` is read from the weights themselves; `frames` (the reference code's
/// `groups`) is not recorded in them and comes from the caller, a training checkpoint's `arch`,
/// or the checkpoint's file name (`...-f8x2...` means 16 frames).
public struct ModelConfiguration: Sendable, Equatable, CustomStringConvertible {
    /// The classifier of the reference code.
    public enum Head: String, Sendable, Equatable {
        /// `fc` (trained without dropout).
        case fc
        /// A dropout, then `new_fc`.
        case dropoutNewFC = "dropout+new_fc"
    }

    /// The reference depth, 50, 101 or 152, when ``blocks`` match one.
    public var depth: Int? { internalConfig.depth }
    /// Bottleneck blocks per stage (`[3, 4, 6, 3]` for depth 50).
    public var blocks: [Int] { internalConfig.blocks }
    /// Little-branch blocks of stages 1 to 3.
    public var littleBlocks: [Int] { internalConfig.littleBlocks }
    /// Channel ratio of the big and little branches.
    public var alpha: Int { internalConfig.alpha }
    /// Depth ratio of the little branch, when the checkpoint's name tells it consistently with the
    /// weights (it cannot be read from them), else nil.
    public var beta: Int? { internalConfig.beta }
    /// Input frames per clip, T (even: frames alternate between the big and the little branch).
    public var frames: Int { internalConfig.frames }
    /// Frames each Temporal Aggregation Module blends (3 in the paper).
    public var blendingFrames: Int { internalConfig.blendingFrames }
    /// Classes of the classifier.
    public var classes: Int { internalConfig.numClasses }
    /// Channels per input frame: 3 for RGB, 10 for stacked optical flow.
    public var inputChannels: Int { internalConfig.inputChannels }
    public var head: Head { internalConfig.head == .fc ? .fc : .dropoutNewFC }

    /// `blocks 3,4,6,3, little blocks 1,1,1, alpha 2, beta 4, T 16, blending 3, 174 classes, ...`.
    public var description: String { BLVNetImporter.describe(internalConfig).unparenthesized }

    package let internalConfig: BLVNetConfig

    package init(_ config: BLVNetConfig) { internalConfig = config }
}

extension String {
    /// The text without one pair of enclosing parentheses.
    package var unparenthesized: String {
        hasPrefix("(") && hasSuffix(")") && count >= 2 ? String(dropFirst().dropLast()) : self
    }
}

/// How a model package stores its weights.
public enum WeightPrecision: String, Sendable, Equatable, CaseIterable {
    /// Every weight in float32: the exact reference weights (BatchNorm folded).
    case float32 = "f32"
    /// Convolution and linear weights in IEEE float16 (vectors stay float32): half the size,
    /// logits within about 1e-3 relative.
    case float16 = "f16"
    /// Convolution and linear weights in bfloat16 (vectors stay float32): half the size, logits
    /// within about 1e-2 relative.
    case bfloat16 = "bf16"

    package var dtype: DType {
        switch self {
        case .float32: return .float32
        case .float16: return .float16
        case .bfloat16: return .bfloat16
        }
    }

    package init?(dtype: DType) {
        switch dtype {
        case .float32: self = .float32
        case .float16: self = .float16
        case .bfloat16: self = .bfloat16
        default: return nil
        }
    }
}

/// How a loaded model computes.
public struct RuntimeOptions: Sendable, Equatable {
    /// What a half-precision package's weights are while the model is loaded.
    public enum HalfPrecisionWeights: String, Sendable, Equatable, CaseIterable {
        /// Kept in their stored precision and widened to float32 layer by layer as they are used
        /// (half the weight memory; the default).
        case native
        /// Widened to float32 once, at load (a little faster, float32 memory).
        case float32 = "f32"
    }

    /// The arithmetic of the convolutions and the classifier.
    ///
    /// Everything else (BatchNorm, pooling, the temporal blending) computes in float32 either way.
    /// Choose ``bfloat16`` for throughput when the ranking of classes is what you need, and keep
    /// the default ``float32`` when you compare logits with PyTorch's:
    ///
    /// ```swift
    /// let fast = try BLVNetModel(package: url, options: RuntimeOptions(
    ///     compute: RuntimeOptions.bfloat16Available ? .bfloat16 : .float32))
    /// ```
    public enum Compute: String, Sendable, Equatable, CaseIterable {
        /// float32 products and sums: logits within 1e-5 relative of the reference's float64 run,
        /// at every recorded intermediate too (the default). 3x3 stride-1 convolutions may run
        /// as Winograd F(4x4) or F(2x2), each layer only where its error measured at load is
        /// within 1.5e-6.
        case float32 = "f32"
        /// bfloat16 products with float32 sums (AVX512_BF16 `vdpbf16ps`): weights rounded to
        /// bfloat16 once at load, each layer's input rounded to bfloat16 (round to nearest
        /// even).
        /// On the project's fixture clips the logits are within 5e-2 relative of the
        /// float64 reference (7e-3 on the ResNet-50 model at 224x224), the best class and the
        /// set of the five best are the same, and classes closer than that error may swap
        /// places inside the five. Loading fails with an `unsupported` error on a CPU without
        /// AVX512_BF16 (see ``RuntimeOptions/bfloat16Available``).
        case bfloat16 = "bf16"
    }

    /// Threads the kernels use; nil for every core of the machine.
    public var threads: Int?
    /// What a half-precision package's weights are while loaded (see ``HalfPrecisionWeights``).
    public var halfPrecisionWeights: HalfPrecisionWeights
    /// The arithmetic of the convolutions and the classifier (float32 by default; see ``Compute``).
    public var compute: Compute

    /// Threads used when ``threads`` is nil: the cores this process may run on.
    public static var defaultThreads: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// Whether this CPU runs ``Compute/bfloat16`` (it has AVX512_BF16; checked once, at run time).
    public static var bfloat16Available: Bool { ComputePrecision.bfloat16Available }

    /// Options for loading a model: the defaults are every core, half-precision weights kept as
    /// stored, and float32 arithmetic.
    public init(threads: Int? = nil, halfPrecisionWeights: HalfPrecisionWeights = .native, compute: Compute = .float32) {
        self.threads = threads
        self.halfPrecisionWeights = halfPrecisionWeights
        self.compute = compute
    }

    package var precision: ComputePrecision { compute == .float32 ? .float32 : .bfloat16 }
}
