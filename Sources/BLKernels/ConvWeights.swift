import BLCore
import CGemm
import Foundation

/// The arithmetic of convolutions and linear layers.
package enum ComputePrecision: String, Sendable, Equatable, CaseIterable {
    /// float32 products and sums (the default; parity with PyTorch's float64 within 1e-5).
    case float32 = "f32"
    /// bfloat16 products, float32 sums: weights rounded to bfloat16 once, each layer's input
    /// rounded to bfloat16 as it is packed (round to nearest even), through AVX512_BF16
    /// `vdpbf16ps`, or on AMX tiles (`tdpbf16ps`) where the CPU has AMX-BF16 (unless
    /// `BLCONVERT_AMX=off`). Needs a CPU with AVX512_BF16. Without AMX, the convolutions the
    /// direct kernel takes (at most 64 output channels, rows of at least 28 columns, stride 1 or
    /// 2 across) read their input as bfloat16 channel pairs from padded row copies instead of
    /// packed panels.
    case bfloat16 = "bf16"

    /// Whether this CPU runs the bfloat16 kernels (AVX512_BF16, checked once).
    package static let bfloat16Available: Bool = cgemm_bf16_available() != 0

    /// Whether the bfloat16 GEMM runs on AMX tiles (see `cgemm_amx_available`).
    package static let bfloat16OnTiles: Bool = cgemm_amx_available() != 0

    /// The bfloat16 kernels' name for reports: "AMX (CGemm)" or "AVX512_BF16 (CGemm)".
    package static var bfloat16KernelName: String { bfloat16OnTiles ? "AMX (CGemm)" : "AVX512_BF16 (CGemm)" }

    /// Throws `.unsupported` when this CPU cannot compute in `self`.
    package func checkAvailable() throws {
        if self == .bfloat16 && !Self.bfloat16Available {
            throw BLError(.unsupported, "bf16 compute needs a CPU with AVX512_BF16 (vdpbf16ps), which this one lacks; use the default f32 compute")
        }
    }
}

/// Whether and how 3x3 stride-1 convolutions use Winograd F(m x m, 3 x 3).
package enum WinogradPolicy: Sendable, Equatable {
    /// Never (im2col GEMM).
    case off
    /// Per layer, the largest tile in `tiles` whose error on a probe input, measured at bind
    /// against float64 direct convolution, is at most `maxError` (relative to the largest
    /// output); the GEMM path when none is.
    case auto(tiles: [Int], maxError: Double)
    /// This output tile (2, 4 or 6) for every layer that qualifies (tests and benchmarks).
    case tile(Int)

    /// The default: F(4x4) where its probe error is within 1.5e-6, else F(2x2) within the same bound.
    package static let standard = WinogradPolicy.auto(tiles: [4, 2], maxError: 1.5e-6)

    /// `BLCONVERT_WINOGRAD`: `off`, `2`, `4`, `6`, or unset / `auto` for `.standard`.
    package static let environmentVariable = "BLCONVERT_WINOGRAD"

    package static let fromEnvironment: WinogradPolicy = {
        switch ProcessInfo.processInfo.environment[environmentVariable]?.lowercased() {
        case "off": return .off
        case "2": return .tile(2)
        case "4": return .tile(4)
        case "6": return .tile(6)
        default: return .standard
        }
    }()
}

/// The direct convolution kernel's switch (see `cgemm_set_direct_conv`): `BLCONVERT_DIRECT=off`
/// packs B for every convolution, for comparing the kernels; read once, before the first
/// weights are prepared.
package enum DirectConvolution {
    package static let environmentVariable = "BLCONVERT_DIRECT"

    /// Whether the environment turned the direct kernel off (applied to the kernels on first use).
    package static let turnedOff: Bool = {
        let off = ProcessInfo.processInfo.environment[environmentVariable]?.lowercased() == "off"
        if off { cgemm_set_direct_conv(0) }
        return off
    }()
}

