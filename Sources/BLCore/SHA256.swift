import CSHA256

/// SHA-256 (FIPS 180-4), streaming: `update` any number of times, then `finalize`.
///
/// Blocks are compressed with the CPU's SHA extensions when it has them (x86 SHA-NI, about
/// 1.5 GB/s), else by a portable implementation.
package struct SHA256: Sendable {
    /// The compression function behind a hasher.
    package enum Implementation: Sendable, Equatable {
        /// Plain Swift, any CPU.
        case portable
        /// The x86 SHA extensions (SHA256RNDS2 / SHA256MSG1 / SHA256MSG2).
        case shaExtensions
    }

    /// The fastest implementation this CPU runs.
    package static let fastest: Implementation = csha256_has_shani() != 0 ? .shaExtensions : .portable

    /// The implementation this hasher uses.
    package let implementation: Implementation
    private var h: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
        (0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)
    private var buffer = [UInt8](repeating: 0, count: 64)
    private var buffered = 0
    private var length: UInt64 = 0

    /// A hasher using `implementation` when this CPU runs it, else the portable one.
    package init(implementation: Implementation = SHA256.fastest) {
        self.implementation = implementation == .shaExtensions && SHA256.fastest == .shaExtensions ? .shaExtensions : .portable
    }

    package mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        length &+= UInt64(bytes.count)
        var i = 0
        if buffered > 0 {
            let n = min(64 - buffered, bytes.count)
            for j in 0..<n { buffer[buffered + j] = bytes[j] }
            buffered += n
            i = n
            if buffered == 64 {
                let block = buffer
                block.withUnsafeBytes { compress($0.baseAddress!, blocks: 1) }
                buffered = 0
            }
        }
        let whole = (bytes.count - i) / 64
        if whole > 0 {
            compress(base + i, blocks: whole)
            i += whole * 64
        }
        for j in i..<bytes.count { buffer[buffered] = bytes[j]; buffered += 1 }
    }

    package mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The 32-byte digest (the hasher should not be updated afterwards).
    package mutating func finalize() -> [UInt8] {
        let bits = length &* 8
        var pad: [UInt8] = [0x80]
        let rem = (buffered + 1) % 64
        pad += [UInt8](repeating: 0, count: rem <= 56 ? 56 - rem : 120 - rem)
        for s in stride(from: 56, through: 0, by: -8) { pad.append(UInt8(truncatingIfNeeded: bits >> UInt64(s))) }
        let saved = length
        update(pad)
        length = saved
        var out = [UInt8]()
        for v in [h.0, h.1, h.2, h.3, h.4, h.5, h.6, h.7] {
            out += [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
        }
        return out
    }

    /// Lower-case hex of the digest of `bytes`.
    package static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        var s = SHA256()
        s.update(bytes)
        return hexString(s.finalize())
    }

    package static func hex(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { hex($0) }
    }

    /// Lower-case hex digest of a file's contents, read through a memory mapping in chunks whose
    /// pages are released once hashed (the resident memory stays at one chunk).
    package static func hex(file path: String) throws -> String {
        let file = try MappedFile(path: path)
        var s = SHA256()
        let chunk = 4 << 20
        var start = 0
        while start < file.count {
            let end = min(start + chunk, file.count)
            s.update(UnsafeRawBufferPointer(rebasing: file.bytes[start..<end]))
            file.release(start..<end)
            start = end
        }
        return hexString(s.finalize())
    }

    package static func hexString(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in digest { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func compress(_ p: UnsafeRawPointer, blocks: Int) {
        let shani = implementation == .shaExtensions
        withUnsafeMutableBytes(of: &h) { raw in
            let state = raw.baseAddress!.assumingMemoryBound(to: UInt32.self)
            if shani {
                csha256_blocks_shani(state, p.assumingMemoryBound(to: UInt8.self), blocks)
            } else {
                SHA256.portableBlocks(state, p, blocks)
            }
        }
    }

    @inline(__always)
    private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }

    /// One round (FIPS 180-4, 6.2.2 step 3) with the working variables named by position: instead of
    /// shifting all eight, only `d` and `h` change and the caller rotates the names.
    @inline(__always)
    private static func round(_ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: inout UInt32,
                              _ e: UInt32, _ f: UInt32, _ g: UInt32, _ h: inout UInt32, _ kw: UInt32) {
        let t1 = h &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ (g ^ (e & (f ^ g))) &+ kw
        d &+= t1
        h = t1 &+ (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) ^ (c & (a ^ b)))
    }

    /// FIPS 180-4, 6.2.2, on `blocks` 64-byte blocks: eight rounds at a time, the schedule a rolling
    /// window of 16 words.
    static func portableBlocks(_ state: UnsafeMutablePointer<UInt32>, _ data: UnsafeRawPointer, _ blocks: Int) {
        // FIPS 180-4, 4.2.2: one table, shared with the SHA-extensions path in CSHA256.
        let k: UnsafePointer<UInt32> = csha256_round_constants()
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 16) { w in
            var p = data
            for _ in 0..<blocks {
                var a = state[0], b = state[1], c = state[2], d = state[3]
                var e = state[4], f = state[5], g = state[6], h = state[7]
                for t in stride(from: 0, to: 64, by: 8) {
                    for i in t..<(t + 8) {
                        if t < 16 {
                            w[i & 15] = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
                        } else {
                            let w15 = w[(i - 15) & 15], w2 = w[(i - 2) & 15]
                            let s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3)
                            let s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10)
                            w[i & 15] = w[i & 15] &+ s0 &+ w[(i - 7) & 15] &+ s1
                        }
                    }
                    let j = t & 15
                    round(a, b, c, &d, e, f, g, &h, k[t] &+ w[j])
                    round(h, a, b, &c, d, e, f, &g, k[t + 1] &+ w[j + 1])
                    round(g, h, a, &b, c, d, e, &f, k[t + 2] &+ w[j + 2])
                    round(f, g, h, &a, b, c, d, &e, k[t + 3] &+ w[j + 3])
                    round(e, f, g, &h, a, b, c, &d, k[t + 4] &+ w[j + 4])
                    round(d, e, f, &g, h, a, b, &c, k[t + 5] &+ w[j + 5])
                    round(c, d, e, &f, g, h, a, &b, k[t + 6] &+ w[j + 6])
                    round(b, c, d, &e, f, g, h, &a, k[t + 7] &+ w[j + 7])
                }
                state[0] &+= a; state[1] &+= b; state[2] &+= c; state[3] &+= d
                state[4] &+= e; state[5] &+= f; state[6] &+= g; state[7] &+= h
                p += 64
            }
        }
    }
}
