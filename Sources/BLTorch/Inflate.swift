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

    /// Inflates `input` into a new storage of exactly `size` bytes, checking the CRC-32 too.
    static func inflate(_ input: UnsafeRawBufferPointer, size: Int, crc: UInt32, what: String) throws -> ByteStorage {
        guard size >= 0, size <= maxOutput(compressed: input.count) else {
            throw BLError.format("\(what) declares \(size) bytes uncompressed, impossible from \(input.count) compressed bytes")
        }
        guard size <= memoryCap else {
            throw BLError(.unsupported, "\(what) declares \(size) bytes uncompressed, more than half of this machine's memory")
        }
        return try ByteStorage.allocate(count: size) { out in
            guard let outBase = out.baseAddress else { throw BLError(.io, "no memory for inflating \(what)") }
            let inBase = input.baseAddress
            var strm = z_stream()
            guard blc_inflate_init_raw(&strm) == Z_OK else {
                throw BLError(.io, "zlib could not start inflating \(what)")
            }
            defer { inflateEnd(&strm) }
            let chunk = 1 << 30
            var inPos = 0, outPos = 0
            var status = Z_OK
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
                    let k = min(chunk, room)
                    strm.next_out = outBase.advanced(by: outPos).assumingMemoryBound(to: Bytef.self)
                    strm.avail_out = uInt(k)
                    let before = strm.avail_out
                    status = CZlib.inflate(&strm, Z_NO_FLUSH)
                    outPos += Int(before - strm.avail_out)
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
            var c: uLong = 0
            var p = 0
            while p < size {
                let k = min(chunk, size - p)
                c = crc32(c, outBase.advanced(by: p).assumingMemoryBound(to: Bytef.self), uInt(k))
                p += k
            }
            guard UInt32(truncatingIfNeeded: c) == crc else {
                throw BLError.format("\(what): CRC-32 mismatch after inflating")
            }
        }
    }
}