/// The memory of a prepared weight: 64-byte aligned and owned, or borrowed from a kernel cache
/// (read only; `owner` keeps it mapped).
final class AlignedBuffer: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    let bytes: Int
    private let owner: AnyObject?

    init(bytes: Int) {
        self.bytes = max(bytes, 64)
        raw = UnsafeMutableRawPointer.allocate(byteCount: self.bytes, alignment: 64)
        owner = nil
    }

    /// `bytes` at `pointer`, which `owner` keeps valid; the kernels only read them.
    init(borrowing pointer: UnsafeRawPointer, bytes: Int, owner: AnyObject) {
        raw = UnsafeMutableRawPointer(mutating: pointer)
        self.bytes = bytes
        self.owner = owner
    }

    var floats: UnsafeMutablePointer<Float> { raw.assumingMemoryBound(to: Float.self) }

    deinit { if owner == nil { raw.deallocate() } }
}

/// A float32 convolution's weights as an earlier `ConvWeights.prepare` left them (the GEMM's
/// packed panels, or the packed Winograd matrices) with the choice it made, read back from a
/// kernel cache: `prepare` uses them instead of packing when they are what it would compute
/// itself (same path under the same policy, same depth slice, same size, and spot checks of the
/// values against the weights pass).
package final class CachedConvWeights: @unchecked Sendable {
    package enum Kind: Sendable, Equatable {
        case gemm
        case winograd(tile: Int)
    }

    package let kind: Kind
    package let kc: Int
    /// The probe errors measured for each Winograd tile tried.
    package let winogradErrors: [Int: Double]
    package let floats: UnsafePointer<Float>
    package let count: Int
    private let owner: AnyObject

    package init(kind: Kind, kc: Int, winogradErrors: [Int: Double], floats: UnsafePointer<Float>, count: Int,
                 owner: AnyObject) {
        self.kind = kind
        self.kc = kc
        self.winogradErrors = winogradErrors
        self.floats = floats
        self.count = count
        self.owner = owner
    }

    fileprivate var buffer: AlignedBuffer { AlignedBuffer(borrowing: floats, bytes: count * 4, owner: self) }

    /// The layout the cached floats are in, on this machine: the float32 kernels' panel shape and
    /// depth slice (chosen from the L1 size, so a cache written on another CPU may not match).
    /// Nil where the packed kernels do not run (no AVX-512).
    package static var layout: (name: String, kc: Int)? {
        guard cgemm_available() != 0 else { return nil }
        return ("cgemm-f32 mr=\(CGEMM_MR) nr=\(CGEMM_NR)", cgemm_get_blocking().kc)
    }
}

