import BLCheckpoint
import BLCore
import BLEngine
import BLKernels
import BLVNet
import Foundation

/// Turns checkpoints into model packages.
public enum Converter {
    /// What an import did.
    public struct ImportSummary: Sendable {
        /// The configuration read from the checkpoint.
        public let configuration: ModelConfiguration
        /// The checkpoint's format: `pytorch-zip`, `pytorch-legacy`, `hdf5`, `safetensors`, `pickle`.
        public let sourceFormat: String
        /// Tensors the checkpoint holds (training state included).
        public let checkpointTensors: Int
        /// Lower-case hex SHA-256 of the checkpoint, as recorded in the package.
        public let sourceSHA256: String
        /// Nodes and weights of the package's graph.
        public let nodes: Int
        public let weights: Int
        public let precision: WeightPrecision
        /// Whether BatchNorm was folded and ReLU fused.
        public let optimized: Bool
        /// Seconds per stage (`read_and_map`, `passes`, `write`, `sha256`; hashing runs beside the others).
        public let stageSeconds: [(stage: String, seconds: Double)]
        /// Seconds in all.
        public let seconds: Double
        /// Settings that contradict each other or the checkpoint (the import went on): `frames`
        /// against the checkpoint's `arch`, half precision asked of half-precision weights.
        public let warnings: [String]
        /// Layers and bytes of the kernel cache written with the package (`kernels.safetensors`:
        /// the weights already in the form this CPU's kernels run them, so that loading maps them
        /// instead of packing); (0, 0) when none was written.
        public var kernelCache: (layers: Int, bytes: Int) = (0, 0)
    }

    /// A stage of an import, reported as it starts.
    public enum ImportStage: String, Sendable {
        case reading, building, writing
    }

    /// Reads a checkpoint (PyTorch zip or legacy, a training checkpoint, HDF5, safetensors), maps it
    /// strictly onto bLVNet-TAM and writes a model package directory at `package`.
    ///
    /// The package is written into a temporary directory beside `package` and renamed into place:
    /// a failed import leaves nothing behind. An existing package is replaced only with `overwrite`,
    /// and never a directory that is not a package, nor a file.
    ///
    /// - Parameters:
    ///   - checkpoint: the checkpoint file to read.
    ///   - package: the model package directory to write.
    ///   - precision: how the convolution and linear weights are stored (vectors stay float32).
    ///   - frames: T; see ``FrameCount`` for where it comes from when nil.
    ///   - optimize: fold BatchNorm into the convolutions and fuse ReLU (false keeps the reference
    ///     graph, where every reference module's output can be verified).
    ///   - overwrite: replace an existing model package at `package`.
    ///   - kernelCache: also write the package's kernel cache (float32 packages on a CPU that
    ///     runs the packed kernels): the convolution weights packed (and transformed for
    ///     Winograd) as loading would, so that loading on a CPU with the same kernel layout
    ///     maps them instead; about as large again as the weights. Loading without it, or
    ///     with one made on another CPU, packs as usual.
    ///   - progress: called as each stage starts.
    /// - Returns: what was read and written.
    @discardableResult
    public static func importCheckpoint(_ checkpoint: URL, to package: URL, precision: WeightPrecision = .float32,
                                        frames: Int? = nil, optimize: Bool = true, overwrite: Bool = false,
                                        kernelCache: Bool = true,
                                        progress: ((ImportStage) -> Void)? = nil) throws(BLConvertError) -> ImportSummary {
        let input = checkpoint.path, output = package.path
        return try bridged { () throws -> ImportSummary in
          let (summary, warnings) = try Warnings.collect { () throws -> ImportSummary in
            let start = MonotonicClock.seconds()
            var stages: [(String, Double)] = []
            if FileKind.of(input) == .directory { throw BLError(.io, "is a directory, expected a checkpoint file", file: input) }
            try OutputPath.check(output, option: "the output", inputs: [input])
            if FileKind.of(output) != .missing {
                guard overwrite else {
                    throw BLError(.invalidArgument, "already exists: choose another output or pass --force to replace it", file: output)
                }
                guard ModelPackage.isPackage(output) else {
                    throw BLError(.invalidArgument, "exists and is not a model package; --force only replaces a package written by blconvert import", file: output)
                }
            }
            var t = MonotonicClock.seconds()
            progress?(.reading)
            let (model, ck) = try CheckpointImport.importModel(path: input, frames: frames)
            if precision != .float32, optimize,
               let half = model.weights.values.first(where: { $0.dtype == .float16 || $0.dtype == .bfloat16 })?.dtype {
                Warnings.emit("the checkpoint's weights are already \(half.torchName): folding BatchNorm into them changes the weights, and storing the result as \(precision.dtype.torchName) rounds again, so the exact half-precision values are lost; --no-optimize keeps them")
            }
            stages.append(("read_and_map", MonotonicClock.seconds() - t)); t = MonotonicClock.seconds()
            let source = ModelPackage.PendingSource(file: input)  // hashed on its own thread meanwhile
            progress?(.building)
            var pkg = try ModelPackage(importing: model, optimize: optimize, dtype: precision.dtype, source: nil,
                                       toolVersion: BLConvertInfo.version)
            stages.append(("passes", MonotonicClock.seconds() - t)); t = MonotonicClock.seconds()
            progress?(.writing)
            try pkg.write(to: output, overwrite: overwrite, source: source)
            stages.append(("write", MonotonicClock.seconds() - t)); t = MonotonicClock.seconds()
            var cache = (layers: 0, bytes: 0)
            if kernelCache && precision == .float32 {
                cache = try writeKernelCache(package: output)
                stages.append(("kernel_cache", MonotonicClock.seconds() - t))
            }
            stages.append(("sha256", source.seconds))  // concurrent with passes and write
            var s = ImportSummary(configuration: ModelConfiguration(pkg.config), sourceFormat: ck.format.rawValue,
                                  checkpointTensors: ck.tensors.count, sourceSHA256: pkg.source?.sha256 ?? "",
                                  nodes: pkg.graph.nodes.count, weights: pkg.graph.weights.count, precision: precision,
                                  optimized: optimize, stageSeconds: stages.map { (stage: $0.0, seconds: $0.1) },
                                  seconds: MonotonicClock.seconds() - start, warnings: [])
            s.kernelCache = cache
            return s
          }
          var s = ImportSummary(configuration: summary.configuration, sourceFormat: summary.sourceFormat,
                                checkpointTensors: summary.checkpointTensors, sourceSHA256: summary.sourceSHA256,
                                nodes: summary.nodes, weights: summary.weights, precision: summary.precision,
                                optimized: summary.optimized, stageSeconds: summary.stageSeconds, seconds: summary.seconds,
                                warnings: warnings)
          s.kernelCache = summary.kernelCache
          return s
        }
    }

