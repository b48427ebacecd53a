import ArgumentParser
import BLConvert
import BLCore
import BLCheckpoint
import BLVNet

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List what a checkpoint holds, read safely (nothing in it is ever executed).",
        discussion: """
        The format is detected from the bytes, not the name: PyTorch zip (torch >= 1.6)
        and legacy (torch < 1.6) files, training checkpoints, HDF5 and safetensors
        files, bare pickles. Pickles may only name the globals that
        torch.load(weights_only=True) allows; any other global (os.system, eval, ...)
        is refused with its name and byte offset.

        Examples:
          blconvert inspect model.pth.tar
          blconvert inspect model.pth.tar --json | jq '.totals'
        """
    )

    @Argument(help: "Checkpoint file (.pth, .pth.tar, .h5, .safetensors, ...).")
    var file: String

    @OptionGroup var output: JSONOutputOptions

    @Flag(name: .long, help: "Only the summary and totals, no per-tensor list.")
    var summary = false

    func run() throws {
        if ModelPackage.isPackage(file) {
            let p = try reportingErrors { try ModelPackage.read(file) }
            Console.out(output.json ? Self.packageJSON(p, path: file).strictJSONText : Self.packageText(p, path: file))
            return
        }
        let ck = try reportingErrors { try Checkpoint.open(path: file, data: .shapesOnly) }
        if output.json {
            Console.out(Self.json(ck, listTensors: !summary).strictJSONText)
        } else {
            Console.out(Self.text(ck, listTensors: !summary))
        }
    }

    static func json(_ ck: Checkpoint, listTensors: Bool) -> JSON {
        var items: [(String, JSON)] = [
            ("file", .string(ck.path)),
            ("format", .string(ck.format.rawValue)),
            ("file_bytes", .int(Int64(ck.fileSize))),
        ]
        if listTensors {
            items.append(("tensors", .array(ck.tensors.map { t in
                .object([
                    ("name", .string(t.path)),
                    ("dtype", .string(t.tensor.dtype.torchName)),
                    ("shape", .array(t.tensor.shape.map { .int(Int64($0)) })),
                    ("bytes", .int(Int64(t.tensor.byteCount))),
                    ("contiguous", .bool(t.tensor.isContiguous)),
                ])
            })))
        }
        let printer = SharedValuePrinter()
        items.append(("entries", .array(ck.entries.map { e in
            .object([("name", .string(e.path)), ("type", .string(e.value.typeName)), ("value", printer.json(e.value, path: e.path))])
        })))
        items.append(("skipped", .array(ck.skipped.map { s in
            .object([("name", .string(s.path)), ("reason", .string(s.reason))])
        })))
        var dtypes: [String: Int] = [:]
        for t in ck.tensors { dtypes[t.tensor.dtype.torchName, default: 0] += 1 }
        items.append(("totals", .object([
            ("tensor_count", .int(Int64(ck.tensors.count))),
            ("tensor_bytes", .int(Int64(ck.totalTensorBytes))),
            ("tensor_elements", .int(Int64(ck.totalElements))),
            ("entry_count", .int(Int64(ck.entries.count))),
            ("skipped_count", .int(Int64(ck.skipped.count))),
            ("tensors_by_dtype", .object(dtypes.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) })),
        ])))
        return .object(items)
    }

    /// A model package written by `import`: what it was made from and what it holds.
    static func packageJSON(_ p: ModelPackage, path: String) -> JSON {
        let bytes = p.weights.values.reduce(0) { $0 + $1.byteCount }
        return .object([
            ("file", .string(path)), ("format", .string("blconvert-package")),
            ("config", p.config.json), ("dtype", .string(p.dtype.torchName)), ("optimized", .bool(p.optimized)),
            ("nodes", .int(Int64(p.graph.nodes.count))), ("weights", .int(Int64(p.weights.count))),
            ("weight_bytes", .int(Int64(bytes))), ("blconvert_version", .string(p.toolVersion)),
            ("source", p.source.map { .object([("file", .string($0.fileName)), ("sha256", .string($0.sha256))]) } ?? .null),
            ("kernel_cache", KernelCache.describe(packageDirectory: path).map { c in
                .object([("layers", .int(Int64(c.layers))), ("bytes", .int(Int64(c.bytes))),
                         ("applies", .bool(c.ignored == nil)), ("ignored_because", c.ignored.map { .string($0) } ?? .null)])
            } ?? .null),
        ])
    }

    static func packageText(_ p: ModelPackage, path: String) -> String {
        let bytes = p.weights.values.reduce(0) { $0 + $1.byteCount }
        var s = "\(path)\n  format: blconvert model package (written by blconvert \(p.toolVersion))\n"
        s += "  model: bLVNet-TAM \(BLVNetImporter.describe(p.config))\n"
        s += "  graph: \(p.graph.nodes.count) nodes, \(p.weights.count) weights, \(Format.bytes(bytes)) (\(p.dtype.torchName))\(p.optimized ? ", BatchNorm folded, ReLU fused" : "")\n"
        if let src = p.source { s += "  source: \(src.fileName) (sha256 \(src.sha256))\n" }
        if let c = KernelCache.describe(packageDirectory: path) {
            s += c.ignored.map { "  kernel cache: not used on this CPU (\($0))\n" }
                ?? "  kernel cache: \(c.layers) layers prepared for this CPU's kernels, \(Format.bytes(c.bytes))\n"
        }
        s += "  (blconvert graph \(path) lists the nodes; a package holds converted weights, not the checkpoint's tensors)"
        return s
    }

    static func text(_ ck: Checkpoint, listTensors: Bool) -> String {
        var s = "\(ck.path)\n  format: \(ck.format.summary), \(Format.bytes(ck.fileSize))\n"
        s += "  tensors: \(ck.tensors.count), \(Format.grouped(ck.totalElements)) elements, \(Format.bytes(ck.totalTensorBytes))\n"
        let sd = ck.stateDict()
        if !sd.prefix.isEmpty {
            s += "  training checkpoint: model weights under '\(sd.prefix)' (\(sd.tensors.count) tensors)\n"
        }
        if listTensors && !ck.tensors.isEmpty {
            let w = min(max(ck.tensors.map { $0.path.count }.max() ?? 4, 4), 72)
            s += "\n  " + Format.pad("name", w) + "  " + Format.pad("dtype", 9) + "  " + Format.pad("shape", 20) + "  bytes\n"
            for t in ck.tensors {
                let layout = t.tensor.isContiguous ? "" : "  (strided)"
                s += "  " + Format.pad(t.path, w) + "  " + Format.pad(t.tensor.dtype.torchName, 9) + "  "
                s += Format.pad(Format.shape(t.tensor.shape), 20) + "  " + Format.lpad(String(t.tensor.byteCount), 10) + layout + "\n"
            }
        }
        if !ck.entries.isEmpty {
            s += "\n  other entries (\(ck.entries.count)):\n"
            let printer = SharedValuePrinter()
            for e in ck.entries.prefix(200) {
                var v = printer.json(e.value, path: e.path).serialized()
                if v.count > 100 { v = String(v.prefix(97)) + "..." }
                s += "    \(e.path.isEmpty ? "(root)" : e.path) = \(v)  [\(e.value.typeName)]\n"
            }
            if ck.entries.count > 200 { s += "    ... \(ck.entries.count - 200) more (use --json for all)\n" }
        }
        if !ck.skipped.isEmpty {
            s += "\n  skipped (\(ck.skipped.count)):\n"
            for k in ck.skipped { s += "    \(k.path): \(k.reason)\n" }
        }
        return s
    }
}
