/// A bounds-checked little-endian cursor over bytes. Every read that would pass the end throws
/// a format error naming the offset, so a truncated file can never read out of bounds.
package struct ByteReader {
    package let bytes: UnsafeRawBufferPointer
    package var offset: Int
    /// Name used in errors ("data.pkl", "header").
    package var context: String

    package init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0, context: String = "") {
        self.bytes = bytes
        self.offset = offset
        self.context = context
    }

    package var remaining: Int { bytes.count - offset }
    package var isAtEnd: Bool { offset >= bytes.count }

    @inline(__always)
    func fail(_ what: String, at: Int? = nil) -> BLError {
        let where_ = context.isEmpty ? "at byte \(at ?? offset)" : "\(context) at byte \(at ?? offset)"
        return BLError(.format, what, location: where_)
    }

    package mutating func require(_ n: Int, _ what: @autoclosure () -> String) throws {
        if n < 0 || n > remaining {
            throw fail("unexpected end of data reading \(what()): need \(n) bytes, \(max(remaining, 0)) left")
        }
    }

    package mutating func u8() throws -> UInt8 {
        try require(1, "a byte")
        let v = bytes[offset]
        offset += 1
        return v
    }

    @inline(__always)
    mutating func loadLE<T: FixedWidthInteger>(_: T.Type, _ what: String) throws -> T {
        try require(MemoryLayout<T>.size, what)
        let v = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    package mutating func u16() throws -> UInt16 { try loadLE(UInt16.self, "a 2-byte integer") }
    package mutating func u32() throws -> UInt32 { try loadLE(UInt32.self, "a 4-byte integer") }
    package mutating func u64() throws -> UInt64 { try loadLE(UInt64.self, "an 8-byte integer") }
    package mutating func i32() throws -> Int32 { try loadLE(Int32.self, "a 4-byte integer") }
    package mutating func i64() throws -> Int64 { try loadLE(Int64.self, "an 8-byte integer") }

    /// A view of the next `n` bytes (no copy).
    package mutating func slice(_ n: Int, _ what: @autoclosure () -> String = "bytes") throws -> UnsafeRawBufferPointer {
        try require(n, what())
        let s = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
        offset += n
        return s
    }

    package mutating func array(_ n: Int, _ what: @autoclosure () -> String = "bytes") throws -> [UInt8] {
        Array(try slice(n, what()))
    }

    /// Bytes up to (not including) the next newline; the newline is consumed.
    package mutating func line() throws -> [UInt8] {
        guard let end = bytes[offset...].firstIndex(of: 0x0a) else {
            throw fail("unexpected end of data: missing newline")
        }
        let out = Array(bytes[offset..<end])
        offset = end + 1
        return out
    }

    package mutating func skip(_ n: Int) throws {
        try require(n, "\(n) bytes")
        offset += n
    }
}