/// A convolution's weights in the form its kernel runs: packed once (at bind) into the GEMM's
/// panel layout (float32 or bfloat16), or transformed for Winograd and packed, or kept as given
/// for the BLAS and grouped paths.
package final class ConvWeights: @unchecked Sendable {
    /// Which kernel runs the convolution.
    package enum Path: Sendable, Equatable, CustomStringConvertible {
        /// im2col tiles and `cblas_sgemm` (no AVX-512, or `BLCONVERT_GEMM=blas`).
        case blas
        /// Grouped / depthwise: direct loops.
        case grouped
        /// The packed AVX-512 GEMM, B straight from the image, fused epilogue.
        case gemm
        /// The same with bfloat16 operands (`vdpbf16ps`).
        case gemmBF16
        /// Winograd F(tile x tile, 3 x 3) with GEMMs on the packed kernel.
        case winograd(tile: Int)

        package var description: String {
            switch self {
            case .blas: return "im2col+BLAS"
            case .grouped: return "grouped"
            case .gemm: return "GEMM"
            case .gemmBF16: return "GEMM bf16"
            case .winograd(let m): return "Winograd F(\(m)x\(m))"
            }
        }
    }

    package let params: Conv2DParams
    package let path: Path
    /// The float32 weights `[K, C/groups, kh, kw]` when a path (or the caller) still needs them.
    let raw: UnsafePointer<Float>?
    private let rawOwner: AnyObject?
    /// Packed A (float32 or bfloat16) or the packed Winograd matrices.
    let packed: AlignedBuffer?
    /// K rounded up to the microkernel's rows, and the depth slice the packing used.
    let mpad: Int
    let kc: Int
    /// The probe errors measured for each Winograd tile tried (empty when none was).
    package let winogradErrors: [Int: Double]
    /// For `.gemmBF16` layers the direct kernel can take (see `directCandidate`): A also packed
    /// in channel pairs (`cgemm_pack_a_bf16_pairs`, depth slice `kc`), run instead of the GEMM
    /// wherever the geometry is direct.
    let directPairs: AlignedBuffer?

    /// Whether the packed form came from a kernel cache (`CachedConvWeights`).
    package let fromCache: Bool

    /// What a kernel cache stores for these weights: float32 GEMM or Winograd layers only.
    package var cacheEntry: CachedConvWeights? {
        guard let packed else { return nil }
        let K = params.outChannels, C = params.inChannels
        let kind: CachedConvWeights.Kind, count: Int
        switch path {
        case .gemm:
            kind = .gemm
            count = Int(cgemm_packed_a_floats(K, C * params.kernelH * params.kernelW))
        case .winograd(let m):
            kind = .winograd(tile: m)
            count = Int(cgemm_wino_packed_u_floats(Int32(m), K, C))
        default: return nil
        }
        return CachedConvWeights(kind: kind, kc: kc, winogradErrors: winogradErrors, floats: UnsafePointer(packed.floats),
                                 count: count, owner: packed)
    }

    /// Bytes of the packed form (0 for the BLAS and grouped paths).
    package var packedBytes: Int { (packed?.bytes ?? 0) + (directPairs?.bytes ?? 0) }
    /// Whether the float32 weights are still held.
    package var keepsFloat32: Bool { raw != nil }

    fileprivate init(params: Conv2DParams, path: Path, raw: UnsafePointer<Float>?, rawOwner: AnyObject?,
                 packed: AlignedBuffer?, mpad: Int, kc: Int, winogradErrors: [Int: Double],
                 directPairs: AlignedBuffer? = nil, fromCache: Bool = false) {
        self.fromCache = fromCache
        self.params = params
        self.path = path
        self.raw = raw
        self.rawOwner = rawOwner
        self.packed = packed
        self.mpad = mpad
        self.kc = kc
        self.winogradErrors = winogradErrors
        self.directPairs = directPairs
    }

    /// Whether the bfloat16 direct kernel takes this layer on frames wide enough (its other
    /// conditions, see cgemm.h, depend on the weights only): then its weights are also packed in
    /// channel pairs. Measured on Zen 4 against the bf16 GEMM (packing B): 64 -> 32 3x3 at
    /// 112x112 10.5 against 17-20 ms, the 7x7 stride-2 stem 14-17 against 16-18 ms, 64 -> 64 3x3
    /// stride 2 at 112x112 7.0-7.6 against 8.6-9.6 ms.
    static func directCandidate(_ p: Conv2DParams, mpad: Int, kc: Int) -> Bool {
        // Frames of 64 + kernel columns: rows of at least 32 output columns.
        let side = 64 + p.kernelW + p.kernelH
        return p.groups == 1 && runsDirectBF16(p, height: side, width: side, mpad: mpad, kc: kc)
    }

    /// Whether the shape is one the Winograd kernels take: 3x3, stride 1, padding 1, no groups.
    package static func winogradApplies(_ p: Conv2DParams) -> Bool {
        p.kernelH == 3 && p.kernelW == 3 && p.strideH == 1 && p.strideW == 1 && p.padH == 1 && p.padW == 1
            && p.groups == 1
    }

    /// The path `prepare` takes for these arguments, before any Winograd probe (a Winograd
    /// candidate reports `.gemm` unless the policy forces a tile).
    package static func basePath(_ p: Conv2DParams, precision: ComputePrecision, winograd: WinogradPolicy,
                                 context: KernelContext) -> Path {
        if p.groups != 1 { return .grouped }
        if precision == .bfloat16 && ComputePrecision.bfloat16Available { return .gemmBF16 }
        guard Gemm.usesOwnKernel(context) else { return .blas }
        if case .tile(let m) = winograd, [2, 4, 6].contains(m), winogradApplies(p) { return .winograd(tile: m) }
        return .gemm
    }

    /// Prepares `weight` (`[K, C/groups, kh, kw]` float32, as the caller keeps it) for `context`.
    ///
    /// - Parameters:
    ///   - owner: keeps `weight`'s memory alive while these weights hold it.
    ///   - keepFloat32: hold `weight` even when the chosen path does not read it.
    package static func prepare(_ weight: UnsafePointer<Float>, owner: AnyObject?, params p: Conv2DParams,
                                precision: ComputePrecision = .float32, winograd: WinogradPolicy = .off,
                                context: KernelContext, keepFloat32: Bool = false,
                                cached: CachedConvWeights? = nil) throws -> ConvWeights {
        try precision.checkAvailable()
        _ = DirectConvolution.turnedOff
        _ = try p.outputSize(height: p.kernelH, width: p.kernelW)  // checks every field
        let base = basePath(p, precision: precision, winograd: winograd, context: context)
        let K = p.outChannels, depth = try Check.product([p.inChannels / p.groups, p.kernelH, p.kernelW], in: "conv2d")
        let mpad = (K + 7) / 8 * 8
        let blocking = cgemm_get_blocking()
        func keep(_ needed: Bool) -> (UnsafePointer<Float>?, AnyObject?) {
            needed || keepFloat32 ? (weight, owner) : (nil, nil)
        }
        switch base {
        case .blas, .grouped:
            return ConvWeights(params: p, path: base, raw: weight, rawOwner: owner, packed: nil, mpad: mpad, kc: 0,
                               winogradErrors: [:])
        case .gemmBF16:
            let kc = blocking.kc_bf16
            let buffer = AlignedBuffer(bytes: Int(cgemm_packed_a_bf16_count(K, depth, kc)) * 2)
            cgemm_pack_a_bf16(K, depth, weight, depth, kc, buffer.raw.assumingMemoryBound(to: UInt16.self))
            var pairs: AlignedBuffer? = nil
            if directCandidate(p, mpad: mpad, kc: kc) {
                let count = cgemm_packed_a_bf16_pairs_count(K, p.inChannels, p.kernelH, p.kernelW, kc)
                let b = AlignedBuffer(bytes: Int(count) * 2)
                guard cgemm_pack_a_bf16_pairs(K, p.inChannels, p.kernelH, p.kernelW, weight, kc,
                                              b.raw.assumingMemoryBound(to: UInt16.self)) == 0 else {
                    throw BLError(.internal, "conv2d(\(p)): packing bfloat16 channel pairs failed (out of memory)")
                }
                pairs = b
            }
            let (r, o) = keep(false)
            return ConvWeights(params: p, path: .gemmBF16, raw: r, rawOwner: o, packed: buffer, mpad: mpad, kc: kc,
                               winogradErrors: [:], directPairs: pairs)
        case .gemm, .winograd:
            let kc = blocking.kc
            var tiles: [Int] = []
            var maxError = Double.infinity
            switch winograd {
            case .tile(let m) where winogradApplies(p) && [2, 4, 6].contains(m): tiles = [m]
            case .auto(let candidates, let bound) where winogradApplies(p):
                // With at most 32 output channels F(2x2)'s transforms cost more than it saves: the
                // GEMM path's direct kernel (see cgemm.h) ran 64 -> 32 at 112x112 in 20 ms
                // against F(2x2)'s 25 on Zen 4. F(4x4) amortises them and stays a candidate.
                tiles = candidates.filter { [2, 4, 6].contains($0) && !($0 == 2 && p.outChannels <= 32) }
                maxError = bound
            default: break
            }
            if let cached, let w = try fromCache(cached, weight: weight, params: p, tiles: tiles, maxError: maxError,
                                                 mpad: mpad, kc: kc, depth: depth) {
                if keepFloat32 { return w.keeping(weight, owner: owner) }
                return w
            }
            var errors: [Int: Double] = [:]
            var probe: WinogradProbe? = nil
            for m in tiles {
                if maxError.isFinite {
                    // The probe transforms only the channels it checks: a tile that fails costs no
                    // full transform. Its float64 reference serves every tile.
                    let checks = probe ?? WinogradProbe(weight, params: p)
                    probe = checks
                    let e = try checks.error(tile: m, kc: kc)
                    errors[m] = e
                    if e > maxError { continue }
                }
                let u = try winogradPack(weight, params: p, tile: m, kc: kc)
                let (r, o) = keep(false)
                return ConvWeights(params: p, path: .winograd(tile: m), raw: r, rawOwner: o, packed: u, mpad: mpad,
                                   kc: kc, winogradErrors: errors)
            }
            let buffer = AlignedBuffer(bytes: Int(cgemm_packed_a_floats(K, depth)) * 4)
            cgemm_pack_a(K, depth, weight, depth, kc, buffer.floats)
            let (r, o) = keep(false)
            return ConvWeights(params: p, path: .gemm, raw: r, rawOwner: o, packed: buffer, mpad: mpad, kc: kc,
                               winogradErrors: errors)
        }
    }

    /// `cached` as these weights when it is what `prepare` would compute for them: the same choice
    /// (the first of `tiles` whose recorded error is within `maxError`, else the GEMM; with an
    /// infinite `maxError`, the first tile), the same depth slice and size, and the values at
    /// spread-out positions equal to packing (or transforming) `weight` there. Nil otherwise.
    private static func fromCache(_ cached: CachedConvWeights, weight: UnsafePointer<Float>, params p: Conv2DParams,
                                  tiles: [Int], maxError: Double, mpad: Int, kc: Int, depth: Int) throws -> ConvWeights? {
        guard cached.kc == kc else { return nil }
        var choice: CachedConvWeights.Kind = .gemm
        for m in tiles {
            if maxError.isFinite {
                guard let e = cached.winogradErrors[m] else { return nil }
                if e > maxError { continue }
            }
            choice = .winograd(tile: m)
            break
        }
        guard cached.kind == choice else { return nil }
        let K = p.outChannels
        switch choice {
        case .gemm:
            guard cached.count == Int(cgemm_packed_a_floats(K, depth)) else { return nil }
            // Packing copies: A[m, k] sits at slice k0 (kcs deep), panel m / 8, row k - k0, lane m % 8.
            for (m, k) in spotPositions(rows: K, columns: depth) {
                let k0 = k / kc * kc, kcs = min(kc, depth - k0)
                let at = k0 * mpad + (m / 8) * kcs * 8 + (k - k0) * 8 + m % 8
                guard cached.floats[at].bitPattern == weight[m * depth + k].bitPattern else { return nil }
            }
            return ConvWeights(params: p, path: .gemm, raw: nil, rawOwner: nil, packed: cached.buffer, mpad: mpad,
                               kc: kc, winogradErrors: cached.winogradErrors, fromCache: true)
        case .winograd(let m):
            let C = p.inChannels
            guard cached.count == Int(cgemm_wino_packed_u_floats(Int32(m), K, C)) else { return nil }
            let a = m + 2
            var g = [Double](repeating: 0, count: a * 3)
            guard cgemm_wino_matrices(Int32(m), nil, &g, nil) == 0 else { return nil }
            let plane = mpad * C
            for (k, c) in spotPositions(rows: K, columns: C) {
                // U = G w G^T for this pair, in double, against the stored floats at every position.
                let w = (0..<9).map { Double(weight[(k * C + c) * 9 + $0]) }
                let c0 = c / kc * kc, kcs = min(kc, C - c0)
                let at = c0 * mpad + (k / 8) * kcs * 8 + (c - c0) * 8 + k % 8
                for y in 0..<a {
                    for x in 0..<a {
                        var u = 0.0
                        for i in 0..<3 { for j in 0..<3 { u += g[y * 3 + i] * w[i * 3 + j] * g[x * 3 + j] } }
                        let stored = Double(cached.floats[(y * a + x) * plane + at])
                        guard abs(stored - u) <= 1e-6 * abs(u) + 1e-30 else { return nil }
                    }
                }
            }
            return ConvWeights(params: p, path: .winograd(tile: m), raw: nil, rawOwner: nil, packed: cached.buffer,
                               mpad: mpad, kc: kc, winogradErrors: cached.winogradErrors, fromCache: true)
        }
    }

    /// A few (row, column) positions spread over a rows x columns matrix: its corners and inside.
    private static func spotPositions(rows: Int, columns: Int) -> [(Int, Int)] {
        let picks: [(Int, Int)] = [(0, 0), (rows - 1, columns - 1), (rows / 2, columns / 3), (rows / 3, (2 * columns) / 3),
                                   ((3 * rows) / 4, columns / 2), (rows / 5, columns - 1)]
        return picks.map { (min(max($0.0, 0), rows - 1), min(max($0.1, 0), columns - 1)) }
    }

    /// The same weights, also holding the float32 `weight` (for callers that asked to keep it).
    private func keeping(_ weight: UnsafePointer<Float>, owner: AnyObject?) -> ConvWeights {
        ConvWeights(params: params, path: path, raw: weight, rawOwner: owner, packed: packed, mpad: mpad, kc: kc,
                    winogradErrors: winogradErrors, directPairs: directPairs, fromCache: fromCache)
    }

    /// U = G g G^T of every (output, input) channel pair, packed per position.
    static func winogradPack(_ weight: UnsafePointer<Float>, params p: Conv2DParams, tile m: Int, kc: Int) throws -> AlignedBuffer {
        let K = p.outChannels, C = p.inChannels
        let buffer = AlignedBuffer(bytes: Int(cgemm_wino_packed_u_floats(Int32(m), K, C)) * 4)
        guard cgemm_wino_pack_u(Int32(m), K, C, weight, kc, buffer.floats) == 0 else {
            throw BLError(.internal, "Winograd F(\(m)x\(m)) weight transform failed for conv(\(p))")
        }
        return buffer
    }

    /// The relative error (max |d| / max |reference|) of Winograd F(`m` x `m`) for this layer on a
    /// probe input, one 12x12 frame of values in [0, 1) (as after a ReLU), against float64 direct
    /// convolution, over up to 8 evenly spaced output channels. Only those channels' weights are
    /// transformed; each output channel's arithmetic does not depend on the others, so the error is
    /// the one the whole layer's transform gives on those channels.
    static func probeError(_ fullWeight: UnsafePointer<Float>, params full: Conv2DParams, tile m: Int, kc: Int) throws -> Double {
        try WinogradProbe(fullWeight, params: full).error(tile: m, kc: kc)
    }
}

