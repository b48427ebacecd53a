import BLCore
import BLGraph
import BLSafetensors

extension ModelPackage {
    /// Reads a package: parses and validates the graph, maps the weights (no copy), checks that the
    /// weights are exactly those the graph declares, with their shapes.
    package static func read(_ path: String) throws -> ModelPackage {
        guard FileKind.of(path) == .directory else {
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
        let config: BLVNetConfig, dtype: DType
        do {
            (config, dtype) = try description(metadata: meta, graph: graph)
        } catch let e as BLError {
            throw e.inFile(dir + metadataFile)
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

    /// The configuration and dtype `metadata.json` declares, checked against `graph`
    /// (format, version, every configuration field within bounds and equal to the graph's).
    package static func description(metadata meta: JSON, graph: Graph) throws -> (config: BLVNetConfig, dtype: DType) {
        guard meta["format"]?.stringValue == format else {
            throw BLError(.format, "not a blconvert model package (missing \"format\": \"\(format)\")")
        }
        guard meta["version"]?.intValue == formatVersion else {
            throw BLError(.unsupported, "package version \(meta["version"].map { $0.serialized() } ?? "missing") (this build reads \(formatVersion))")
        }
        let config = try BLVNetConfig(json: meta["config"] ?? .null)
        try config.check(against: graph)
        guard let dtypeName = meta["dtype"]?.stringValue, let dtype = DType(torchName: dtypeName) else {
            throw BLError(.format, "missing or unknown \"dtype\"")
        }
        return (config, dtype)
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
