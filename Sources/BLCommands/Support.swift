import ArgumentParser
import BLCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Collects what a command writes, instead of the process's stdout and stderr (set with
/// `Console.$capture.withValue(...)`, for running commands inside another program).
package final class OutputCapture: @unchecked Sendable {
    private let text = Locked((out: "", err: ""))

    package init() {}

    /// Everything written to standard output so far.
    package var stdout: String { text.withLock { $0.out } }
    /// Everything written to standard error so far.
    package var stderr: String { text.withLock { $0.err } }

    func append(_ s: String, toError: Bool) {
        text.withLock { if toError { $0.err += s } else { $0.out += s } }
    }
}

/// Output helpers shared by the subcommands: results on stdout, messages on stderr, and a
/// progress line on stderr only when it is a terminal.
package enum Console {
    /// When set, output goes here instead of file descriptors 1 and 2 (and no progress is shown).
    @TaskLocal package static var capture: OutputCapture?

    /// Whether a progress line is on the terminal and must be cleared before other stderr text.
    nonisolated(unsafe) private static var progressShown = false

    static func out(_ s: String) { emit(s, fd: 1) }

    static func err(_ s: String) {
        clearProgress()
        emit(s, fd: 2)
    }

    private static func emit(_ s: String, fd: Int32) {
        var s = s
        if !s.hasSuffix("\n") { s += "\n" }
        if let c = capture {
            c.append(s, toError: fd == 2)
        } else {
            writeAll(fd, s)
        }
    }

    /// Writes all the bytes to a file descriptor, retrying short writes.
    private static func writeAll(_ fd: Int32, _ s: String) {
        var bytes = Array(s.utf8)
        bytes.withUnsafeMutableBytes { buf in
            guard let base = buf.baseAddress else { return }
            var off = 0
            while off < buf.count {
                let n = write(fd, base + off, buf.count - off)
                if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
                off += n
            }
        }
    }

    static var stderrIsTerminal: Bool { isatty(2) != 0 }

    /// Replaces the progress line on stderr (in place), only when stderr is a terminal; an empty
    /// text clears it.
    static func progress(_ s: String) {
        guard capture == nil, stderrIsTerminal else { return }
        if s.isEmpty {
            clearProgress()
            return
        }
        writeAll(2, "\r\u{1b}[K" + s)
        progressShown = true
    }

    private static func clearProgress() {
        guard progressShown, capture == nil else { return }
        writeAll(2, "\r\u{1b}[K")
        progressShown = false
    }
}

/// Exit codes: 0 success, 1 a verification failed, 2 bad input.
enum Exit {
    static let failed = ExitCode(1)
    static let badInput = ExitCode(2)
}

/// Runs a command body, turning blconvert errors into a clear message and exit status 2.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as BLError {
        Console.err("error: \(e)")
        throw Exit.badInput
    }
}

enum Format {
    static func bytes(_ n: Int) -> String {
        let d = Double(n)
        if n < 1024 { return "\(n) B" }
        if d < 1024 * 1024 { return fixed(d / 1024, 1) + " KiB" }
        if d < 1024 * 1024 * 1024 { return fixed(d / 1024 / 1024, 1) + " MiB" }
        return fixed(d / 1024 / 1024 / 1024, 2) + " GiB"
    }

    static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return "\(x)" }
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

extension String {
    /// The text without one pair of enclosing parentheses.
    var unparenthesized: String {
        hasPrefix("(") && hasSuffix(")") && count >= 2 ? String(dropFirst().dropLast()) : self
    }

    var lastPathComponent: String {
        split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? self
    }
}

/// Writes text to `path` through a temporary file and a rename, so readers never see half a file.
func writeFileAtomically(_ text: String, to path: String) throws {
    try writeFileAtomically(bytes: Array(text.utf8), to: path)
}

/// Writes bytes to `path` through a temporary file and a rename.
func writeFileAtomically(bytes: [UInt8], to path: String) throws {
    let temp = path + ".tmp-\(getpid())"
    guard let f = fopen(temp, "wb") else {
        throw BLError(.io, "cannot write: \(String(cString: strerror(errno)))", file: path)
    }
    let ok = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) } == bytes.count
    let closed = fclose(f) == 0
    if !ok || !closed || rename(temp, path) != 0 {
        unlink(temp)
        throw BLError(.io, "cannot write: \(String(cString: strerror(errno)))", file: path)
    }
}

extension JSON {
    /// The same value with NaN and infinities as the strings "NaN", "Infinity" and "-Infinity",
    /// which strict JSON parsers (jq, browsers) accept; the numbers themselves are not JSON.
    var strict: JSON {
        switch self {
        case .double(let d) where !d.isFinite:
            return .string(d.isNaN ? "NaN" : d > 0 ? "Infinity" : "-Infinity")
        case .array(let xs): return .array(xs.map(\.strict))
        case .object(let items): return .object(items.map { ($0.0, $0.1.strict) })
        default: return self
        }
    }

    /// What `--json` prints: strict JSON, indented.
    var strictJSONText: String { strict.serialized(indent: 2) }
}

/// Whether two paths name the same existing file (same device and inode), however spelled.
func sameFile(_ a: String, _ b: String) -> Bool {
    var sa = stat(), sb = stat()
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
}

/// Refuses an `output` that already exists unless `force` is given; with `force`, `refusal` says
/// why the existing entry must still not be replaced (nil: it may be).
func checkReplaceable(_ output: String, force: Bool, refusal: () -> String?) throws {
    guard access(output, F_OK) == 0 else { return }
    guard force else {
        throw BLError(.invalidArgument, "already exists: choose another output or pass --force to replace it", file: output)
    }
    if let why = refusal() { throw BLError(.invalidArgument, why, file: output) }
}

/// Refuses an output path that names one of the inputs (it would be replaced).
func checkNotAnInput(_ output: String, option: String, inputs: [String]) throws {
    if let input = inputs.first(where: { sameFile(output, $0) }) {
        throw BLError(.invalidArgument, "\(option) names the input \(input); it would be overwritten", file: output)
    }
}