/// `ConvWeights.probeError`'s input, checked channels and float64 reference, computed once per
/// layer for every tile tried.
struct WinogradProbe {
    static let size = 12
    /// The checked output channels' weights `[picks, C, 3, 3]` and the subset's parameters.
    let subset: [Float]
    let params: Conv2DParams
    /// The probe input `[C, 12, 12]` and the float64 convolution of it `[picks, 12, 12]`.
    let input: [Float]
    let reference: [Double]

    init(_ fullWeight: UnsafePointer<Float>, params full: Conv2DParams) {
        let C = full.inChannels, fullK = full.outChannels, s = Self.size
        let picks = Array(Set((0..<min(8, fullK)).map { $0 * fullK / min(8, fullK) })).sorted()
        let perChannel = C * 9
        var subset = [Float](repeating: 0, count: picks.count * perChannel)
        for (i, k) in picks.enumerated() {
            for j in 0..<perChannel { subset[i * perChannel + j] = fullWeight[k * perChannel + j] }
        }
        var p = full
        p.outChannels = picks.count
        var rng: UInt64 = 0x2545_f491_4f6c_dd1d
        let x = (0..<(C * s * s)).map { _ -> Float in
            rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(rng >> 40) / Float(1 << 24)
        }
        // Direct convolution (3x3, padding 1) in float64, tap by tap over contiguous row runs.
        var ref = [Double](repeating: 0, count: picks.count * s * s)
        let xd = x.map(Double.init)
        // Unchecked pointers: every index below stays inside its array by the loop bounds, and
        // the inner row loop vectorises (bounds-checked, this was 4% of a one-clip `run`).
        ref.withUnsafeMutableBufferPointer { refBuffer in
            xd.withUnsafeBufferPointer { xBuffer in
                guard let out = refBuffer.baseAddress, let xs = xBuffer.baseAddress else { return }
                for k in 0..<picks.count {
                    for c in 0..<C {
                        for i in 0..<3 {
                            for j in 0..<3 {
                                let w = Double(subset[((k * C + c) * 3 + i) * 3 + j])
                                let x0 = max(0, 1 - j), x1 = min(s, s + 1 - j)
                                for y in max(0, 1 - i)..<min(s, s + 1 - i) {
                                    // Input column xo - 1 + j of row y - 1 + i.
                                    let o = out + (k * s + y) * s, r = xs + ((c * s + y - 1 + i) * s + x0 - 1 + j)
                                    for xo in 0..<(x1 - x0) { o[x0 + xo] += w * r[xo] }
                                }
                            }
                        }
                    }
                }
            }
        }
        self.subset = subset
        self.params = p
        self.input = x
        self.reference = ref
    }

