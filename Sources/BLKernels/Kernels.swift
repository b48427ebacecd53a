import BLCore
import Foundation

/// Float32 NCHW kernels. Every fast kernel has a direct-loop oracle beside it (`...Naive`).
///
/// Conventions shared by every kernel:
/// - Tensors are dense, row-major `Float` buffers passed as raw pointers with explicit dimensions.
///   A "frame tensor" is `[F, C, H, W]` with `F = N * T` (clips of T frames, frame-major).
/// - Kernels never allocate in their loops. Kernels that need scratch take a caller-provided buffer;
///   a matching `...ScratchCount` function says how many floats it needs, so an engine can plan memory.
/// - Unless a function says otherwise, outputs must not overlap inputs.
/// - Invalid dimensions are reported as `BLError(.invalidArgument, ...)`; nothing traps.
package enum Kernels {}

/// Threading and tiling configuration for the kernels.
///
/// `threads` workers run the kernels' own loops (split with `DispatchQueue.concurrentPerform`
/// when large enough). With the default `.tiles` parallelism OpenBLAS runs single-threaded and
/// each convolution worker takes whole GEMM tiles; with `.blas` OpenBLAS runs `threads` threads
/// inside each GEMM. `conv2d` sets OpenBLAS's (process-wide) thread count to match its context;
/// `activate()` does it explicitly (e.g. before `linear`).
///
/// Measured on this 2-core machine (bLVNet-TAM-50 clip, 71 convolutions): `.tiles` ran within
/// about 8% of the bare SGEMM time, `.blas` about 19% above it.
package struct KernelContext: Sendable, Equatable {
    /// How convolutions use the threads.
    package enum ConvParallelism: Sendable, Equatable {
        /// OpenBLAS single-threaded; each worker takes whole tiles (im2col + GEMM + epilogue on
        /// one core), or, when there are fewer tiles than workers, a share of the output channels.
        case tiles
        /// OpenBLAS threads inside every GEMM; im2col and epilogue loops split around it.
        case blas
    }

    /// Which SGEMM the convolutions run.
    package enum GemmBackend: Sendable, Equatable {
        /// The package's AVX-512 SGEMM when the CPU has AVX-512F and the GEMM runs on one thread
        /// (`.tiles` parallelism); `cblas_sgemm` otherwise.
        case auto
        /// Always `cblas_sgemm` (OpenBLAS with whatever kernels it chose at load time).
        case blas

        /// The environment variable that sets the default backend: `blas` or `auto`.
        package static let environmentVariable = "BLCONVERT_GEMM"

        /// `.blas` when `BLCONVERT_GEMM=blas` is set, `.auto` otherwise.
        package static let fromEnvironment: GemmBackend =
            ProcessInfo.processInfo.environment[environmentVariable]?.lowercased() == "blas" ? .blas : .auto
    }

    /// Threads for BLAS and for the kernels' own loops (>= 1).
    package var threads: Int
    /// SGEMM of the convolutions (default `.auto`, or `.blas` with `BLCONVERT_GEMM=blas`).
    package var gemm: GemmBackend
    package var convParallelism: ConvParallelism
    /// Upper bound, in floats, of one im2col tile (the dominant part of the conv scratch).
    package var im2colBudget: Int
    /// Upper bound, in floats, of the GEMM result of one tile (kept small enough for the
    /// epilogue to find it in cache).
    package var outputTileBudget: Int
    /// Convolutions whose output plane (OH*OW) is smaller than this are run as one GEMM over
    /// several frames (columns of several frames side by side), so each GEMM has at least about
    /// this many columns.
    package var minGemmColumns: Int
    /// Loops touching fewer elements than this stay on the calling thread.
    package var minParallelElements: Int
    /// Winograd tiles per block a worker takes whole (its transforms and GEMMs stay on one core).
    package var winogradBlockTiles: Int
    /// Upper bound, in floats, of the scratch of one Winograd block shared by the workers (layers
    /// with fewer than two blocks per worker).
    package var winogradScratchBudget: Int
    /// Bottlenecks (1x1, 3x3, 1x1 and the residual add) whose every output plane has at least
    /// this many pixels run frame by frame, each worker a whole frame (`Kernels.convChain`);
    /// `Int.max` turns that off.
    package var minChainPlane: Int

    package init(threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                im2colBudget: Int = 1 << 20,
                outputTileBudget: Int = 1 << 22,
                minGemmColumns: Int = 160,
                minParallelElements: Int = 1 << 15, convParallelism: ConvParallelism = .tiles,
                gemm: GemmBackend = .fromEnvironment, winogradBlockTiles: Int = 96,
                winogradScratchBudget: Int = 1 << 22, minChainPlane: Int = ConvChainSwitch.fromEnvironment) {
        self.threads = max(1, threads)
        self.gemm = gemm
        self.convParallelism = convParallelism
        self.im2colBudget = max(1, im2colBudget)
        self.outputTileBudget = max(1, outputTileBudget)
        self.minGemmColumns = max(1, minGemmColumns)
        self.minParallelElements = max(1, minParallelElements)
        self.winogradBlockTiles = max(16, winogradBlockTiles)
        self.winogradScratchBudget = max(1, winogradScratchBudget)
        self.minChainPlane = max(1, minChainPlane)
    }

    /// Threads OpenBLAS should run: 1 with `.tiles` (the kernels parallelize around single-threaded
    /// GEMMs), `threads` with `.blas`.
    package var blasThreads: Int { convParallelism == .tiles ? 1 : threads }

    /// Applies `blasThreads` to OpenBLAS (a process-wide setting). Call once before running kernels,
    /// and again after switching between contexts of different parallelism.
    package func activate() {
        BLAS.threads = blasThreads
    }

    /// `activate()` when OpenBLAS runs another thread count (conv2d calls this itself).
    package func ensureBLASThreads() {
        if BLAS.threads != blasThreads { BLAS.threads = blasThreads }
    }

    /// Single-threaded context (the oracles never use threads; tests use this to compare paths).
    package static let serial = KernelContext(threads: 1)

    /// `.serial` with this context's GEMM backend (what one worker of a parallel kernel runs).
    package var serialized: KernelContext {
        var s = KernelContext.serial
        s.gemm = gemm
        s.winogradBlockTiles = winogradBlockTiles
        s.winogradScratchBudget = winogradScratchBudget
        return s
    }
}

