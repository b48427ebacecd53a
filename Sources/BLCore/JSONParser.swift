/// A strict JSON parser with a nesting limit, for headers and manifests read from untrusted files.
package struct JSONParser {
    private let b: UnsafeRawBufferPointer
    private var i = 0
    private let maxDepth: Int

    package static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 64) throws -> JSON {
        var p = JSONParser(b: bytes, maxDepth: maxDepth)
        p.ws()
        let v = try p.value(depth: 0)
        p.ws()
        if p.i != bytes.count { throw p.err("trailing characters after JSON value") }
        return v
    }

    package static func parse(_ text: String, maxDepth: Int = 64) throws -> JSON {
        var bytes = Array(text.utf8)
        return try bytes.withUnsafeMutableBytes { try parse(UnsafeRawBufferPointer($0), maxDepth: maxDepth) }
    }

    package static func parse(_ bytes: [UInt8], maxDepth: Int = 64) throws -> JSON {
        try bytes.withUnsafeBytes { try parse($0, maxDepth: maxDepth) }
    }

    private init(b: UnsafeRawBufferPointer, maxDepth: Int) { self.b = b; self.maxDepth = maxDepth }

    private func err(_ m: String) -> BLError { BLError(.format, "invalid JSON: \(m)", location: "JSON at byte \(i)") }

    private mutating func ws() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0a || b[i] == 0x0d || b[i] == 0x09 { i += 1 }
    }

    private mutating func expect(_ c: UInt8) throws {
        guard i < b.count, b[i] == c else { throw err("expected '\(Character(UnicodeScalar(c)))'") }
        i += 1
    }

    private mutating func literal(_ s: String, _ v: JSON) throws -> JSON {
        for c in s.utf8 { try expect(c) }
        return v
    }

    private mutating func value(depth: Int) throws -> JSON {
        guard depth <= maxDepth else { throw err("nesting deeper than \(maxDepth)") }
        guard i < b.count else { throw err("unexpected end") }
        switch b[i] {
        case UInt8(ascii: "{"):
            i += 1; ws()
            var items: [(String, JSON)] = []
            if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(items) }
            while true {
                ws()
                let k = try string()
                ws(); try expect(UInt8(ascii: ":")); ws()
                items.append((k, try value(depth: depth + 1)))
                ws()
                guard i < b.count else { throw err("unexpected end in object") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return .object(items) }
                throw err("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            i += 1; ws()
            var xs: [JSON] = []
            if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(xs) }
            while true {
                ws()
                xs.append(try value(depth: depth + 1))
                ws()
                guard i < b.count else { throw err("unexpected end in array") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "]") { i += 1; return .array(xs) }
                throw err("expected ',' or ']'")
            }
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "N"): return try literal("NaN", .double(.nan))
        case UInt8(ascii: "I"): return try literal("Infinity", .double(.infinity))
        default: return try number()
        }
    }

    private mutating func number() throws -> JSON {
        let start = i
        if i < b.count, b[i] == UInt8(ascii: "-") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "I") { _ = try literal("Infinity", .null); return .double(-.infinity) }
        }
        var isInt = true
        while i < b.count {
            let c = b[i]
            if c >= 0x30 && c <= 0x39 { i += 1; continue }
            if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") {
                isInt = false; i += 1; continue
            }
            break
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
        if text.isEmpty || text == "-" { throw err("unexpected character") }
        if isInt {
            if let v = Int64(text) { return .int(v) }
            return .rawNumber(text)
        }
        guard let d = Double(text) else { throw err("bad number '\(text)'") }
        return .double(d)
    }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= b.count else { throw err("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]; i += 1
            v <<= 4
            switch c {
            case 0x30...0x39: v |= UInt32(c - 0x30)
            case 0x41...0x46: v |= UInt32(c - 0x41 + 10)
            case 0x61...0x66: v |= UInt32(c - 0x61 + 10)
            default: throw err("bad hex digit in \\u escape")
            }
        }
        return v
    }

    private mutating func string() throws -> String {
        try expect(UInt8(ascii: "\""))
        var bytes: [UInt8] = []
        while true {
            guard i < b.count else { throw err("unterminated string") }
            let c = b[i]; i += 1
            if c == UInt8(ascii: "\"") { break }
            if c == UInt8(ascii: "\\") {
                guard i < b.count else { throw err("unterminated escape") }
                let e = b[i]; i += 1
                switch e {
                case UInt8(ascii: "\""): bytes.append(0x22)
                case UInt8(ascii: "\\"): bytes.append(0x5c)
                case UInt8(ascii: "/"): bytes.append(0x2f)
                case UInt8(ascii: "b"): bytes.append(0x08)
                case UInt8(ascii: "f"): bytes.append(0x0c)
                case UInt8(ascii: "n"): bytes.append(0x0a)
                case UInt8(ascii: "r"): bytes.append(0x0d)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "u"):
                    var u = try hex4()
                    // A high surrogate pairs only with a following low-surrogate escape; any other
                    // escape after it is read on its own and the lone surrogate becomes U+FFFD.
                    if u >= 0xd800 && u < 0xdc00, i + 6 <= b.count, b[i] == 0x5c, b[i + 1] == UInt8(ascii: "u") {
                        let save = i
                        i += 2
                        let lo = try hex4()
                        if lo >= 0xdc00 && lo < 0xe000 {
                            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00)
                        } else {
                            i = save
                        }
                    }
                    let scalar = UnicodeScalar(u) ?? "\u{fffd}"
                    bytes.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: throw err("bad escape")
                }
            } else {
                if c < 0x20 { throw err("control character in string") }
                bytes.append(c)
            }
        }
        guard let s = String(validating: bytes, as: UTF8.self) else { throw err("string is not valid UTF-8") }
        return s
    }
}