    /// Writes (or replaces) the kernel cache of an existing float32 package for this CPU: what
    /// ``importCheckpoint(_:to:precision:frames:optimize:overwrite:kernelCache:progress:)`` writes
    /// on the CPU it runs on, for a package moved to a CPU with another kernel layout (whose loads
    /// ignore the old cache and pack the weights each time). Written atomically beside the weights.
    ///
    /// - Returns: the layers and bytes written.
    /// - Throws: for a path that is not a model package, a float16/bfloat16 package, or a CPU
    ///   that does not run the packed kernels (no AVX-512).
    @discardableResult
    public static func writeKernelCache(package url: URL) throws(BLConvertError) -> (layers: Int, bytes: Int) {
        let path = url.path
        return try bridged { () throws -> (layers: Int, bytes: Int) in
            guard ModelPackage.isPackage(path) else {
                throw BLError(.invalidArgument, "not a model package (no metadata.json and graph.json): give a directory written by blconvert import", file: path)
            }
            guard CachedConvWeights.layout != nil else {
                throw BLError(.unsupported, "this CPU does not run the packed kernels (AVX-512), which the kernel cache is for", file: path)
            }
            let p = try ModelPackage.read(path)
            guard p.dtype == .float32 else {
                throw BLError(.unsupported, "a kernel cache is for float32 packages; this one stores \(p.dtype.torchName) (its weights are widened per use)", file: path)
            }
            return try writeKernelCache(package: path)
        }
    }

    /// Writes the kernel cache of the float32 package just written at `path` (see `KernelCache`):
    /// its weights bound as a default float32 load binds them, then stored.
    static func writeKernelCache(package path: String) throws -> (layers: Int, bytes: Int) {
        guard CachedConvWeights.layout != nil else { return (0, 0) }
        let written = try ModelPackage.read(path)
        let engine = try Engine(graph: written.graph, weights: written.weights, context: KernelContext(),
                                precision: .float32)
        return try KernelCache.write(engine, packageDirectory: path)
    }
}
