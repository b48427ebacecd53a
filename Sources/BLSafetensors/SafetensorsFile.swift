import BLCore

/// A safetensors file read from a memory mapping: every tensor is a slice of the mapped file (no copy).
///
/// Layout: an 8-byte little-endian header length `N`, `N` bytes of UTF-8 JSON
/// (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`),
/// then the data buffer that the offsets index. The reader validates as the reference
/// implementation does: header length at most 100 MB and inside the file, a JSON object,
/// `__metadata__` a string-to-string map, byte sizes matching dtype x shape (overflow-checked),
/// and the offsets tiling the data buffer exactly (no gap, no overlap, last end at end of file).
package struct SafetensorsFile: Sendable {
    package let file: MappedFile
    /// Tensors in data-offset order.
    package let tensors: [(name: String, tensor: Tensor)]
    /// `__metadata__` entries in header order; empty when absent.
    package let metadata: [(String, String)]

    /// Largest header the reference implementation accepts.
    package static let maxHeaderLength = 100_000_000

    /// The tensor called `name`, if present.
    package func tensor(_ name: String) -> Tensor? {
        tensors.first { $0.name.utf8.elementsEqual(name.utf8) }?.tensor
    }

    /// True when the bytes start with a plausible header length (at least 2, at most 100 MB)
    /// followed by `{`. Cheap format sniffing, not validation.
    ///
    /// `oversized: true` also accepts header lengths above the limit (up to 2^40), so that such a
    /// file is reported as a safetensors file whose header is too large rather than as an
    /// unrecognised format (detection tries it after every other format).
    package static func looksLikeSafetensors(_ bytes: UnsafeRawBufferPointer, oversized: Bool = false) -> Bool {
        guard bytes.count >= 9 else { return false }
        let n = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        return n >= 2 && n <= (oversized ? 1 << 40 : UInt64(maxHeaderLength)) && bytes[8] == UInt8(ascii: "{")
    }

    /// Maps and reads the file at `path`.
    package static func load(path: String) throws -> SafetensorsFile {
        try load(file: MappedFile(path: path))
    }

    /// Reads an already mapped file.
    package static func load(file: MappedFile) throws -> SafetensorsFile {
        do {
            return try parse(file)
        } catch let e as BLError {
            throw e.inFile(file.path)
        }
    }

    private static func parse(_ file: MappedFile) throws -> SafetensorsFile {
        let bytes = file.bytes
        guard bytes.count >= 8 else {
            throw BLError.format("file of \(bytes.count) bytes is too small for the 8-byte header length", offset: 0)
        }
        let rawLength = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard rawLength <= UInt64(maxHeaderLength) else {
            throw BLError.format("header length \(rawLength) exceeds the limit of \(maxHeaderLength) bytes", offset: 0)
        }
        let headerLength = Int(rawLength)
        guard headerLength <= bytes.count - 8 else {
            throw BLError.format("header length \(headerLength) reaches past the end of the file (\(bytes.count - 8) bytes after the length)", offset: 0)
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerLength)])
        let dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart

        let json: JSON
        do {
            json = try JSONParser.parse(headerBytes)
        } catch let e as BLError {
            throw BLError(.format, "header is not valid JSON: \(e.message)", location: e.location.map { "header \($0)" })
        }
        guard case .object(let items) = json else {
            throw BLError(.format, "header is not a JSON object", location: "header")
        }

        var entries: [Entry] = []
        entries.reserveCapacity(items.count)
        var metadata: [(String, String)] = []
        // Names compare as bytes, as in the reference (Swift's String equality is canonical).
        var seen = Set<[UInt8]>()
        var sawMetadata = false

        for (name, value) in items {
            if name == "__metadata__" {
                if sawMetadata { throw BLError(.format, "duplicate '__metadata__' entry", location: "header") }
                sawMetadata = true
                metadata = try parseMetadata(value)
                continue
            }
            guard seen.insert(Array(name.utf8)).inserted else {
                throw BLError(.format, "duplicate tensor name '\(name)'", location: "header")
            }
            entries.append(try parseEntry(name, value))
        }

        // Sorted by offsets (stable on ties), the entries must tile [0, dataLength) exactly.
        let order = entries.indices.sorted {
            (entries[$0].begin, entries[$0].end, $0) < (entries[$1].begin, entries[$1].end, $1)
        }
        var position = 0
        for i in order {
            let e = entries[i]
            func fail(_ m: String) -> BLError { BLError(.format, m, location: "tensor '\(e.name)'") }
            if e.begin != position {
                throw fail(e.begin < position
                    ? "data offsets [\(e.begin), \(e.end)] overlap the previous tensor, which ends at \(position)"
                    : "data offsets [\(e.begin), \(e.end)] leave a gap: expected begin \(position)")
            }
            if e.end < e.begin { throw fail("data offsets [\(e.begin), \(e.end)] end before they begin") }
            if e.end > dataLength {
                throw fail("data offsets [\(e.begin), \(e.end)] reach past the data buffer of \(dataLength) bytes")
            }
            let elementSize = e.dtype?.byteSize ?? SafetensorsFile.otherDTypeSize(e.dtypeName) ?? 1
            var count = 1
            for d in e.shape {
                let (m, o) = count.multipliedReportingOverflow(by: d)
                if o { throw fail("element count of shape \(e.shape) overflows") }
                count = m
            }
            if let problem = SafetensorsFile.shapeProblem(e.shape) { throw fail(problem) }
            let (expected, o) = count.multipliedReportingOverflow(by: elementSize)
            if o { throw fail("byte size of shape \(e.shape) in \(e.dtypeName) overflows") }
            if expected != e.end - e.begin {
                throw fail("shape \(e.shape) in \(e.dtypeName) needs \(expected) bytes but data offsets [\(e.begin), \(e.end)] hold \(e.end - e.begin)")
            }
            position = e.end
        }
        if position != dataLength {
            throw BLError(.format, "tensors cover \(position) bytes of the \(dataLength)-byte data buffer",
                          location: "data buffer at byte \(dataStart + position)")
        }

        var tensors: [(name: String, tensor: Tensor)] = []
        tensors.reserveCapacity(order.count)
        for i in order {
            let e = entries[i]
            guard let dtype = e.dtype else {
                throw BLError(.unsupported, "dtype \(e.dtypeName) is not supported (supported: \(DType.allCases.map(\.rawValue).joined(separator: " ")))",
                              location: "tensor '\(e.name)'")
            }
            let storage = file.storage((dataStart + e.begin)..<(dataStart + e.end))
            do {
                tensors.append((e.name, try Tensor(dtype: dtype, shape: e.shape, storage: storage)))
            } catch let err as BLError {
                throw err.at("tensor '\(e.name)'")
            }
        }
        return SafetensorsFile(file: file, tensors: tensors, metadata: metadata)
    }

    private static func parseEntry(_ name: String, _ value: JSON) throws -> Entry {
        func fail(_ m: String) -> BLError { BLError(.format, m, location: "tensor '\(name)'") }
        guard case .object = value else { throw fail("entry is not a JSON object") }
        guard let dtypeName = value["dtype"]?.stringValue else { throw fail("missing or non-string 'dtype'") }
        let dtype = DType(safetensorsName: dtypeName)
        if dtype == nil && SafetensorsFile.otherDTypeSize(dtypeName) == nil {
            throw fail("unknown dtype '\(dtypeName)'")
        }
        guard let shapeItems = value["shape"]?.arrayValue else { throw fail("missing or non-array 'shape'") }
        let shape = try shapeItems.map { d -> Int in
            guard let n = exactInt(d) else { throw fail("shape entry \(d.serialized()) is not an integer in range") }
            guard n >= 0 else { throw fail("negative dimension \(n) in shape") }
            return n
        }
        guard let offs = value["data_offsets"]?.arrayValue, offs.count == 2,
              let begin = exactInt(offs[0]), let end = exactInt(offs[1]) else {
            throw fail("'data_offsets' is not a pair of integers in range")
        }
        guard begin >= 0, end >= 0 else { throw fail("negative data offsets [\(begin), \(end)]") }
        return Entry(name: name, dtypeName: dtypeName, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    private static func parseMetadata(_ value: JSON) throws -> [(String, String)] {
        switch value {
        case .null:
            return []
        case .object(let items):
            var seen = Set<[UInt8]>()
            return try items.map { k, v in
                guard seen.insert(Array(k.utf8)).inserted else {
                    throw BLError(.format, "duplicate key '\(k)'", location: "header __metadata__")
                }
                guard let s = v.stringValue else {
                    throw BLError(.format, "value of '\(k)' is \(v.serialized()), expected a string", location: "header __metadata__")
                }
                return (k, s)
            }
        default:
            throw BLError(.format, "'__metadata__' is not a string-to-string map", location: "header")
        }
    }

    /// Why this reader refuses `shape` beyond the reference's rules, or nil: the extent ignoring
    /// zero dimensions is bounded by 2^48, so strides of an empty tensor cannot wrap (the reference
    /// accepts [0, 2^62]; no real file has such a shape). The writer checks the same.
    package static func shapeProblem(_ shape: [Int]) -> String? {
        var extent = 1
        for d in shape {
            let (m, o) = extent.multipliedReportingOverflow(by: max(d, 1))
            if d < 0 || o || m > 1 << 48 { return "shape \(shape) is too large" }
            extent = m
        }
        return nil
    }

    /// Byte sizes of valid safetensors dtypes that blconvert does not handle.
    static func otherDTypeSize(_ name: String) -> Int? {
        switch name {
        case "U16": return 2
        case "U32": return 4
        case "U64": return 8
        case "F8_E5M2", "F8_E4M3": return 1
        default: return nil
        }
    }
}

private struct Entry {
    var name: String
    var dtypeName: String
    var dtype: DType?
    var shape: [Int]
    var begin: Int
    var end: Int
}

/// A JSON integer (written without fraction or exponent) as Int, or nil.
private func exactInt(_ j: JSON) -> Int? {
    if case .int(let i) = j { return Int(exactly: i) }
    return nil
}
