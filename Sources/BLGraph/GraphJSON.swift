import BLCore

/// JSON form of the graph (the `graph.json` of a model package):
/// `{"format": "blgraph", "version": 1, "nodes": [{"id", "op", "inputs", "origin"?, "attrs"}],
///   "output", "weights": [{"name", "shape"}], "taps": [{"module", "node"}]}`.
extension Graph {
    package static let jsonFormat = "blgraph"
    package static let jsonVersion = 1

    package var json: JSON {
        .object([
            ("format", .string(Graph.jsonFormat)),
            ("version", .int(Int64(Graph.jsonVersion))),
            ("nodes", .array(nodes.map { $0.json })),
            ("output", .int(Int64(output))),
            ("weights", .array(weights.map { .object([("name", .string($0.name)), ("shape", ints($0.shape))]) })),
            ("taps", .array(taps.map { .object([("module", .string($0.module)), ("node", .int(Int64($0.node)))]) })),
        ])
    }

    /// Parses and validates (`validateStructure`) a graph written by `json`.
    package init(json: JSON) throws {
        guard json["format"]?.stringValue == Graph.jsonFormat else {
            throw BLError(.format, "not a graph: missing \"format\": \"\(Graph.jsonFormat)\"")
        }
        guard let v = json["version"]?.intValue, v == Graph.jsonVersion else {
            throw BLError(.unsupported, "graph version \(json["version"].map { $0.serialized() } ?? "missing") (this build reads \(Graph.jsonVersion))")
        }
        let f = Fields(json, "graph")
        var g = Graph()
        for (i, item) in try f.array("nodes").enumerated() {
            g.nodes.append(try Node(json: item, context: "node \(i)"))
        }
        g.output = try f.int("output")
        for (i, item) in try f.array("weights").enumerated() {
            let w = Fields(item, "weight \(i)")
            g.weights.append(WeightSpec(name: try w.string("name"), shape: try w.ints("shape")))
        }
        for (i, item) in try f.array("taps").enumerated() {
            let t = Fields(item, "tap \(i)")
            g.taps.append(Tap(module: try t.string("module"), node: try t.int("node")))
        }
        try g.validateStructure()
        self = g
    }

    package init(jsonText: String) throws {
        try self.init(json: try JSONParser.parse(jsonText))
    }
}

private func ints(_ xs: [Int]) -> JSON { .array(xs.map { .int(Int64($0)) }) }

/// Typed field access with errors naming the object.
private struct Fields {
    let json: JSON
    let context: String
    init(_ json: JSON, _ context: String) { self.json = json; self.context = context }

    func value(_ k: String) throws -> JSON {
        guard json.objectValue != nil else { throw BLError(.format, "\(context): expected an object") }
        guard let v = json[k] else { throw BLError(.format, "\(context): missing \"\(k)\"") }
        return v
    }
    func int(_ k: String) throws -> Int {
        guard let i = try value(k).intValue else { throw BLError(.format, "\(context): \"\(k)\" must be an integer") }
        return i
    }
    func double(_ k: String) throws -> Double {
        guard let d = try value(k).doubleValue else { throw BLError(.format, "\(context): \"\(k)\" must be a number") }
        return d
    }
    func bool(_ k: String) throws -> Bool {
        guard case .bool(let b) = try value(k) else { throw BLError(.format, "\(context): \"\(k)\" must be true or false") }
        return b
    }
    func string(_ k: String) throws -> String {
        guard let s = try value(k).stringValue else { throw BLError(.format, "\(context): \"\(k)\" must be a string") }
        return s
    }
    func optionalString(_ k: String) throws -> String? {
        guard let v = json[k], v != .null else { return nil }
        guard let s = v.stringValue else { throw BLError(.format, "\(context): \"\(k)\" must be a string") }
        return s
    }
    func array(_ k: String) throws -> [JSON] {
        guard let a = try value(k).arrayValue else { throw BLError(.format, "\(context): \"\(k)\" must be an array") }
        return a
    }
    func ints(_ k: String) throws -> [Int] {
        try array(k).map { x in
            guard let i = x.intValue else { throw BLError(.format, "\(context): \"\(k)\" must hold integers") }
            return i
        }
    }
    func strings(_ k: String) throws -> [String] {
        try array(k).map { x in
            guard let s = x.stringValue else { throw BLError(.format, "\(context): \"\(k)\" must hold strings") }
            return s
        }
    }
}

