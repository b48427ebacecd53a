import BLCore

/// Writes safetensors files in the layout the reference implementation produces.
///
/// - Order: tensors are laid out by descending dtype alignment, in the reference's dtype order
///   (I64, F64, F32, I32, BF16, F16, I16, I8, U8, BOOL), then by name (byte-wise), exactly as
///   huggingface/safetensors `serialize` does, so the same tensors give the same bytes.
/// - Header: compact JSON, `__metadata__` first (in the given order; omitted when empty), then one
///   entry per tensor in layout order with keys `dtype`, `shape`, `data_offsets`; padded with spaces
///   to a multiple of 8 bytes so every tensor starts 8-byte aligned.
/// - Data: each tensor's logical row-major bytes in its own dtype, streamed to the file one tensor
///   at a time (a non-contiguous view is made contiguous one tensor at a time).
/// - Atomic: written to a hidden temporary file in the destination directory, then renamed over
///   `path`; on any failure the temporary file is removed and `path` is untouched.
package enum SafetensorsWriter {
    package static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [(String, String)] = [],
                             to path: String) throws {
        try write(tensors, metadata: metadata, to: path) { _, t in t }
    }

    /// As `write(_:metadata:to:)`, but the bytes of each tensor come from `produce(name, declared)`,
    /// called just before they are written, in file order: a converted copy then lives only while
    /// it is written. `tensors` declare the name, dtype and shape of each tensor (their bytes are not
    /// read); `produce` must return a tensor of that dtype and shape.
    package static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [(String, String)] = [],
                             to path: String, producing produce: (String, Tensor) throws -> Tensor) throws {
        let ordered = try layoutOrder(tensors)
        let header = try headerBytes(ordered, metadata: metadata)
        // Never write what SafetensorsFile (and the reference) would refuse to read back.
        guard header.count <= SafetensorsFile.maxHeaderLength else {
            throw BLError(.unsupported, "the safetensors header would take \(header.count) bytes, more than readers accept (\(SafetensorsFile.maxHeaderLength)); too many tensors or too much metadata for one file", file: path)
        }
        for (name, t) in ordered {
            if let problem = SafetensorsFile.shapeProblem(t.shape) {
                throw BLError(.unsupported, "\(problem): a safetensors reader refuses it", file: path, location: "tensor '\(name)'")
            }
        }

        try AtomicFile.writing(to: path) { out in
            var length = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: &length) { try out.write($0) }
            try header.withUnsafeBytes { try out.write($0) }
            for (name, declared) in ordered {
                do {
                    let tensor = try produce(name, declared)
                    guard tensor.dtype == declared.dtype, tensor.shape == declared.shape else {
                        throw BLError(.mismatch, "declared \(declared.dtype.rawValue) \(declared.shape), produced \(tensor.dtype.rawValue) \(tensor.shape)")
                    }
                    try tensor.withContiguousBytes { try out.write($0) }
                } catch let e as BLError {
                    throw e.at("tensor '\(name)'")
                }
            }
        }
    }

    /// The reference's dtype order (its `Dtype` enum, ascending alignment); layout sorts descending.
    static func alignmentRank(_ d: DType) -> Int {
        switch d {
        case .bool: return 0
        case .uint8: return 1
        case .int8: return 2
        case .int16: return 5
        case .float16: return 7
        case .bfloat16: return 8
        case .int32: return 9
        case .float32: return 11
        case .float64: return 12
        case .int64: return 13
        }
    }

    /// Tensors in file order; rejects duplicate and reserved names.
    static func layoutOrder(_ tensors: [(name: String, tensor: Tensor)]) throws -> [(name: String, tensor: Tensor)] {
        var seen = Set<[UInt8]>()
        for (name, _) in tensors {
            if name == "__metadata__" {
                throw BLError(.invalidArgument, "'__metadata__' is reserved and cannot name a tensor")
            }
            if !seen.insert(Array(name.utf8)).inserted {
                throw BLError(.invalidArgument, "duplicate tensor name '\(name)'")
            }
        }
        return tensors.sorted { a, b in
            let ra = alignmentRank(a.tensor.dtype), rb = alignmentRank(b.tensor.dtype)
            if ra != rb { return ra > rb }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
    }

    /// The padded JSON header for tensors already in layout order.
    static func headerBytes(_ ordered: [(name: String, tensor: Tensor)], metadata: [(String, String)]) throws -> [UInt8] {
        var out: [UInt8] = []
        out.append(UInt8(ascii: "{"))
        var first = true
        func comma() { if !first { out.append(UInt8(ascii: ",")) }; first = false }
        if !metadata.isEmpty {
            var keys = Set<[UInt8]>()
            comma()
            appendString("__metadata__", to: &out)
            out.append(contentsOf: Array(":{".utf8))
            for (i, (k, v)) in metadata.enumerated() {
                if !keys.insert(Array(k.utf8)).inserted {
                    throw BLError(.invalidArgument, "duplicate metadata key '\(k)'")
                }
                if i > 0 { out.append(UInt8(ascii: ",")) }
                appendString(k, to: &out)
                out.append(UInt8(ascii: ":"))
                appendString(v, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        var offset = 0
        for (name, tensor) in ordered {
            let (end, o) = offset.addingReportingOverflow(tensor.byteCount)
            if o { throw BLError(.invalidArgument, "total data size overflows", location: "tensor '\(name)'") }
            comma()
            appendString(name, to: &out)
            out.append(contentsOf: Array(":{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[".utf8))
            out.append(contentsOf: Array(tensor.shape.map(String.init).joined(separator: ",").utf8))
            out.append(contentsOf: Array("],\"data_offsets\":[\(offset),\(end)]}".utf8))
            offset = end
        }
        out.append(UInt8(ascii: "}"))
        let pad = (8 - out.count % 8) % 8
        out.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: pad))
        return out
    }

    /// A JSON string escaped as serde_json does (short escapes for \b \f \n \r \t, `\u00xx` for other
    /// control characters, everything else verbatim as UTF-8).
    static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case 0x22: out.append(contentsOf: [0x5c, 0x22])
            case 0x5c: out.append(contentsOf: [0x5c, 0x5c])
            case 0x08: out.append(contentsOf: [0x5c, UInt8(ascii: "b")])
            case 0x0c: out.append(contentsOf: [0x5c, UInt8(ascii: "f")])
            case 0x0a: out.append(contentsOf: [0x5c, UInt8(ascii: "n")])
            case 0x0d: out.append(contentsOf: [0x5c, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5c, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0xf)])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
