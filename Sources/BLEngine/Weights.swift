import BLCore
import BLGraph
import BLKernels

/// How weights stored as float16 / bfloat16 become the float32 the kernels read.
package enum WeightConversion: Sendable, Equatable {
    /// Every weight is converted once, when the engine is created (fastest runs, float32 memory).
    case atBind
    /// Convolution and linear weights stored as float16 / bfloat16 keep their dtype and are
    /// converted into a scratch buffer just before each use (half the weight memory, slower runs).
    /// Float32 weights and small per-channel vectors are unaffected.
    case perUse
}

/// Float32 values of one weight: borrowed from a float32 tensor's storage when it is contiguous and
/// aligned (no copy), otherwise an owned converted copy.
final class FloatData: @unchecked Sendable {
    let pointer: UnsafePointer<Float>
    let count: Int
    /// Keeps borrowed memory alive.
    private let storage: ByteStorage?
    private let owned: UnsafeMutablePointer<Float>?

    /// Owned copy of `values`.
    init(_ values: [Float]) {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
        values.withUnsafeBufferPointer { src in
            if let b = src.baseAddress { p.update(from: b, count: values.count) }
        }
        pointer = UnsafePointer(p)
        count = values.count
        storage = nil
        owned = p
    }

    private init(borrowing p: UnsafePointer<Float>, count: Int, storage: ByteStorage) {
        pointer = p
        self.count = count
        self.storage = storage
        owned = nil
    }

    /// Drops the resident pages of borrowed values from a memory-mapped file (they are read back
    /// if used again); no effect on owned copies.
    func releasePages() {
        guard let storage, let base = storage.bytes.baseAddress else { return }
        let start = UnsafeRawPointer(pointer) - UnsafeRawPointer(base)
        storage.releasePages(start..<(start + count * 4))
    }

    /// The float32 values of `tensor` (any floating dtype); no copy for aligned contiguous float32.
    static func from(_ tensor: Tensor, name: String) throws -> FloatData {
        try requireFloat(tensor, name: name)
        if tensor.dtype == .float32, tensor.isContiguous, tensor.elementCount > 0,
           let base = tensor.storage.bytes.baseAddress {
            let raw = base + tensor.offset * 4
            if Int(bitPattern: raw) % MemoryLayout<Float>.alignment == 0 {
                return FloatData(borrowing: raw.assumingMemoryBound(to: Float.self), count: tensor.elementCount,
                                 storage: tensor.storage)
            }
        }
        return FloatData(tensor.floats())
    }

    static func requireFloat(_ tensor: Tensor, name: String) throws {
        guard tensor.dtype.isFloatingPoint else {
            throw BLError(.mismatch, "weight '\(name)' has dtype \(tensor.dtype.torchName), expected a floating-point tensor")
        }
    }

    deinit { owned?.deallocate() }
}

/// How a layer's weights are bound: what binding prepares and how it computes.
struct BindOptions: Sendable {
    var conversion: WeightConversion = .atBind
    var precision: ComputePrecision = .float32
    var winograd: WinogradPolicy = .off
    var context: KernelContext = .serial
    /// Prepared float32 convolution weights from a kernel cache, by weight name (see `CachedConvWeights`).
    var cache: [String: CachedConvWeights] = [:]
}

/// A large weight (convolution or linear matrix): float32 now, half-precision converted at each
/// use, or prepared for its kernel (packed, transformed).
enum WeightRef: @unchecked Sendable {
    case ready(FloatData)
    /// A contiguous float16 or bfloat16 tensor, converted into scratch before each use.
    case deferred(Tensor)
    /// Packed (or transformed and packed) for the kernel that runs the layer.
    case prepared(ConvWeights)

    var count: Int {
        switch self {
        case .ready(let d): return d.count
        case .deferred(let t): return t.elementCount
        case .prepared(let w): return w.params.weightCount
        }
    }

    /// A convolution's (or, as a 1x1 convolution, a linear layer's) weights prepared for
    /// `options`; half-precision tensors stay deferred under `.perUse` with float32 compute.
    /// Float32 weights borrowed from a mapped file are released from memory once packed.
    static func prepare(_ tensor: Tensor, name: String, params: Conv2DParams, options: BindOptions) throws -> WeightRef {
        try FloatData.requireFloat(tensor, name: name)
        if options.conversion == .perUse, options.precision == .float32,
           tensor.dtype == .float16 || tensor.dtype == .bfloat16 {
            return .deferred(try tensor.converted(to: tensor.dtype))
        }
        let data = try FloatData.from(tensor, name: name)
        let w = try ConvWeights.prepare(data.pointer, owner: data, params: params, precision: options.precision,
                                        winograd: options.winograd, context: options.context,
                                        cached: options.precision == .float32 ? options.cache[name] : nil)
        if !w.keepsFloat32 { data.releasePages() }
        return .prepared(w)
    }

    static func bind(_ tensor: Tensor, name: String, mode: WeightConversion) throws -> WeightRef {
        try FloatData.requireFloat(tensor, name: name)
        if mode == .perUse, tensor.dtype == .float16 || tensor.dtype == .bfloat16 {
            return .deferred(try tensor.converted(to: tensor.dtype))  // contiguous, same dtype
        }
        return .ready(try FloatData.from(tensor, name: name))
    }

