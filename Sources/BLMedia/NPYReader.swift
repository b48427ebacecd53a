import BLCore

/// Reads NumPy `.npy` files holding float32 arrays (clip tensors `[N, T*C, H, W]`, or any shape).
///
/// Accepted: format versions 1.0, 2.0 and 3.0; `descr` `'<f4'` (little-endian float32; `'=f4'` on
/// this little-endian machine too); `fortran_order: False`; the data exactly filling the rest of
/// the file. Anything else (other dtypes, Fortran order, big-endian, object arrays, a size that
/// does not match the file) is a `BLError` naming the file.
package enum NPYReader {
    /// The six bytes every `.npy` file starts with: `\x93NUMPY`.
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    /// Whether `bytes` start with the `.npy` magic string.
    package static func looksLikeNPY(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= magic.count && bytes.prefix(magic.count).elementsEqual(magic)
    }

    /// The array as a contiguous float32 tensor of the file's shape.
    package static func load(path: String) throws -> Tensor {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch let e as BLError { throw e.inFile(path) }
        do {
            return try parse(file)
        } catch let e as BLError {
            throw e.inFile(path)
        }
    }

    /// Header fields of an `.npy` file.
    struct Header {
        var descr: String
        var fortranOrder: Bool
        var shape: [Int]
        var dataOffset: Int
    }

    static func parseHeader(_ bytes: UnsafeRawBufferPointer) throws -> Header {
        var r = ByteReader(bytes, context: "npy header")
        let magic = try r.array(6, "the magic string")
        guard magic == Self.magic else {
            throw BLError.format("not a .npy file (missing \\x93NUMPY magic)", offset: 0)
        }
        let major = try r.u8()
        _ = try r.u8()
        let headerLength: Int
        switch major {
        case 1: headerLength = Int(try r.u16())
        case 2, 3: headerLength = Int(try r.u32())
        default: throw BLError(.unsupported, ".npy format version \(major) is not supported (1, 2 and 3 are)", location: "at byte 6")
        }
        let start = r.offset
        let text = try r.slice(headerLength, "the header dictionary (\(headerLength) bytes)")
        // Versions 1 and 2 use latin-1, version 3 UTF-8; the keys and values read here are ASCII.
        var lit = PythonLiteral(bytes: text, base: start)
        let dict = try lit.parseDict()
        guard case .string(let descr)? = dict["descr"] else {
            throw BLError(.format, "header has no 'descr' string", location: "npy header at byte \(start)")
        }
        guard case .bool(let fortran)? = dict["fortran_order"] else {
            throw BLError(.format, "header has no 'fortran_order' boolean", location: "npy header at byte \(start)")
        }
        guard case .tuple(let shape)? = dict["shape"] else {
            throw BLError(.format, "header has no 'shape' tuple", location: "npy header at byte \(start)")
        }
        return Header(descr: descr, fortranOrder: fortran, shape: shape, dataOffset: r.offset)
    }

    package static func parse(_ file: MappedFile) throws -> Tensor {
        let h = try parseHeader(file.bytes)
        guard h.descr == "<f4" || h.descr == "=f4" else {
            throw BLError(.unsupported, "array dtype '\(h.descr)' is not supported: clips must be little-endian float32 ('<f4'); convert with arr.astype('<f4')")
        }
        guard !h.fortranOrder else {
            throw BLError(.unsupported, "Fortran-ordered arrays are not supported: save with np.ascontiguousarray(arr)")
        }
        let count = try Tensor.checkedCount(h.shape)
        let (bytes, overflow) = count.multipliedReportingOverflow(by: 4)
        let available = file.count - h.dataOffset
        guard !overflow, bytes == available else {
            throw BLError(.format, "shape \(h.shape) needs \(count) float32 values (\(bytes) bytes) but the file holds \(available) bytes of data",
                          location: "data at byte \(h.dataOffset)")
        }
        if h.dataOffset % 4 == 0 {
            return try Tensor(dtype: .float32, shape: h.shape, storage: file.storage(h.dataOffset..<(h.dataOffset + bytes)))
        }
        let data = Array(file.bytes[h.dataOffset..<(h.dataOffset + bytes)])
        return try Tensor(dtype: .float32, shape: h.shape, storage: ByteStorage(copying: data))
    }
}

/// The subset of Python literal syntax `.npy` headers use: a dict of string keys to strings,
/// booleans and tuples of integers, as `repr` writes them.
struct PythonLiteral {
    enum Value: Equatable { case string(String), bool(Bool), tuple([Int]), none }

    let bytes: UnsafeRawBufferPointer
    let base: Int
    var i = 0

    init(bytes: UnsafeRawBufferPointer, base: Int) {
        self.bytes = bytes
        self.base = base
    }

    func fail(_ what: String) -> BLError {
        BLError(.format, "malformed .npy header: \(what)", location: "npy header at byte \(base + i)")
    }

    mutating func skipSpace() {
        while i < bytes.count, [0x20, 0x0a, 0x0d, 0x09].contains(bytes[i]) { i += 1 }
    }

    mutating func expect(_ c: UInt8) throws {
        skipSpace()
        guard i < bytes.count, bytes[i] == c else { throw fail("expected '\(Character(UnicodeScalar(c)))'") }
        i += 1
    }

    mutating func peek() -> UInt8? {
        skipSpace()
        return i < bytes.count ? bytes[i] : nil
    }

    mutating func string() throws -> String {
        skipSpace()
        guard i < bytes.count, bytes[i] == 0x27 || bytes[i] == 0x22 else { throw fail("expected a quoted string") }
        let quote = bytes[i]
        i += 1
        let start = i
        while i < bytes.count, bytes[i] != quote {
            if bytes[i] == 0x5c { throw fail("escapes in strings are not supported") }
            i += 1
        }
        guard i < bytes.count else { throw fail("unterminated string") }
        let s = String(decoding: bytes[start..<i], as: UTF8.self)
        i += 1
        return s
    }

    mutating func integer() throws -> Int {
        skipSpace()
        let start = i
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
        if i < bytes.count, bytes[i] == 0x4c { i += 1 }  // Python 2 long suffix
        let digits = String(decoding: bytes[start..<i], as: UTF8.self).filter { $0 != "L" }
        guard !digits.isEmpty, digits.count <= 15, let v = Int(digits) else { throw fail("expected a non-negative dimension") }
        return v
    }

    mutating func value() throws -> Value {
        guard let c = peek() else { throw fail("unexpected end") }
        if c == 0x27 || c == 0x22 { return .string(try string()) }
        if c == 0x28 {
            i += 1
            var items: [Int] = []
            while true {
                if peek() == 0x29 { i += 1; break }
                items.append(try integer())
                if peek() == 0x2c { i += 1; continue }
                try expect(0x29)
                break
            }
            return .tuple(items)
        }
        for (word, v) in [("True", Value.bool(true)), ("False", .bool(false)), ("None", .none)] {
            let w = Array(word.utf8)
            if i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w {
                i += w.count
                return v
            }
        }
        throw fail("unexpected value")
    }

    mutating func parseDict() throws -> [String: Value] {
        try expect(0x7b)
        var out: [String: Value] = [:]
        while true {
            if peek() == 0x7d { i += 1; break }
            let key = try string()
            try expect(0x3a)
            out[key] = try value()
            if peek() == 0x2c { i += 1; continue }
            try expect(0x7d)
            break
        }
        skipSpace()
        guard i == bytes.count else { throw fail("characters after the dictionary") }
        return out
    }
}