extension Node {
    package var json: JSON {
        var items: [(String, JSON)] = [("id", .int(Int64(id))), ("op", .string(op.name)), ("inputs", ints(inputs))]
        if let origin { items.append(("origin", .string(origin))) }
        items.append(("attrs", .object(op.attributes)))
        return .object(items)
    }

    init(json: JSON, context: String) throws {
        let f = Fields(json, context)
        let a = Fields(try f.value("attrs"), context + " attrs")
        let name = try f.string("op")
        let op: Op
        switch name {
        case "input": op = .input(frames: try a.int("frames"), channels: try a.int("channels"))
        case "framesFromChannels": op = .framesFromChannels(frames: try a.int("frames"))
        case "conv2d":
            op = .conv2d(Conv2D(inChannels: try a.int("inChannels"), outChannels: try a.int("outChannels"),
                                kernel: try a.int("kernel"), stride: try a.int("stride"), padding: try a.int("padding"),
                                groups: try a.int("groups"), weight: try a.string("weight"),
                                bias: try a.optionalString("bias"), relu: try a.bool("relu")))
        case "batchNorm":
            op = .batchNorm(BatchNorm(channels: try a.int("channels"), weight: try a.string("weight"),
                                      bias: try a.string("bias"), runningMean: try a.string("runningMean"),
                                      runningVar: try a.string("runningVar"), eps: try a.double("eps")))
        case "relu": op = .relu
        case "add": op = .add(relu: try a.bool("relu"))
        case "avgPool2d": op = .avgPool2d(kernel: try a.int("kernel"), stride: try a.int("stride"), padding: try a.int("padding"))
        case "resizeNearest": op = .resizeNearest
        case "tam": op = .tam(TAM(duration: try a.int("duration"), channels: try a.int("channels"), weights: try a.strings("weights")))
        case "selectFrames":
            let p = try a.string("parity")
            guard let parity = FrameParity(rawValue: p) else { throw BLError(.format, "\(context): unknown parity '\(p)'") }
            op = .selectFrames(period: try a.int("period"), parity: parity)
        case "duplicateFrames": op = .duplicateFrames
        case "globalAvgPool": op = .globalAvgPool
        case "linear":
            op = .linear(Linear(inFeatures: try a.int("inFeatures"), outFeatures: try a.int("outFeatures"),
                                weight: try a.string("weight"), bias: try a.string("bias")))
        case "temporalMean": op = .temporalMean(frames: try a.int("frames"))
        default: throw BLError(.format, "\(context): unknown op '\(name)'")
        }
        self.init(id: try f.int("id"), op: op, inputs: try f.ints("inputs"), origin: try f.optionalString("origin"))
    }
}

extension Op {
    /// The op's attributes as JSON object fields (also used by the text dump).
    package var attributes: [(String, JSON)] {
        func i(_ x: Int) -> JSON { .int(Int64(x)) }
        switch self {
        case let .input(frames, channels): return [("frames", i(frames)), ("channels", i(channels))]
        case .framesFromChannels(let frames): return [("frames", i(frames))]
        case .conv2d(let c):
            var r: [(String, JSON)] = [("inChannels", i(c.inChannels)), ("outChannels", i(c.outChannels)),
                                       ("kernel", i(c.kernel)), ("stride", i(c.stride)), ("padding", i(c.padding)),
                                       ("groups", i(c.groups)), ("weight", .string(c.weight))]
            if let b = c.bias { r.append(("bias", .string(b))) }
            r.append(("relu", .bool(c.relu)))
            return r
        case .batchNorm(let b):
            return [("channels", i(b.channels)), ("weight", .string(b.weight)), ("bias", .string(b.bias)),
                    ("runningMean", .string(b.runningMean)), ("runningVar", .string(b.runningVar)), ("eps", .double(b.eps))]
        case .relu, .resizeNearest, .duplicateFrames, .globalAvgPool: return []
        case .add(let relu): return [("relu", .bool(relu))]
        case let .avgPool2d(k, s, p): return [("kernel", i(k)), ("stride", i(s)), ("padding", i(p))]
        case .tam(let t):
            return [("duration", i(t.duration)), ("channels", i(t.channels)), ("weights", .array(t.weights.map { .string($0) }))]
        case let .selectFrames(period, parity): return [("period", i(period)), ("parity", .string(parity.rawValue))]
        case .linear(let l):
            return [("inFeatures", i(l.inFeatures)), ("outFeatures", i(l.outFeatures)),
                    ("weight", .string(l.weight)), ("bias", .string(l.bias))]
        case .temporalMean(let f): return [("frames", i(f))]
        }
    }
}
