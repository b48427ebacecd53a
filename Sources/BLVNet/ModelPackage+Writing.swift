import BLCore
import BLGraph
import BLSafetensors

extension ModelPackage {
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
        let kind = FileKind.of(path)
        if kind != .missing && !overwrite {
            throw BLError(.io, "already exists (choose another name or allow overwriting)", file: path)
        }
        if kind != .missing && kind != .directory {
            throw BLError(.io, "exists and is not a package directory", file: path)
        }
        let name = path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? ""
        guard !name.isEmpty, name != ".", name != ".." else {
            throw BLError(.invalidArgument, "'\(path)' is not a usable package name")
        }
        let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
        let temp = try AtomicDirectory.temporarySibling(of: trimmed)
        do {
            try AtomicFile.write(graph.json.serialized(indent: 1) + "\n", to: temp + "/" + ModelPackage.graphFile)
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
            try SafetensorsWriter.write(declared, metadata: stMeta, to: temp + "/" + ModelPackage.weightsFile) { name, d in
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
            try AtomicFile.write(try metadata().serialized(indent: 1) + "\n", to: temp + "/" + ModelPackage.metadataFile)
            try AtomicDirectory.install(temp, at: trimmed, replacingExisting: kind == .directory)
        } catch {
            AtomicDirectory.removeTree(temp)
            throw error
        }
    }
}