/// A raw pointer that may be captured by the parallel loop bodies. The kernels guarantee that
/// concurrent iterations write disjoint elements.
@usableFromInline
struct SharedPointer<T>: @unchecked Sendable {
    @usableFromInline let p: UnsafeMutablePointer<T>
    @inlinable init(_ p: UnsafeMutablePointer<T>) { self.p = p }
    @inlinable init(_ p: UnsafePointer<T>) { self.p = UnsafeMutablePointer(mutating: p) }
}

extension KernelContext {
    /// Runs `body(lo, hi)` over disjoint chunks covering `0..<count`, on up to `threads` threads
    /// when `work` (elements touched) is at least `minParallelElements`.
    @inlinable
    func parallelChunks(_ count: Int, work: Int, _ body: @Sendable (Int, Int) -> Void) {
        let parts = min(threads, count)
        if parts <= 1 || work < minParallelElements {
            if count > 0 { body(0, count) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let lo = count * part / parts
            let hi = count * (part + 1) / parts
            if lo < hi { body(lo, hi) }
        }
    }
}

extension KernelContext {
    /// Runs `body(part, lo, hi)` for `parts` disjoint chunks covering `0..<count` (on the calling
    /// thread alone when `work` is below `minParallelElements` or only one part is possible).
    @inlinable
    func parallelParts(_ count: Int, parts wanted: Int, work: Int, _ body: @Sendable (Int, Int, Int) -> Void) {
        let parts = min(wanted, count)
        if parts <= 1 || work < minParallelElements {
            if count > 0 { body(0, 0, count) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let lo = count * part / parts
            let hi = count * (part + 1) / parts
            if lo < hi { body(part, lo, hi) }
        }
    }
}

/// Argument checks shared by the kernels.
enum Check {
    static func positive(_ values: [(String, Int)], in kernel: String) throws {
        for (name, v) in values where v <= 0 {
            throw BLError(.invalidArgument, "\(kernel): \(name) must be positive, found \(v)")
        }
    }

    static func nonNegative(_ values: [(String, Int)], in kernel: String) throws {
        for (name, v) in values where v < 0 {
            throw BLError(.invalidArgument, "\(kernel): \(name) must not be negative, found \(v)")
        }
    }

    /// `a * b * ...` without overflow, or an error.
    static func product(_ values: [Int], in kernel: String) throws -> Int {
        var r = 1
        for v in values {
            let (m, o) = r.multipliedReportingOverflow(by: v)
            if o { throw BLError(.invalidArgument, "\(kernel): tensor size overflows (\(values))") }
            r = m
        }
        return r
    }
}