    /// Max |Winograd F(m) - reference| / max |reference| over the checked channels.
    func error(tile m: Int, kc: Int) throws -> Double {
        let s = Self.size, K = params.outChannels
        return try subset.withUnsafeBufferPointer { wp -> Double in
            guard let weight = wp.baseAddress else { return 0 }
            let u = try ConvWeights.winogradPack(weight, params: params, tile: m, kc: kc)
            let candidate = ConvWeights(params: params, path: .winograd(tile: m), raw: nil, rawOwner: nil, packed: u,
                                        mpad: (K + 7) / 8 * 8, kc: kc, winogradErrors: [:])
            var out = [Float](repeating: 0, count: K * s * s)
            var serial = KernelContext.serial
            serial.gemm = .auto
            try input.withUnsafeBufferPointer { xp in
                try out.withUnsafeMutableBufferPointer { op in
                    guard let xb = xp.baseAddress, let ob = op.baseAddress else { return }
                    let need = try Kernels.conv2dScratchCount(candidate, frames: 1, height: s, width: s, context: serial)
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(need, 1))
                    defer { scratch.deallocate() }
                    try Kernels.conv2d(xb, frames: 1, height: s, width: s, weights: candidate, bias: nil,
                                       output: ob, scratch: scratch, scratchCount: need, context: serial)
                }
            }
            var diff = 0.0, scale = 0.0
            for (o, r) in zip(out, reference) {
                diff = max(diff, abs(Double(o) - r))
                scale = max(scale, abs(r))
            }
            return scale > 0 ? diff / scale : diff
        }
    }
}
