import BLCore
import BLSafetensors

/// `.pth` (or any supported file) to safetensors: every tensor contiguous in its own dtype under its dotted path,
/// the non-tensor entries as JSON text in `__metadata__`.
package enum Extractor {
    package struct Result: Sendable {
        package var tensorCount: Int
        package var bytes: Int
        package var metadataEntries: Int
    }

    package static func metadata(for checkpoint: Checkpoint, sourceName: String) -> [(String, String)] {
        var meta: [(String, String)] = [
            ("blconvert.source", sourceName),
            ("blconvert.format", checkpoint.format.rawValue),
        ]
        let printer = SharedValuePrinter()
        for e in checkpoint.entries {
            meta.append((e.path.isEmpty ? "(root)" : e.path, printer.json(e.value, path: e.path).serialized()))
        }
        for s in checkpoint.skipped {
            meta.append(("blconvert.skipped.\(s.path)", s.reason))
        }
        return meta
    }

    package static func extract(_ checkpoint: Checkpoint, sourceName: String, to output: String) throws -> Result {
        var seen = Set<String>()
        for t in checkpoint.tensors {
            if !seen.insert(t.path).inserted {
                throw BLError(.format, "two tensors share the name '\(t.path)'", file: checkpoint.path)
            }
        }
        try ExpansionBudget.checkMaterialisable(checkpoint.tensors, fileSize: checkpoint.fileSize, file: checkpoint.path)
        let meta = metadata(for: checkpoint, sourceName: sourceName)
        try SafetensorsWriter.write(checkpoint.tensors.map { (name: $0.path, tensor: $0.tensor) }, metadata: meta, to: output)
        return Result(tensorCount: checkpoint.tensors.count, bytes: checkpoint.totalTensorBytes, metadataEntries: meta.count)
    }
}
