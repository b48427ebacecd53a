import BLCore
import CZlib
/// Raw-deflate decompression (zip method 8) into exactly the declared number of bytes.
enum Inflate {
    /// Largest expansion deflate can achieve, plus slack for tiny inputs.
    static func maxOutput(compressed: Int) -> Int {
        let (m, o) = compressed.multipliedReportingOverflow(by: 1032)
        return o ? Int.max : m + 1024
    }

    /// Half the machine's physical memory: no declared size above this is believed.
    static let memoryCap: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        if pages <= 0 || size <= 0 { return 1 << 32 }
        let (m, o) = pages.multipliedReportingOverflow(by: size)
        return o ? Int.max / 2 : m / 2
    }()

    /// Checks a declared size before anything is allocated for it.
    static func checkDeclared(_ input: UnsafeRawBufferPointer, size: Int, what: String) throws {
        guard size >= 0, size <= maxOutput(compressed: input.count) else {
            throw BLError.format("\(what) declares \(size) bytes uncompressed, impossible from \(input.count) compressed bytes")
        }
        guard size <= memoryCap else {
            throw BLError(.unsupported, "\(what) declares \(size) bytes uncompressed, more than half of this machine's memory")
        }
    }

    /// Inflates `input` into a new storage of exactly `size` bytes, checking the CRC-32 too.
    static func inflate(_ input: UnsafeRawBufferPointer, size: Int, crc: UInt32, what: String) throws -> ByteStorage {
        try checkDeclared(input, size: size, what: what)
        return try ByteStorage.allocate(count: size) { out in
            guard let outBase = out.baseAddress else { throw BLError(.io, "no memory for inflating \(what)") }
            try decode(input, size: size, crc: crc, what: what, into: outBase)
        }
    }

    /// Checks that `input` inflates to exactly `size` bytes with the CRC-32 `crc`, through a small
    /// window: memory stays at 1 MiB whatever the member's size (for readers that need the
    /// shapes, not the bytes).
    static func verify(_ input: UnsafeRawBufferPointer, size: Int, crc: UInt32, what: String) throws {
        try checkDeclared(input, size: size, what: what)
        try decode(input, size: size, crc: crc, what: what, into: nil)
    }

    /// The inflating loop: into `output` (`size` bytes) or, when nil, through a reused window.
    private static func decode(_ input: UnsafeRawBufferPointer, size: Int, crc: UInt32, what: String,
                               into output: UnsafeMutableRawPointer?) throws {
        let window = 1 << 20
        let scratch: UnsafeMutableRawPointer? = output == nil ? .allocate(byteCount: window, alignment: 16) : nil
        defer { scratch?.deallocate() }
        let inBase = input.baseAddress
        var strm = z_stream()
        guard blc_inflate_init_raw(&strm) == Z_OK else {
            throw BLError(.io, "zlib could not start inflating \(what)")
        }
        defer { inflateEnd(&strm) }
        let chunk = 1 << 30
        var inPos = 0, outPos = 0
        var status = Z_OK
        var c: uLong = 0
        while true {
            if strm.avail_in == 0 && inPos < input.count, let inBase {
                let k = min(chunk, input.count - inPos)
                strm.next_in = UnsafeMutablePointer(mutating: inBase.advanced(by: inPos).assumingMemoryBound(to: Bytef.self))
                strm.avail_in = uInt(k)
                inPos += k
            }
            // One spare byte beyond the declared size detects streams that are too long.
            var spare: UInt8 = 0
            let room = size - outPos
            if room > 0 {
                let dst = output.map { $0.advanced(by: outPos) } ?? scratch!
                let k = min(output == nil ? window : chunk, room)
                strm.next_out = dst.assumingMemoryBound(to: Bytef.self)
                strm.avail_out = uInt(k)
                let before = strm.avail_out
                status = CZlib.inflate(&strm, Z_NO_FLUSH)
                let produced = Int(before - strm.avail_out)
                c = crc32(c, dst.assumingMemoryBound(to: Bytef.self), uInt(produced))
                outPos += produced
            } else {
                status = withUnsafeMutablePointer(to: &spare) { p -> Int32 in
                    strm.next_out = p
                    strm.avail_out = 1
                    let s = CZlib.inflate(&strm, Z_NO_FLUSH)
                    if strm.avail_out == 0 { return Z_DATA_ERROR - 100 }
                    return s
                }
                if status == Z_DATA_ERROR - 100 {
                    throw BLError.format("\(what) inflates to more than its declared \(size) bytes")
                }
            }
            if status == Z_STREAM_END { break }
            if status == Z_BUF_ERROR && strm.avail_in == 0 && inPos >= input.count {
                throw BLError.format("\(what): compressed data ends early (\(outPos) of \(size) bytes)")
            }
            if status != Z_OK && status != Z_BUF_ERROR {
                throw BLError.format("\(what): corrupt deflate data (zlib status \(status))")
            }
        }
        guard outPos == size else {
            throw BLError.format("\(what) inflates to \(outPos) bytes, declared \(size)")
        }
        guard UInt32(truncatingIfNeeded: c) == crc else {
            throw BLError.format("\(what): CRC-32 mismatch after inflating")
        }
    }
}