    /// Float32 values: the bound data, or `scratch` after converting into it.
    /// The conversion is vectorized and split over `context`'s threads.
    func resolve(scratch: UnsafeMutablePointer<Float>?, context: KernelContext = .serial) throws -> UnsafePointer<Float> {
        switch self {
        case .ready(let d):
            return d.pointer
        case .prepared:
            throw BLError.invariant("prepared weights are read by their kernel, not as float32")
        case .deferred(let t):
            guard let scratch else { throw BLError(.invalidArgument, "no scratch planned for a half-precision weight") }
            let n = t.elementCount
            let bf16 = t.dtype == .bfloat16
            t.withContiguousBytes { raw in
                guard let b = raw.baseAddress, raw.count >= 2 * n else { return }
                Kernels.widenHalf(b, count: n, bfloat16: bf16, output: scratch, context: context)
            }
            return UnsafePointer(scratch)
        }
    }
}

/// A graph node with its weights bound and its attributes in kernel form.
enum BoundOp: @unchecked Sendable {
    case input
    /// `framesFromChannels`: a view of its input's memory.
    case alias
    case conv(Conv2DParams, weight: WeightRef, bias: FloatData?, relu: Bool)
    /// Inference batch norm as `out = x * scale[c] + shift[c]`.
    case scaleShift(scale: FloatData, shift: FloatData)
    case relu
    case add(relu: Bool)
    case avgPool(kernel: Int, stride: Int, padding: Int)
    case resizeNearest
    /// TAM weights packed `[b, C]`.
    case tam(weights: FloatData, blending: Int, duration: Int)
    case selectFrames(period: Int, parity: Int)
    case duplicateFrames
    case globalAvgPool
    case linear(weight: WeightRef, bias: FloatData, inFeatures: Int, outFeatures: Int)
    case temporalMean(frames: Int)

    /// Inputs whose memory the op may overwrite with its output (elementwise ops).
    func inPlaceInputs(_ inputs: [Int]) -> [Int] {
        switch self {
        case .relu, .scaleShift: return [inputs[0]]
        case .add: return inputs
        default: return []
        }
    }

    /// Binds one node's weights. `tensors` was checked against the graph's declared shapes.
    static func bind(_ node: Node, tensors: [String: Tensor], options: BindOptions) throws -> BoundOp {
        let mode = options.conversion
        func tensor(_ name: String) throws -> Tensor {
            guard let t = tensors[name] else {
                throw BLError(.mismatch, "weight '\(name)' of node \(node.id) is missing")
            }
            return t
        }
        switch node.op {
        case .input:
            return .input
        case .framesFromChannels:
            return .alias
        case .conv2d(let c):
            let p = Conv2DParams(inChannels: c.inChannels, outChannels: c.outChannels, kernel: (c.kernel, c.kernel),
                                 stride: (c.stride, c.stride), padding: (c.padding, c.padding), groups: c.groups)
            let w = try WeightRef.prepare(try tensor(c.weight), name: c.weight, params: p, options: options)
            let b = try c.bias.map { try FloatData.from(try tensor($0), name: $0) }
            return .conv(p, weight: w, bias: b, relu: c.relu)
        case .batchNorm(let bn):
            for name in [bn.weight, bn.bias, bn.runningMean, bn.runningVar] {
                try FloatData.requireFloat(try tensor(name), name: name)
            }
            let w = try tensor(bn.weight).doubles(), b = try tensor(bn.bias).doubles()
            let mean = try tensor(bn.runningMean).doubles(), variance = try tensor(bn.runningVar).doubles()
            var scale = [Float](repeating: 0, count: bn.channels), shift = scale
            for c in 0..<bn.channels {
                let denom = (variance[c] + bn.eps).squareRoot()
                guard denom > 0, denom.isFinite else {
                    throw BLError(.numeric, "batch norm '\(bn.runningVar)': channel \(c) has variance \(variance[c]) (eps \(bn.eps)), so no finite scale")
                }
                let s = w[c] / denom
                scale[c] = Float(s)
                shift[c] = Float(b[c] - mean[c] * s)
            }
            return .scaleShift(scale: FloatData(scale), shift: FloatData(shift))
        case .relu:
            return .relu
        case .add(let relu):
            return .add(relu: relu)
        case let .avgPool2d(k, s, p):
            return .avgPool(kernel: k, stride: s, padding: p)
        case .resizeNearest:
            return .resizeNearest
        case .tam(let t):
            var packed = [Float]()
            packed.reserveCapacity(t.weights.count * t.channels)
            for name in t.weights {
                let w = try tensor(name)
                try FloatData.requireFloat(w, name: name)
                packed += w.floats()
            }
            return .tam(weights: FloatData(packed), blending: t.weights.count, duration: t.duration)
        case let .selectFrames(period, parity):
            return .selectFrames(period: period, parity: parity == .big ? 1 : 0)
        case .duplicateFrames:
            return .duplicateFrames
        case .globalAvgPool:
            return .globalAvgPool
        case .linear(let l):
            // bfloat16 compute runs the layer as a 1x1 convolution of [rows, In, 1, 1].
            let w = options.precision == .bfloat16
                ? try WeightRef.prepare(try tensor(l.weight), name: l.weight,
                                        params: Conv2DParams(inChannels: l.inFeatures, outChannels: l.outFeatures, kernel: (1, 1)),
                                        options: options)
                : try WeightRef.bind(try tensor(l.weight), name: l.weight, mode: mode)
            let b = try FloatData.from(try tensor(l.bias), name: l.bias)
            return .linear(weight: w, bias: b, inFeatures: l.inFeatures, outFeatures: l.outFeatures)
        case .temporalMean(let f):
            return .temporalMean(frames: f)
        }
    }
}
