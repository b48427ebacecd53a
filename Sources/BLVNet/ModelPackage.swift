import Foundation
import BLCore
import BLGraph
import BLSafetensors

/// A converted model on disk: a directory holding
/// - `graph.json`: the graph IR (`Graph.json`),
/// - `weights.safetensors`: every weight the graph declares, under the graph's names,
/// - `metadata.json`: `{"format": "blconvert-model", "version": 1, "config": {...}, "source":
///   {"file", "sha256"}, "blconvert_version", "dtype", "optimized"}`, plus `"dtype_policy"` for
///   float16 / bfloat16 packages.
///
/// Storage dtype: a float32 package stores every weight as float32. A float16 or bfloat16 package
/// stores the convolution and linear weight matrices in that dtype (nearly all the bytes) and every
/// other weight (biases, BatchNorm vectors, TAM's `[C, 1, 1, 1]` kernels) as float32: see
/// `storedDType(of:in:)`. Packages storing every weight in the half dtype (written before this
/// policy) read and run as well: any float dtype is accepted per tensor.
package struct ModelPackage: Sendable {
    package static let format = "blconvert-model"
    package static let formatVersion = 1
    package static let graphFile = "graph.json"
    package static let weightsFile = "weights.safetensors"
    package static let metadataFile = "metadata.json"

    /// Where the weights came from.
    package struct Source: Sendable, Equatable {
        /// The checkpoint's file name (no directory).
        package var fileName: String
        /// Lower-case hex SHA-256 of the checkpoint file.
        package var sha256: String

        package init(fileName: String, sha256: String) {
            self.fileName = fileName
            self.sha256 = sha256
        }

        /// Name and digest of a file on disk.
        package static func of(file path: String) throws -> Source {
            Source(fileName: String(path.split(separator: "/").last ?? Substring(path)), sha256: try SHA256.hex(file: path))
        }
    }

    /// `Source.of(file:)` computed on a thread of its own, started at `init`, so that hashing the
    /// checkpoint overlaps the passes and the writing; `wait()` joins it.
    package final class PendingSource: @unchecked Sendable {
        package let path: String
        private let lock = NSCondition()
        private var result: Result<Source, Error>?
        private var elapsed = 0.0

        package init(file path: String) {
            self.path = path
            let thread = Thread { [self] in
                let start = DispatchTime.now().uptimeNanoseconds
                let r = Result { try Source.of(file: path) }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                lock.lock()
                result = r
                elapsed = seconds
                lock.broadcast()
                lock.unlock()
            }
            thread.name = "sha256"
            thread.start()
        }

        /// The source once hashed (waits for the thread; the same answer on every call).
        package func wait() throws -> Source {
            lock.lock()
            defer { lock.unlock() }
            while true {
                if let r = result { return try r.get() }
                lock.wait()
            }
        }

        /// Seconds the hashing took on its thread (0 until it has finished).
        package var seconds: Double {
            lock.lock()
            defer { lock.unlock() }
            return elapsed
        }
    }

    package var graph: Graph
    /// The weights (as read: each in its stored dtype; as imported: float32 until written). Use
    /// `Tensor.floats()` or `converted(to:)` to compute.
    package var weights: [String: Tensor]
    package var config: BLVNetConfig
    package var source: Source?
    /// The package's storage dtype: that of its convolution and linear weights.
    package var dtype: DType
    /// Whether BatchNorm folding and ReLU fusion were applied.
    package var optimized: Bool
    package var toolVersion: String

    package init(graph: Graph, weights: [String: Tensor], config: BLVNetConfig, source: Source?, dtype: DType,
                optimized: Bool, toolVersion: String) {
        self.graph = graph
        self.weights = weights
        self.config = config
        self.source = source
        self.dtype = dtype
        self.optimized = optimized
        self.toolVersion = toolVersion
    }

    /// A package from an imported checkpoint; with `optimize`, BatchNorm is folded and ReLU fused
    /// (taps of pre-ReLU modules keep their own ReLU node, see `GraphPasses`). The checkpoint pages
    /// holding weights that folding replaced are released from memory (`model` stays readable).
    package init(importing model: ImportedModel, optimize: Bool = true, dtype: DType = .float32, source: Source?,
                toolVersion: String) throws {
        var graph = model.graph, weights = model.weights
        if optimize { (graph, weights) = try GraphPasses.optimize(graph, weights: weights, releasingInputs: true) }
        self.init(graph: graph, weights: weights, config: model.config, source: source, dtype: dtype,
                  optimized: optimize, toolVersion: toolVersion)
    }

    /// The weights as contiguous float32 tensors (a no-copy view for float32 packages).
    package func floatWeights() throws -> [String: Tensor] {
        try weights.mapValues { try $0.converted(to: .float32) }
    }

    /// The dtypes a package may store weights in.
    package static let storableDTypes: [DType] = [.float32, .float16, .bfloat16]

    /// Names of the weights a half-precision package stores in its half dtype: the weight
    /// matrices of `conv2d` and `linear` nodes (biases, BatchNorm vectors and TAM kernels stay float32).
    package static func halfPrecisionWeights(in graph: Graph) -> Set<String> {
        var names = Set<String>()
        for node in graph.nodes {
            switch node.op {
            case .conv2d(let c): names.insert(c.weight)
            case .linear(let l): names.insert(l.weight)
            default: break
            }
        }
        return names
    }

    /// The dtype weight `name` is stored in by a package of dtype `dtype` over `graph`.
    package static func storedDType(of name: String, in graph: Graph, dtype: DType) -> DType {
        dtype == .float32 || halfPrecisionWeights(in: graph).contains(name) ? dtype : .float32
    }

    /// How the package's dtype applies to its weights, as `metadata.json` records it (nil for float32).
    package static func dtypePolicy(_ dtype: DType) -> String? {
        dtype == .float32 ? nil : "conv and linear weights in \(dtype.torchName), vectors in float32"
    }

    package var metadataJSON: JSON {
        .object([
            ("format", .string(ModelPackage.format)),
            ("version", .int(Int64(ModelPackage.formatVersion))),
            ("config", config.json),
            ("source", source.map { .object([("file", .string($0.fileName)), ("sha256", .string($0.sha256))]) } ?? .null),
            ("blconvert_version", .string(toolVersion)),
            ("dtype", .string(dtype.torchName)),
        ] + (ModelPackage.dtypePolicy(dtype).map { [("dtype_policy", JSON.string($0))] } ?? []) + [
            ("optimized", .bool(optimized)),
        ])
    }

    /// Writes the package directory at `path` atomically: everything is written into a hidden
    /// temporary directory beside it, then renamed into place; on failure nothing is left behind.
    /// An existing `path` is replaced only with `overwrite`.
    package func write(to path: String, overwrite: Bool = false) throws {
        try write(to: path, overwrite: overwrite) { metadataJSON }
    }

    /// As `write(to:overwrite:)` while the source's digest is still being computed: the graph and
    /// the weights are written meanwhile, then `metadata.json` once `pending` is done; `source`
    /// becomes its result. A failed digest fails the write (nothing is left behind).
    package mutating func write(to path: String, overwrite: Bool = false, source pending: PendingSource) throws {
        var package = self
        try write(to: path, overwrite: overwrite) {
            package.source = try pending.wait()
            return package.metadataJSON
        }
        source = package.source
    }

    private func write(to path: String, overwrite: Bool, metadata: () throws -> JSON) throws {
        guard ModelPackage.storableDTypes.contains(dtype) else {
            throw BLError(.invalidArgument, "weights can be stored as f32, f16 or bf16, not \(dtype.torchName)")
        }
        try graph.validateStructure()
        try graph.checkWeights(weights.mapValues { $0.shape })
        let fm = FileManager.default
        var isDir: ObjCBool = false
        let exists = fm.fileExists(atPath: path, isDirectory: &isDir)
        if exists && !overwrite {
            throw BLError(.io, "already exists (choose another name or allow overwriting)", file: path)
        }
        if exists && !isDir.boolValue {
            throw BLError(.io, "exists and is not a package directory", file: path)
        }
        let url = URL(fileURLWithPath: path).standardizedFileURL
        let parent = url.deletingLastPathComponent()
        let name = url.lastPathComponent
        guard !name.isEmpty, name != ".", name != ".." else {
            throw BLError(.invalidArgument, "'\(path)' is not a usable package name")
        }
        let temp = parent.appendingPathComponent(".\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try fm.createDirectory(at: temp, withIntermediateDirectories: false)
        } catch {
            throw BLError(.io, "cannot create a directory beside the package: \(error.localizedDescription)", file: temp.path)
        }
        do {
            try writeText(graph.json.serialized(indent: 1) + "\n", to: temp.appendingPathComponent(ModelPackage.graphFile).path)
            // Each weight is converted to its stored dtype just before it is written, so at most one
            // converted copy is in memory; the writer takes the names, dtypes and shapes first.
            let half = dtype == .float32 ? [] : ModelPackage.halfPrecisionWeights(in: graph)
            let shapeOnly = ByteStorage(copying: [UInt8](repeating: 0, count: 8))
            var declared = [(name: String, tensor: Tensor)]()
            for spec in graph.weights {
                guard let t = weights[spec.name] else { throw BLError(.mismatch, "weight '\(spec.name)' is missing") }
                let target = half.contains(spec.name) ? dtype : .float32
                declared.append((spec.name, try Tensor(dtype: target, shape: t.shape, strides: t.shape.map { _ in 0 },
                                                       storage: shapeOnly)))
            }
            let stMeta = [("format", ModelPackage.format), ("blconvert_version", toolVersion)]
            try SafetensorsWriter.write(declared, metadata: stMeta, to: temp.appendingPathComponent(ModelPackage.weightsFile).path) { name, d in
                guard let t = weights[name] else { throw BLError(.mismatch, "weight '\(name)' is missing") }
                do {
                    let s = try t.converted(to: d.dtype)
                    // A mapped checkpoint's pages read for a copy are dropped (they stay readable).
                    if s.storage !== t.storage, t.isContiguous {
                        t.storage.releasePages((t.offset * t.dtype.byteSize)..<((t.offset + t.elementCount) * t.dtype.byteSize))
                    }
                    return s
                } catch let e as BLError {
                    throw e.at("weight '\(name)'")
                }
            }
            try writeText(try metadata().serialized(indent: 1) + "\n", to: temp.appendingPathComponent(ModelPackage.metadataFile).path)
            if exists {
                let old = parent.appendingPathComponent(".\(name).old-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
                try renameOrThrow(url.path, old.path)
                do {
                    try renameOrThrow(temp.path, url.path)
                } catch {
                    try? renameOrThrow(old.path, url.path)
                    throw error
                }
                try? fm.removeItem(at: old)
            } else {
                try renameOrThrow(temp.path, url.path)
            }
        } catch {
            try? fm.removeItem(at: temp)
            throw error
        }
    }

    /// Reads a package: parses and validates the graph, maps the weights (no copy), checks that the
    /// weights are exactly those the graph declares, with their shapes.
    package static func read(_ path: String) throws -> ModelPackage {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw BLError(.io, "not a model package directory (expected \(graphFile), \(weightsFile), \(metadataFile))", file: path)
        }
        let dir = path.hasSuffix("/") ? path : path + "/"
        let graph: Graph
        do {
            graph = try Graph(json: try parseJSON(dir + graphFile))
        } catch let e as BLError {
            throw e.inFile(dir + graphFile)
        }
        let meta = try parseJSON(dir + metadataFile)
        guard meta["format"]?.stringValue == format else {
            throw BLError(.format, "not a blconvert model package (missing \"format\": \"\(format)\")", file: dir + metadataFile)
        }
        guard meta["version"]?.intValue == formatVersion else {
            throw BLError(.unsupported, "package version \(meta["version"].map { $0.serialized() } ?? "missing") (this build reads \(formatVersion))", file: dir + metadataFile)
        }
        let config: BLVNetConfig
        do {
            config = try BLVNetConfig(json: meta["config"] ?? .null)
        } catch let e as BLError {
            throw e.inFile(dir + metadataFile)
        }
        guard let dtypeName = meta["dtype"]?.stringValue, let dtype = DType(torchName: dtypeName) else {
            throw BLError(.format, "missing or unknown \"dtype\"", file: dir + metadataFile)
        }
        var source: Source? = nil
        if let s = meta["source"], let f = s["file"]?.stringValue, let h = s["sha256"]?.stringValue {
            source = Source(fileName: f, sha256: h)
        }
        let st = try SafetensorsFile.load(path: dir + weightsFile)
        var weights = [String: Tensor]()
        for (name, t) in st.tensors { weights[name] = t }
        let extra = Set(weights.keys).subtracting(graph.weights.map(\.name))
        if !extra.isEmpty {
            throw BLError(.mismatch, "tensors the graph does not use: \(extra.sorted().joined(separator: ", "))", file: dir + weightsFile)
        }
        do {
            try graph.checkWeights(weights.mapValues { $0.shape })
        } catch let e as BLError {
            throw e.inFile(dir + weightsFile)
        }
        for (name, t) in weights where !t.dtype.isFloatingPoint {
            throw BLError(.format, "weight '\(name)' is \(t.dtype.torchName), expected a float type", file: dir + weightsFile)
        }
        let optimized: Bool
        if case .bool(let b)? = meta["optimized"] { optimized = b } else { optimized = false }
        return ModelPackage(graph: graph, weights: weights, config: config, source: source, dtype: dtype,
                            optimized: optimized, toolVersion: meta["blconvert_version"]?.stringValue ?? "unknown")
    }

    static func parseJSON(_ path: String) throws -> JSON {
        let file = try MappedFile(path: path)
        guard file.count <= 256 << 20 else { throw BLError(.format, "file is too large for a package's JSON", file: path) }
        do {
            return try JSONParser.parse(file.bytes)
        } catch let e as BLError {
            throw e.inFile(path)
        }
    }
}

private func writeText(_ text: String, to path: String) throws {
    guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
        throw BLError(.io, "cannot write: \(String(cString: strerror(errno)))", file: path)
    }
}

private func renameOrThrow(_ from: String, _ to: String) throws {
    if rename(from, to) != 0 {
        throw BLError(.io, "cannot rename \(from) to \(to): \(String(cString: strerror(errno)))", file: to)
    }
}
