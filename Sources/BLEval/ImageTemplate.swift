import BLCore

/// A frame file name template with Python's `str.format` semantics for one integer argument, as
/// the reference calls `image_tmpl.format(idx)`: literal text, `{{` and `}}`, and replacement
/// fields `{}`, `{0}` with an optional format spec `[[fill]align][sign][#][0][width][,|_][type]`
/// (type `d`, `n`, `x`, `X`, `o`, `b` or none), e.g. `{:05d}.jpg`, `img_{:06d}.png`, `{}.jpg`.
package struct ImageTemplate: Sendable, Equatable {
    package let text: String

    enum Piece: Equatable {
        case literal(String)
        case field(Spec)
    }

    struct Spec: Equatable {
        var fill: Character = " "
        var align: Character? = nil
        var sign: Character = "-"
        var alternate = false
        var width = 0
        var grouping: Character? = nil
        var type: Character = "d"
    }

    let pieces: [Piece]

    /// Parses the template; errors say what Python would reject (or what is not supported here).
    package init(_ text: String) throws {
        self.text = text
        func fail(_ why: String) -> BLError {
            BLError(.invalidArgument, "image template '\(text)': \(why)")
        }
        var pieces: [Piece] = []
        var literal = ""
        var chars = Array(text)[...]
        var fields = 0
        while let c = chars.first {
            chars = chars.dropFirst()
            if c == "}" {
                guard chars.first == "}" else { throw fail("single '}' encountered (write '}}' for a brace)") }
                chars = chars.dropFirst()
                literal.append("}")
                continue
            }
            guard c == "{" else { literal.append(c); continue }
            if chars.first == "{" { chars = chars.dropFirst(); literal.append("{"); continue }
            guard let close = chars.firstIndex(of: "}") else { throw fail("'{' without a closing '}'") }
            let body = String(chars[chars.startIndex..<close])
            chars = chars[(close + 1)...]
            if body.contains("{") { throw fail("nested replacement fields are not supported") }
            let (name, spec) = body.firstIndex(of: ":").map { (String(body[..<$0]), String(body[body.index(after: $0)...])) } ?? (body, "")
            if name.contains("!") { throw fail("conversions (!r, !s) are not supported") }
            guard name.isEmpty || name == "0" else {
                throw fail("field {\(name)}: the template is given one argument, the frame number ({} or {0})")
            }
            if !literal.isEmpty { pieces.append(.literal(literal)); literal = "" }
            pieces.append(.field(try Self.parseSpec(spec, fail)))
            fields += 1
        }
        if !literal.isEmpty { pieces.append(.literal(literal)) }
        guard fields > 0 else { throw fail("no replacement field for the frame number (e.g. {:05d}.jpg)") }
        self.pieces = pieces
    }

    static func parseSpec(_ spec: String, _ fail: (String) -> BLError) throws -> Spec {
        var s = Spec()
        var c = Array(spec)[...]
        let aligns: Set<Character> = ["<", ">", "=", "^"]
        if c.count >= 2, aligns.contains(c[c.startIndex + 1]) {
            s.fill = c[c.startIndex]; s.align = c[c.startIndex + 1]; c = c.dropFirst(2)
        } else if let f = c.first, aligns.contains(f) {
            s.align = f; c = c.dropFirst()
        }
        if let f = c.first, "+- ".contains(f) { s.sign = f; c = c.dropFirst() }
        if c.first == "#" { s.alternate = true; c = c.dropFirst() }
        if c.first == "0" {
            if s.align == nil { s.fill = "0"; s.align = "=" }
            c = c.dropFirst()
        }
        var width = ""
        while let f = c.first, f.isASCII, f.isNumber { width.append(f); c = c.dropFirst() }
        if !width.isEmpty {
            guard let w = Int(width), w <= 4096 else { throw fail("width \(width) is too large") }
            s.width = w
        }
        if let f = c.first, f == "," || f == "_" { s.grouping = f; c = c.dropFirst() }
        if c.first == "." { throw fail("precision not allowed in integer format specifier") }
        if let f = c.first {
            guard "dnxXob".contains(f) else { throw fail("format type '\(f)' is not an integer format (d, x, X, o, b)") }
            s.type = f; c = c.dropFirst()
        }
        guard c.isEmpty else { throw fail("invalid format specifier '\(spec)'") }
        if s.grouping == "," && !"dn".contains(s.type) { throw fail("cannot specify ',' with '\(s.type)'") }
        return s
    }

    /// `template.format(n)`.
    package func format(_ n: Int) -> String {
        var out = ""
        for p in pieces {
            switch p {
            case .literal(let s): out += s
            case .field(let spec): out += Self.format(n, spec)
            }
        }
        return out
    }

    static func format(_ n: Int, _ s: Spec) -> String {
        let radix: Int, prefix: String
        switch s.type {
        case "x": (radix, prefix) = (16, "0x")
        case "X": (radix, prefix) = (16, "0X")
        case "o": (radix, prefix) = (8, "0o")
        case "b": (radix, prefix) = (2, "0b")
        default: (radix, prefix) = (10, "")
        }
        var digits = String(n.magnitude, radix: radix, uppercase: s.type == "X")
        if let g = s.grouping {
            let every = radix == 10 ? 3 : 4
            var grouped = ""
            for (i, ch) in digits.reversed().enumerated() {
                if i > 0 && i % every == 0 { grouped.append(g) }
                grouped.append(ch)
            }
            digits = String(grouped.reversed())
        }
        let sign = n < 0 ? "-" : (s.sign == "+" ? "+" : (s.sign == " " ? " " : ""))
        let head = sign + (s.alternate ? prefix : "")
        let length = head.count + digits.count
        let pad = max(0, s.width - length)
        let fill = String(repeating: s.fill, count: pad)
        switch s.align ?? ">" {
        case "<": return head + digits + fill
        case "^":
            let left = String(repeating: s.fill, count: pad / 2), right = String(repeating: s.fill, count: pad - pad / 2)
            return left + head + digits + right
        case "=": return head + fill + digits
        default: return fill + head + digits
        }
    }
}
