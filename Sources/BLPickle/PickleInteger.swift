/// Integers of LONG1 / LONG4 (little-endian two's complement of any length) and text LONG.
enum PickleInteger {
    /// Longest integer accepted, in bytes (2^8192, far beyond any checkpoint's counters): decimal
    /// conversion is quadratic, so a pickle full of long LONG4s must not make it hang.
    static let maxBytes = 1024

    /// Decodes little-endian two's complement bytes: `.int` when it fits Int64, else decimal digits.
    static func decode(_ bytes: UnsafeRawBufferPointer) -> (small: Int64?, decimal: String) {
        let n = bytes.count
        if n == 0 { return (0, "0") }
        let negative = bytes[n - 1] & 0x80 != 0
        if n <= 8 {
            var v: UInt64 = negative ? ~0 : 0
            for i in 0..<n {
                v &= ~(UInt64(0xff) << (8 * UInt64(i)))
                v |= UInt64(bytes[i]) << (8 * UInt64(i))
            }
            let s = Int64(bitPattern: v)
            return (s, String(s))
        }
        // Magnitude as little-endian bytes.
        var mag = Array(bytes)
        if negative {
            var carry = 1
            for i in 0..<mag.count {
                let x = Int(~mag[i] & 0xff) + carry
                mag[i] = UInt8(x & 0xff)
                carry = x >> 8
            }
        }
        // Fits Int64 after all (redundant sign bytes)?
        var top = mag.count
        while top > 0 && mag[top - 1] == 0 { top -= 1 }
        if top <= 8 {
            var u: UInt64 = 0
            for i in 0..<top { u |= UInt64(mag[i]) << (8 * UInt64(i)) }
            if !negative && u <= UInt64(Int64.max) { return (Int64(u), String(u)) }
            if negative && u <= UInt64(Int64.max) + 1 {
                let s = u == UInt64(Int64.max) + 1 ? Int64.min : -Int64(u)
                return (s, String(s))
            }
        }
        // Big-endian 32-bit limbs, repeatedly divided by 10^9.
        var limbs: [UInt32] = []
        var k = 0
        while k < top {
            var limb: UInt32 = 0
            for j in stride(from: min(k + 4, top) - 1, through: k, by: -1) { limb = limb << 8 | UInt32(mag[j]) }
            limbs.append(limb)
            k += 4
        }
        limbs.reverse()
        var chunks: [UInt32] = []
        while !limbs.isEmpty {
            var rem: UInt64 = 0
            var next: [UInt32] = []
            next.reserveCapacity(limbs.count)
            for l in limbs {
                let cur = rem << 32 | UInt64(l)
                let q = cur / 1_000_000_000
                rem = cur % 1_000_000_000
                if !(next.isEmpty && q == 0) { next.append(UInt32(q)) }
            }
            chunks.append(UInt32(rem))
            limbs = next
        }
        var s = negative ? "-" : ""
        s += String(chunks.last ?? 0)
        for c in chunks.dropLast().reversed() {
            let d = String(c)
            s += String(repeating: "0", count: 9 - d.count) + d
        }
        return (nil, s)
    }

    /// Parses optional sign and decimal digits; nil if not an integer literal.
    static func parseDecimal(_ text: String) -> (small: Int64?, decimal: String)? {
        var t = Substring(text)
        if t.hasSuffix("L") { t = t.dropLast() }
        var negative = false
        if t.first == "-" || t.first == "+" { negative = t.first == "-"; t = t.dropFirst() }
        guard !t.isEmpty, t.count <= maxBytes * 3, t.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        let digits = t.drop(while: { $0 == "0" })
        let body = digits.isEmpty ? "0" : String(digits)
        let dec = (negative && body != "0" ? "-" : "") + body
        return (Int64(dec), dec)
    }
}
