/// Number, size and column formatting for the text reports.
enum Format {
    static func bytes(_ n: Int) -> String {
        let d = Double(n)
        if n < 1024 { return "\(n) B" }
        if d < 1024 * 1024 { return fixed(d / 1024, 1) + " KiB" }
        if d < 1024 * 1024 * 1024 { return fixed(d / 1024 / 1024, 1) + " MiB" }
        return fixed(d / 1024 / 1024 / 1024, 2) + " GiB"
    }

    /// `x` with `digits` decimals; total on every Double (beyond 1e15, where decimals mean
    /// nothing, it is written in scientific notation).
    static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return "\(x)" }
        if abs(x) >= 1e15 { return sci(x) }
        let digits = min(max(digits, 0), 12)
        var p = 1.0
        for _ in 0..<digits { p *= 10 }
        let r = (abs(x) * p).rounded() / p
        var s = String(Int64(r))
        if digits > 0 {
            let frac = Int64(((r - r.rounded(.down)) * p).rounded())
            var f = String(frac)
            while f.count < digits { f = "0" + f }
            s += "." + f
        }
        return (x < 0 && r != 0 ? "-" : "") + s
    }

    static func sci(_ x: Double) -> String {
        guard x.isFinite else { return "\(x)" }
        if x == 0 { return "0" }
        var e = 0
        var m = abs(x)
        while m >= 10 { m /= 10; e += 1 }
        while m < 1 { m *= 10; e -= 1 }
        var ms = fixed(m, 1)
        if ms == "10.0" { ms = "1.0"; e += 1 }
        return (x < 0 ? "-" : "") + ms + "e" + (e < 0 ? "-" : "+") + (abs(e) < 10 ? "0" : "") + String(abs(e))
    }

    static func grouped(_ n: Int) -> String {
        let s = String(abs(n))
        var out = ""
        for (i, c) in s.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + String(out.reversed())
    }

    static func shape(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }

    static func pad(_ s: String, _ n: Int) -> String {
        s.count >= n ? s : s + String(repeating: " ", count: n - s.count)
    }

    static func lpad(_ s: String, _ n: Int) -> String {
        s.count >= n ? s : String(repeating: " ", count: n - s.count) + s
    }
}
