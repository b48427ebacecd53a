import BLCore
import BLGraph

/// A checkpoint mapped onto the graph: configuration, graph (unfused) and its weights by graph name.
package struct ImportedModel: Sendable {
    package var config: BLVNetConfig
    package var graph: Graph
    /// Every weight the graph declares, under the graph's names (the reference `bLVNet_TAM` state
    /// dict names), as stored in the checkpoint (any float dtype).
    package var weights: [String: Tensor]

    package init(config: BLVNetConfig, graph: Graph, weights: [String: Tensor]) {
        self.config = config
        self.graph = graph
        self.weights = weights
    }
}

/// Reads a bLVNet-TAM state dict: infers the configuration from tensor names and shapes, builds the
/// graph and checks the tensors strictly (as `load_state_dict(strict=True)`).
package enum BLVNetImporter {
    static let p = BLVNetGraph.backbone

    /// The reference name of a checkpoint tensor: leading `state_dict.` and `module.` removed, and
    /// `baseline_model.` added to backbone names saved without it (`conv1.weight`); `/` (HDF5 group
    /// paths) read as `.`.
    /// Prefixes that wrap a model's own names: a training checkpoint's `state_dict.`,
    /// `nn.DataParallel`'s `module.` and `torch.compile`'s `_orig_mod.`.
    static let wrapperPrefixes = ["state_dict.", "module.", "_orig_mod."]

    package static func canonicalName(_ name: String) -> String {
        var s = Substring(name.contains("/") ? String(name.split(separator: "/", omittingEmptySubsequences: true).joined(separator: ".")) : name)
        while let w = wrapperPrefixes.first(where: { s.hasPrefix($0) }) { s = s.dropFirst(w.count) }
        if s.hasPrefix(p) || s.hasPrefix("new_fc.") { return String(s) }
        return p + s
    }

    /// Maps a checkpoint onto the graph.
    /// - Parameters:
    ///   - tensors: every tensor of the checkpoint, names as the readers give them. When some names
    ///     start with `state_dict.` (a training checkpoint), only those are read: `best_top1`,
    ///     `optimizer.*` and the like are training state, not weights.
    ///   - frames: `T`, which the weights do not record: the facade's `FrameCount.resolve` decides
    ///     it (from the user, a training checkpoint's `arch`, or the file's own name).
    ///   - nameHints: texts that may name beta (`-a2-b4-`): the `arch` string, the checkpoint's path.
    ///     beta is informational; it is taken only when it agrees with the little-branch depths.
    package static func importModel(tensors: [(name: String, tensor: Tensor)], frames: Int,
                                   nameHints: [String] = []) throws -> ImportedModel {
        var byName = [String: Tensor]()
        var original = [String: String]()
        var duplicates = [String]()
        let training = tensors.contains { $0.name.hasPrefix("state_dict.") }
        let tensors = training ? tensors.filter { $0.name.hasPrefix("state_dict.") } : tensors
        for (name, t) in tensors {
            let c = canonicalName(name)
            if let first = original[c] {
                duplicates.append("'\(name)' and '\(first)' both map to '\(c)'")
                continue
            }
            byName[c] = t
            original[c] = name
        }
        let config = try inferConfig(shapes: byName.mapValues { $0.shape }, frames: frames, nameHints: nameHints)
        let graph = try BLVNetGraph.build(config)
        try checkStrict(graph: graph, config: config, tensors: byName, original: original,
                        duplicates: duplicates, style: tensors.first?.name)
        var weights = [String: Tensor]()
        for w in graph.weights { weights[w.name] = byName[w.name] }
        return ImportedModel(config: config, graph: graph, weights: weights)
    }

    /// The largest `i` + 1 among names `prefix<i>.…`, or 0.
    static func count(_ names: Dictionary<String, [Int]>.Keys, prefix: String) -> Int {
        var n = 0
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let dot = rest.firstIndex(of: "."), let i = Int(rest[..<dot]), i >= 0, i < 10_000 else { continue }
            n = max(n, i + 1)
        }
        return n
    }

    /// The configuration the tensor names and shapes (canonical names) imply, for `frames` = T;
    /// beta from the first of `nameHints` that names one consistent with the weights.
    package static func inferConfig(shapes: [String: [Int]], frames t: Int, nameHints: [String] = []) throws -> BLVNetConfig {
        func first(_ candidates: [(String, Int)]) -> Int? {
            for (name, dim) in candidates { if let s = shapes[p + name], dim < s.count { return s[dim] } }
            return nil
        }
        var problems = [String]()
        let inputChannels = first([("conv1.weight", 1)])
        if inputChannels == nil { problems.append("no stem convolution 'baseline_model.conv1.weight' [64, C, 7, 7]") }
        var alpha: Int? = nil
        if let little = first([("l_conv0.weight", 0), ("bn_l0.weight", 0), ("l_conv1.weight", 0), ("l_conv2.weight", 1)]) {
            if little > 0 && 64 % little == 0 { alpha = 64 / little }
            else { problems.append("little-branch stem width \(little) does not divide 64") }
        } else {
            problems.append("no little-branch stem ('baseline_model.l_conv0.weight')")
        }
        var blocks = [Int](), little = [Int]()
        for k in 1...3 {
            let b = count(shapes.keys, prefix: "\(p)layer\(k).big.")
            let l = count(shapes.keys, prefix: "\(p)layer\(k).little.")
            if b == 0 { problems.append("no blocks 'baseline_model.layer\(k).big.0.*'") }
            if l == 0 { problems.append("no blocks 'baseline_model.layer\(k).little.0.*'") }
            blocks.append(b + 1)
            little.append(max(l, 1))
        }
        let b4 = count(shapes.keys, prefix: "\(p)layer4.")
        if b4 == 0 { problems.append("no blocks 'baseline_model.layer4.0.*'") }
        blocks.append(b4)
        var blending: Int? = nil
        if shapes.keys.contains(where: { $0.hasSuffix(".tam.prev.weight") || $0 == p + "tam.prev.weight" }) {
            blending = 3
        } else {
            let top = count(shapes.keys, prefix: p + "tam.blending_layers.")
            let inner = count(shapes.keys, prefix: p + "layer1.tam.blending_layers.")
            if max(top, inner) > 0 { blending = max(top, inner) }
        }
        if blending == nil { problems.append("no TAM weights ('baseline_model.tam.prev.weight' or 'baseline_model.tam.blending_layers.0.weight')") }
        var head = BLVNetConfig.Head.fc
        var classes: Int? = nil
        if let s = shapes["new_fc.weight"] ?? shapes["new_fc.bias"] {
            head = .dropoutNewFC
            classes = s.first
        } else if let s = shapes[p + "fc.weight"] ?? shapes[p + "fc.bias"] {
            classes = s.first
        } else {
            problems.append("no classifier ('new_fc.weight' or 'baseline_model.fc.weight')")
        }
        if !problems.isEmpty {
            throw BLError(.mismatch, "not a bLVNet-TAM state dict: " + problems.joined(separator: "; ") + foundNames(shapes))
        }
        let hints = nameHints.map(BLVNetNameHints.init)
        if t < 2 || t % 2 != 0 {
            throw BLError(.invalidArgument, "frames T = \(t) must be even and at least 2: bLVNet-TAM splits each clip into alternating big (odd) and little (even) frames")
        }
        // beta only shows through the little-branch depths: take a named beta when it agrees.
        let beta = hints.lazy.compactMap(\.beta).first.flatMap { b -> Int? in
            (0..<3).allSatisfy { BLVNetConfig.littleCount(blocks: blocks[$0], beta: b) == little[$0] } ? b : nil
        }
        return BLVNetConfig(blocks: blocks, littleBlocks: little, alpha: alpha ?? 1, beta: beta, frames: t,
                            blendingFrames: blending ?? 3, numClasses: classes ?? 0, inputChannels: inputChannels ?? 0,
                            head: head)
    }

    /// A few of the names the checkpoint does hold (as read, after the wrapper prefixes), so that a
    /// naming scheme that does not match shows itself.
    static func foundNames(_ shapes: [String: [Int]], limit: Int = 8) -> String {
        guard !shapes.isEmpty else { return "; the file holds no tensors" }
        let names = shapes.keys.sorted()
        var s = "; found \(names.count) tensors, e.g. " + names.prefix(limit).map { "'\($0)'" }.joined(separator: ", ")
        if names.count > limit { s += ", ..." }
        return s
    }

    /// One error listing every missing, unexpected, mis-shaped and non-float tensor.
    static func checkStrict(graph: Graph, config: BLVNetConfig, tensors: [String: Tensor], original: [String: String],
                            duplicates: [String], style: String?) throws {
        // Show missing names the way the checkpoint spells names.
        var outer = "", bare = false
        if let s = style {
            let c = canonicalName(s)
            var stripped = Substring(s)
            while let w = wrapperPrefixes.first(where: { stripped.hasPrefix($0) }) { stripped = stripped.dropFirst(w.count) }
            outer = String(s.prefix(s.count - stripped.count))
            bare = c.hasPrefix(p) && !stripped.hasPrefix(p)
        }
        func shown(_ c: String) -> String {
            if let o = original[c] { return o }
            return outer + (bare && c.hasPrefix(p) ? String(c.dropFirst(p.count)) : c)
        }
        let expected = Dictionary(graph.weights.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
        var bnModules = Set<String>()
        for n in graph.nodes { if case .batchNorm(let b) = n.op { bnModules.insert(String(b.weight.dropLast(".weight".count))) } }
        var missing = [String](), unexpected = [String](), misShaped = [String](), badType = [String]()
        var mismatch = BLError.WeightMismatch(duplicates: duplicates)
        for w in graph.weights {
            guard let t = tensors[w.name] else {
                missing.append("\(shown(w.name)) \(w.shape)")
                mismatch.missing.append((shown(w.name), w.shape))
                continue
            }
            if t.shape != w.shape {
                misShaped.append("\(shown(w.name)): expected \(w.shape), found \(t.shape)")
                mismatch.misshaped.append(.init(name: shown(w.name), expected: w.shape, found: t.shape))
            } else if !t.dtype.isFloatingPoint {
                badType.append("\(shown(w.name)): \(t.dtype.torchName), expected a float type")
                mismatch.notFloat.append(shown(w.name))
            }
        }
        for name in tensors.keys.sorted() where expected[name] == nil {
            if name.hasSuffix(".num_batches_tracked"), bnModules.contains(String(name.dropLast(".num_batches_tracked".count))) { continue }
            unexpected.append("\(shown(name)) \(tensors[name]?.shape ?? [])")
            mismatch.unexpected.append(shown(name))
        }
        guard !mismatch.isEmpty else { return }
        func section(_ title: String, _ items: [String]) -> String? {
            guard !items.isEmpty else { return nil }
            let limit = 40
            var s = "\n  \(title) (\(items.count)): " + items.prefix(limit).joined(separator: ", ")
            if items.count > limit { s += ", ... and \(items.count - limit) more" }
            return s
        }
        let parts = [section("missing", missing), section("unexpected", unexpected), section("mis-shaped", misShaped),
                     section("not float", badType), section("duplicate", duplicates)].compactMap { $0 }
        throw BLError(.mismatch, "checkpoint does not match bLVNet-TAM \(describe(config)):" + parts.joined(),
                      detail: .weights(mismatch))
    }

    /// `blocks 3,4,6,3, alpha 2, T 16, blending 3, 174 classes, 3 input channels, dropout+new_fc head`.
    package static func describe(_ c: BLVNetConfig) -> String {
        "(blocks \(c.blocks.map(String.init).joined(separator: ",")), little blocks \(c.littleBlocks.map(String.init).joined(separator: ",")), alpha \(c.alpha), beta \(c.beta.map(String.init) ?? "?"), T \(c.frames), blending \(c.blendingFrames), \(c.numClasses) classes, \(c.inputChannels) input channels, \(c.head.rawValue) head)"
    }
}
