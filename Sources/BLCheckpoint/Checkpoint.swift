import BLCore
import BLPickle
import BLTorch
import BLHDF5
import BLSafetensors

/// The container formats blconvert reads, detected from the bytes (never from the file name).
package enum CheckpointFormat: String, Sendable, CaseIterable {
    case torchZip = "pytorch-zip"
    case torchLegacy = "pytorch-legacy"
    case hdf5
    case safetensors
    case pickle

    package var summary: String {
        switch self {
        case .torchZip: return "PyTorch zip archive (torch >= 1.6)"
        case .torchLegacy: return "PyTorch legacy serialization (torch < 1.6)"
        case .hdf5: return "HDF5"
        case .safetensors: return "safetensors"
        case .pickle: return "bare Python pickle"
        }
    }
}

/// One view over every reader: the tensors with dotted paths, the other entries, and what was skipped.
package struct Checkpoint: Sendable {
    package let path: String
    package let format: CheckpointFormat
    /// Every tensor, under its dotted path in the file (`state_dict.module.conv1.weight`).
    package let tensors: [(path: String, tensor: Tensor)]
    /// Every non-tensor leaf (`epoch`, `arch`, `optimizer.param_groups.0.lr`, file attributes).
    package let entries: [FlatEntry]
    /// Objects the reader did not turn into tensors (e.g. string datasets in HDF5).
    package let skipped: [(path: String, reason: String)]
    /// The object tree for pickle-based formats.
    package let root: Value?
    /// Keeps the mapping alive for tensors that point into it.
    package let fileSize: Int

    /// Detects the format from the first bytes. Signatures at the start of the file come first; an
    /// HDF5 signature further in (after a user block, at byte 512, 1024, ...) is tried last, so the
    /// data of another format that happens to hold those bytes there cannot mislead detection.
    package static func detect(_ bytes: UnsafeRawBufferPointer) -> CheckpointFormat? {
        if TorchFile.looksLikeZip(bytes) { return .torchZip }
        if HDF5Reader.looksLikeHDF5(UnsafeRawBufferPointer(rebasing: bytes.prefix(8))) { return .hdf5 }
        if TorchFile.looksLikeLegacy(bytes) { return .torchLegacy }
        if SafetensorsFile.looksLikeSafetensors(bytes) { return .safetensors }
        if PickleFile.looksLikePickle(bytes) { return .pickle }
        if HDF5Reader.looksLikeHDF5(bytes) { return .hdf5 }
        if SafetensorsFile.looksLikeSafetensors(bytes, oversized: true) { return .safetensors }
        return nil
    }

    /// Opens and reads a checkpoint. `data: .shapesOnly` describes the tensors without producing
    /// the bytes that would need work or memory (deflated zip members), for listing.
    package static func open(path: String, data: TensorData = .read) throws -> Checkpoint {
        let file = try MappedFile(path: path)
        guard let format = detect(file.bytes) else {
            let head = file.bytes.prefix(8).map { b -> String in
                let h = String(b, radix: 16); return h.count == 1 ? "0" + h : h
            }.joined(separator: " ")
            throw BLError(.unsupported,
                          "unrecognised file format (first bytes: \(head.isEmpty ? "none, the file is empty" : head)); expected a PyTorch .pth/.pth.tar (zip or legacy), HDF5, or safetensors file",
                          file: path)
        }
        do {
            switch format {
            case .torchZip, .torchLegacy:
                let t = try TorchFile.load(file: file, data: data)
                return fromTree(t.root, path: path, format: format, fileSize: file.count)
            case .pickle:
                let root = try PickleFile.load(path: path)
                return fromTree(root, path: path, format: format, fileSize: file.count)
            case .safetensors:
                let s = try SafetensorsFile.load(file: file)
                let meta = s.metadata.map { FlatEntry(path: "__metadata__.\($0.0)", value: .string($0.1)) }
                return Checkpoint(path: path, format: format, tensors: s.tensors.map { ($0.name, $0.tensor) },
                                  entries: meta, skipped: [], root: nil, fileSize: file.count)
            case .hdf5:
                let h = try HDF5Reader.read(path: path)
                return Checkpoint(path: path, format: format, tensors: h.tensors.map { ($0.name, $0.tensor) },
                                  entries: h.attributes.map { FlatEntry(path: $0.name, value: $0.value) },
                                  skipped: h.skipped.map { ($0.name, $0.reason) }, root: nil, fileSize: file.count)
            }
        } catch let e as BLError {
            throw e.inFile(path)
        }
    }

    static func fromTree(_ root: Value, path: String, format: CheckpointFormat, fileSize: Int) -> Checkpoint {
        let flat = root.flattened()
        return Checkpoint(path: path, format: format, tensors: flat.tensors, entries: flat.others,
                          skipped: [], root: root, fileSize: fileSize)
    }

    package var totalTensorBytes: Int { tensors.reduce(0) { $0 + $1.tensor.byteCount } }
    package var totalElements: Int { tensors.reduce(0) { $0 + $1.tensor.elementCount } }

    /// A top-level string entry such as a training checkpoint's `arch`.
    package func entry(_ name: String) -> Value? {
        entries.first { $0.path == name }?.value
    }

    /// The model weights: a training checkpoint's `state_dict` (or `model`, `model_state_dict`) subtree when there
    /// is one, else every tensor. Names are relative to that subtree.
    package func stateDict() -> (prefix: String, tensors: [(name: String, tensor: Tensor)]) {
        for key in ["state_dict", "model_state_dict", "model", "net"] {
            let p = key + "."
            let sub = tensors.filter { $0.path.hasPrefix(p) }
            if !sub.isEmpty && tensors.contains(where: { $0.path.hasPrefix(p) && $0.tensor.rank >= 2 }) {
                return (key, sub.map { (String($0.path.dropFirst(p.count)), $0.tensor) })
            }
        }
        return ("", tensors.map { ($0.path, $0.tensor) })
    }
}

/// Whether a reader produces tensor bytes or only their descriptions (see `BLTorch.TensorData`).
package typealias TensorData = BLTorch.TensorData
